"""Custom fields: the extra columns of a lead (`leads.fields`, string values).

A field's name is what a template writes between braces (`{{company}}`), so names are
kept to merge-field shape: an import's "Company Name" column becomes `company_name`.
The names a company uses are read from its leads: there is no separate registry to
keep in step with the data.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import Invalid

# The lead's own columns: a custom field of one of these names would never be seen.
BUILT_IN = frozenset({"email", "first_name", "last_name", "timezone"})
MAX_NAME = 64
MAX_VALUE = 2000
MAX_FIELDS = 100
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_NOT_NAME = re.compile(r"[^a-z0-9_]+")


def field_name(column: str) -> str:
    """A CSV column title as a field name: lower case, runs of other characters as one
    `_` ("Company Name" -> "company_name"); "" when nothing usable is left."""
    name = _NOT_NAME.sub("_", column.strip().lower()).strip("_")
    if name and name[0].isdigit():
        name = "f_" + name
    return name[:MAX_NAME]


def check_fields(fields: dict[str, Any]) -> dict[str, str]:
    """Validate custom fields (names in merge-field shape, string values); the dict."""
    if len(fields) > MAX_FIELDS:
        raise Invalid(f"a lead has at most {MAX_FIELDS} custom fields", field="fields")
    for name, value in fields.items():
        if not _NAME.match(name) or len(name) > MAX_NAME:
            raise Invalid(
                f"custom field name {name!r}: use lower-case letters, digits and _ "
                f"(at most {MAX_NAME}), starting with a letter",
                field="fields",
            )
        if name in BUILT_IN:
            raise Invalid(f"{name} is a lead's own field, not a custom one", field="fields")
        if not isinstance(value, str):
            raise Invalid(f"custom field {name}: values are strings", field="fields")
        if len(value) > MAX_VALUE:
            raise Invalid(f"custom field {name}: at most {MAX_VALUE} characters", field="fields")
    return dict(fields)


async def company_field_names(
    conn: AsyncConnection, company_id: int, owner_user_id: int | None = None
) -> list[str]:
    """The custom field names present on any lead of the company (or of one owner's
    leads), sorted. One pass over the company's leads: for exports and template checks,
    not per request of a busy page."""
    if conn.dialect.name == "postgresql":
        sql = (
            "SELECT DISTINCT json_object_keys(fields) AS k FROM leads"
            " WHERE company_id = :c AND json_typeof(fields) = 'object'"
        )
    else:
        sql = (
            "SELECT DISTINCT j.key AS k FROM leads, json_each(leads.fields) AS j"
            " WHERE leads.company_id = :c AND json_type(leads.fields) = 'object'"
        )
    params: dict[str, Any] = {"c": company_id}
    if owner_user_id is not None:
        sql += " AND owner_user_id = :o"
        params["o"] = owner_user_id
    rows = await conn.execute(text(sql), params)
    return sorted(str(r.k) for r in rows)
