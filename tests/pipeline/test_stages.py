"""The stage list, its knobs from the environment, and the supervisor."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mailbeacon.pipeline.process import supervise
from mailbeacon.pipeline.runner import Stage
from mailbeacon.pipeline.stages import stages
from mailbeacon.settings import Settings, from_env
from mailbeacon.store import Database


def test_knobs_come_from_the_environment() -> None:
    s = from_env(
        {
            "MAILBEACON_PIPELINE_LEASE_SECONDS": "3.5",
            "MAILBEACON_ENRICH_BATCH_SIZE": "250",
            "MAILBEACON_AUTOMATION_IDLE_POLL": "0.1",
            "MAILBEACON_ROLLUPS_POLL_SECONDS": "",  # empty: the default
        }
    )
    assert (s.pipeline_lease_seconds, s.enrich_batch_size) == (3.5, 250)
    assert s.automation_idle_poll == 0.1 and s.rollups_poll_seconds == 0.5
    assert isinstance(s.enrich_batch_size, int)
    defaults = from_env({})
    assert (defaults.enrich_poll_seconds, defaults.automation_lease_ttl) == (0.2, 10.0)


def test_every_stage_is_listed_once_with_the_default_cadence(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    listed = {s.name: s for s in stages(db, Settings(database_url=sqlite_url))}
    assert list(listed) == [
        "enrich",
        "rollups",
        "automation",
        "automation.jobs",
        "event_webhooks",
        "event_webhooks.sender",
        "campaign-sends",
        "retention",
        "lead-imports",
        "erase-sweep",
    ]
    assert listed["enrich"].poll == 0.2 and listed["automation"].poll == 0.05
    assert listed["automation.jobs"].leased  # SQLite: one writer at a time
    assert not listed["erase-sweep"].leased
    assert listed["campaign-sends"].wanted is not None
    assert listed["retention"].lease_seconds == 1200


async def test_a_stage_whose_setup_fails_is_started_again(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(sqlite_url)
    settings = Settings(database_url=sqlite_url)
    setups: list[int] = []
    ran = asyncio.Event()

    async def setup(db: Database, settings: Settings) -> None:
        setups.append(1)
        if len(setups) == 1:
            raise OSError("the geo database is being replaced")

    async def batch(db: Database, settings: Settings) -> int:
        ran.set()
        return 0

    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="mailbeacon"):
        task = asyncio.create_task(
            supervise(
                Stage("flaky-setup", batch, poll=0.05, leased=False, setup=setup),
                db,
                settings,
                stop,
            )
        )
        await asyncio.wait_for(ran.wait(), 10)
        stop.set()
        await asyncio.wait_for(task, 10)
    await db.dispose()
    assert len(setups) == 2
    assert any("stage flaky-setup failed; restarting" in r.getMessage() for r in caplog.records)
