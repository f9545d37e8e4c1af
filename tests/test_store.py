"""The schema migrates on both engines, twice without harm, and the plans are data."""

from sqlalchemy import select

from mailbeacon.store import Database
from mailbeacon.store.migrate import is_current, upgrade
from mailbeacon.store.schema import plans


async def test_migrations_are_idempotent_and_seed_every_plan(db: Database) -> None:
    await upgrade(db)
    assert await is_current(db)
    async with db.connect() as conn:
        rows = (await conn.execute(select(plans.c.name, plans.c.email_tracking))).all()
    assert {name: tracking for name, tracking in rows} == {
        "trial": True,
        "essential": True,
        "advanced": True,
        "ultimate": True,
    }
