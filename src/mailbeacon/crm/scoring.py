"""A company's scoring model: how many points each kind of engagement is worth, and how
fast old engagement fades.

Points go to a person's first open of a message, each link they click in it, a forward
and an unsubscribe (negative); machine verdicts never score. Points halve every
`half_life_days` (0: they never fade). Rule `add_score` actions add on top, unfaded.
The model is off until a company turns it on, so scores stay what rules made them;
a change applies to engagement from then on (what was scored keeps its points).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store import now
from mailbeacon.store.dialect import dialect_insert
from mailbeacon.store.schema_scoring import scoring_models


@dataclass(frozen=True, slots=True)
class ScoringModel:
    enabled: bool = False
    open_points: int = 1
    click_points: int = 5
    forward_points: int = 10
    unsubscribe_points: int = -20
    half_life_days: float = 30.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = ScoringModel()
FIELDS = tuple(DEFAULT.as_json())


async def get_model(conn: AsyncConnection, company_id: int) -> ScoringModel:
    row = (
        await conn.execute(select(scoring_models).where(scoring_models.c.company_id == company_id))
    ).first()
    if row is None:
        return DEFAULT
    return ScoringModel(**{name: getattr(row, name) for name in FIELDS})


async def models_of(conn: AsyncConnection, company_ids: set[int]) -> dict[int, ScoringModel]:
    """The models of several companies (the defaults for those without a row)."""
    found = {c: DEFAULT for c in company_ids}
    if company_ids:
        rows = await conn.execute(
            select(scoring_models).where(scoring_models.c.company_id.in_(company_ids))
        )
        for row in rows:
            found[row.company_id] = ScoringModel(**{name: getattr(row, name) for name in FIELDS})
    return found


async def update_model(
    conn: AsyncConnection, company_id: int, changes: dict[str, Any]
) -> ScoringModel:
    """Apply the fields given; the others keep their values. Run inside a transaction."""
    model = replace(await get_model(conn, company_id), **changes)
    values = {**model.as_json(), "updated_at": now()}
    await conn.execute(
        dialect_insert(conn, scoring_models)
        .values(company_id=company_id, **values)
        .on_conflict_do_update(index_elements=["company_id"], set_=values)
    )
    return model
