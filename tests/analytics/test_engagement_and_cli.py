"""A lead's engagement summary, and the report on the command line."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from mailbeacon.analytics import rollups
from mailbeacon.analytics.engagement import lead_engagement
from mailbeacon.cli.report import report_app
from mailbeacon.store import Database
from testkit.sample import known_mix

CASES = [
    # lead, opens, repeat opens, clicks, usual hour (local), forwards, outcome
    ("l1", 2, 1, 1, 11, 0, "clicked"),
    ("l2", 0, 0, 0, None, 0, "ignored"),  # a prefetch is not an open
    ("l3", 1, 0, 0, 12, 0, "opened"),
    ("l4", 1, 0, 1, 18, 0, "clicked"),  # the inferred open, 18:30 in Kolkata
    ("l5", 1, 0, 0, 10, 2, "opened"),  # a send to a friend + another reader
]


@pytest.mark.parametrize(("lead", "opens", "repeat", "clicks", "hour", "fwd", "outcome"), CASES)
async def test_lead_engagement(
    db: Database,
    lead: str,
    opens: int,
    repeat: int,
    clicks: int,
    hour: int | None,
    fwd: int,
    outcome: str,
) -> None:
    async with db.begin() as conn:
        world = await known_mix(conn)
    async with db.connect() as conn:
        got = await lead_engagement(conn, world.company_id, world.leads[lead])
    assert (got["opens"], got["repeat_opens"], got["clicks"]) == (opens, repeat, clicks)
    assert (got["usual_open_hour"], got["forwards"]) == (hour, fwd)
    assert got["affinity"]["campaigns"][0]["outcome"] == outcome
    assert got["affinity"]["tags"]["launch"][outcome] == 1
    if lead == "l1":
        assert got["places"] == [{"place": "FR", "opens": 2}]


async def test_cli_prints_the_report_as_json_and_as_a_table(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    async with db.begin() as conn:
        world = await known_mix(conn)
    await db.dispose()
    runner = CliRunner()
    args = ["campaign", str(world.campaign_id), "--database", sqlite_url]

    def invoke(*extra: str) -> str:
        result = runner.invoke(report_app, [*args, *extra], env={"COLUMNS": "220"})
        assert result.exit_code == 0, result.output
        return result.output

    data = json.loads(await asyncio.to_thread(invoke, "--json"))
    assert (data["human_opens_unique"], data["machine_opens"], data["sent"]) == (5, 3, 8)
    table = await asyncio.to_thread(invoke)
    assert "human opens (unique)" in table and "Apple Mail Privacy Protection" in table
    assert data["privacy_protected"] == 1
    low, high = (f"{x * 100:.1f}%" for x in data["estimated_open_rate_interval"])
    assert f"90% interval {low} to {high}" in table
    assert "assumption: readers click as often whatever mail app they use." in table
    assert "Not reliable yet: only 1 reader(s) with visible opens clicked" in table
    missing = await asyncio.to_thread(
        runner.invoke, report_app, ["campaign", "999", "--database", sqlite_url]
    )
    assert missing.exit_code == 1 and "--database" in missing.output
    assert await rollups.catch_up(Database(sqlite_url)) == 0
