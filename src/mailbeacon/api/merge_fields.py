"""Refusing a template that names a merge field no lead has, before anything is stored.

"Unknown" means: not built in (`first_name`, `last_name`, `email`, `unsubscribe_url`,
`forward_url`) and not a custom field on any lead of the caller's company. A field only
some leads have is known (those without it get its default, or nothing); a misspelt
one is refused with its name, where it would otherwise send every lead a blank.
A block shown by engagement naming a condition that does not exist (`{% if
clikced("pricing") %}`), or written so it could not be answered, is refused the same
way, naming the condition (code `unknown_condition`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.api.errors import ApiError
from mailbeacon.compose.blocks import BlockError
from mailbeacon.compose.merge import BUILT_IN, template_conditions, unknown_fields
from mailbeacon.crm.fields import company_field_names


async def check_merge_fields(
    conn: AsyncConnection, company_id: int, templates: dict[str, str | None]
) -> None:
    """422 naming the first template (`subject`, `html`, `text`) that uses an unknown
    field, and every unknown name in it. A template that does not parse is a 422 too."""
    check_conditions(templates)
    custom: list[str] | None = None
    for field, template in templates.items():
        try:
            unknown = unknown_fields([template], ())
            if unknown and custom is None:
                custom = await company_field_names(conn, company_id)
            unknown = [name for name in unknown if name not in (custom or ())]
        except ValueError as e:
            raise ApiError(422, "invalid", f"{field}: {e}", field) from None
        if unknown:
            names = ", ".join(unknown)
            raise ApiError(
                422,
                "unknown_merge_field",
                f"{field} uses unknown merge field(s): {names}. Known: the built-in "
                f"{', '.join(sorted(BUILT_IN))}, and the custom fields of your leads"
                f"{': ' + ', '.join(custom) if custom else ' (none yet)'}",
                field,
            )


def check_conditions(templates: dict[str, str | None]) -> None:
    """422 `unknown_condition` naming the first template and the condition at fault."""
    for field, template in templates.items():
        try:
            template_conditions([template])
        except BlockError as e:
            raise ApiError(422, "unknown_condition", f"{field}: {e}", field) from None
        except ValueError as e:
            raise ApiError(422, "invalid", f"{field}: {e}", field) from None
