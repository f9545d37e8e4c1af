"""The consumer's batch without a server: once-rules it remembers, and when it may."""

from __future__ import annotations

import pytest
from automation_harness import World, seed
from sqlalchemy import func, insert, select

from mailbeacon.automation.consumer import RuleCache, consume_batch
from mailbeacon.store import Database, now
from mailbeacon.store.schema import leads
from mailbeacon.store.schema_automation import automation_jobs, automation_rules, automation_runs


async def _state(db: Database, lead: int) -> tuple[int, int, int]:
    async with db.connect() as conn:
        runs = (await conn.execute(select(func.count()).select_from(automation_runs))).scalar()
        jobs = (
            await conn.execute(
                select(func.count()).where(
                    automation_jobs.c.status == "done",
                    automation_jobs.c.result == "score +3",
                    automation_jobs.c.started_at.is_not(None),
                )
            )
        ).scalar()
        score = (await conn.execute(select(leads.c.score).where(leads.c.id == lead))).scalar()
    return int(runs or 0), int(jobs or 0), int(score)


async def test_a_once_rule_is_remembered_only_after_its_batch_commits(db_url: str) -> None:
    db = Database(db_url)
    try:
        company, _, owner, _, campaign, _ = await seed(db)
        world = World(db, None, company, owner, "", "", campaign)  # type: ignore[arg-type]
        lead = await world.lead("lee@acme.test")
        message = await world.message(lead)
        async with db.begin() as conn:
            await conn.execute(
                insert(automation_rules).values(
                    company_id=company,
                    name="opened",
                    enabled=True,
                    repeat=False,
                    trigger={"type": "opened"},
                    actions=[{"type": "add_score", "points": 3}],
                    created_at=now(),
                    updated_at=now(),
                )
            )
        await world.event(message, lead)
        cache = RuleCache()
        with pytest.raises(RuntimeError):
            async with db.begin() as conn:
                assert (await consume_batch(conn, cache, 100))[0] == 1
                raise RuntimeError("the process dies before the commit")
        assert not cache.fired  # rolled back: nothing to remember
        assert await _state(db, lead) == (0, 0, 0)

        async with db.begin() as conn:
            assert (await consume_batch(conn, cache, 100))[0] == 1
        cache.committed()
        assert cache.fired
        assert await _state(db, lead) == (1, 1, 3)

        await world.event(message, lead)  # a second open: remembered, nothing written
        async with db.begin() as conn:
            assert (await consume_batch(conn, cache, 100))[0] == 1
        cache.committed()
        assert await _state(db, lead) == (1, 1, 3)

        await world.event(message, lead)  # another process, nothing remembered: the key
        fresh = RuleCache()
        async with db.begin() as conn:
            assert (await consume_batch(conn, fresh, 100))[0] == 1
        fresh.committed()
        assert await _state(db, lead) == (1, 1, 3)
        assert fresh.fired == cache.fired  # refused by the key, then remembered too
    finally:
        await db.dispose()
