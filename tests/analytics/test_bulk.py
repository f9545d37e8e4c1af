"""The bulk rollup build writes exactly the rows the incremental stage writes.

A few thousand random events over two campaigns exercise every branch of
`rules.counts`: every type and verdict, inferred and forwarded engagement, friends'
copies, missing messages (send time from the campaign), an unsent campaign, leads
without a timezone, with an unknown one and with half-hour offsets, empty strings and
NULLs in the dimensions, events before the send, late ones past MAX_HOURS and events
a microsecond either side of an hour boundary. Both builds run on the same events, then
every row of the three rollup tables is compared.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import random
from typing import Any

from sqlalchemy import delete, insert, select
from typer.testing import CliRunner

from mailbeacon.analytics import bulk, rollups
from mailbeacon.analytics.report import campaign_report
from mailbeacon.cli.report import report_app
from mailbeacon.crm.companies import create_company
from mailbeacon.store import Database, now
from mailbeacon.store.migrate import MIGRATIONS
from mailbeacon.store.schema import campaigns, cursors, events, leads, messages
from mailbeacon.store.schema_analytics import (
    rollup_campaign_leads,
    rollup_counts,
    rollup_forward_readers,
    rollup_message_events,
)
from testkit.naive import naive_report
from testkit.sample import known_mix

SENT = dt.datetime(2024, 3, 30, 22, 17, 5, 250_000)  # Europe's clocks move on the 31st
ZONES = (None, "UTC", "Europe/Paris", "Asia/Kolkata", "Asia/Kathmandu", "Mars/Olympus")
TYPES = ("open",) * 6 + ("click",) * 3 + ("forward", "unsubscribe")
VERDICTS = ("human", "human", "proxy", "prefetch", "scanner", "bot")
CLIENTS = (None, "", "Apple Mail", "Gmail", "Outlook")
COUNTRIES = (None, "", "FR", "US", "IN")
REASONS = ("", "Apple Mail Privacy Protection", "Defender link scan", "x" * 600)
IPS = (None, "", "192.0.2.1", "192.0.2.2", "2001:db8::1")


async def _world(conn: Any, rnd: random.Random) -> dict[str, Any]:
    company = await create_company(conn, "Bulk Co", "essential")
    camp_ids = []
    for name, sent_at in (("Sent", SENT), ("Never sent", None)):
        r = await conn.execute(
            insert(campaigns)
            .values(company_id=company, name=name, subject="s", html="h", status="sent")
            .values(created_at=SENT, sent_at=sent_at)
            .returning(campaigns.c.id)
        )
        camp_ids.append(int(r.scalar_one()))
    lead_ids = []
    for i in range(40):
        r = await conn.execute(
            insert(leads)
            .values(company_id=company, email=f"b{i}@x.example", timezone=ZONES[i % 6])
            .values(score=0, status="subscribed", created_at=now())
            .returning(leads.c.id)
        )
        lead_ids.append(int(r.scalar_one()))
    msgs: list[tuple[int, int, int]] = []  # (campaign, lead, message)
    for c in camp_ids:
        for lead in lead_ids:
            if rnd.random() < 0.1:  # events whose message row does not exist
                msgs.append((c, lead, 10_000_000 + len(msgs)))
                continue
            own = [m for cc, ll, m in msgs if cc == c and ll != lead]
            friend = own[-1] if own and rnd.random() < 0.1 else None
            r = await conn.execute(
                insert(messages)
                .values(company_id=company, lead_id=lead, campaign_id=c, subject="s")
                .values(html="h", status="sent", created_at=SENT)
                .values(sent_at=rnd.choice((SENT, SENT + dt.timedelta(minutes=7), None)))
                .values(forwarded_from_message_id=friend)
                .returning(messages.c.id)
            )
            msgs.append((c, lead, int(r.scalar_one())))
    return {"company": company, "messages": msgs}


def _at(rnd: random.Random) -> dt.datetime:
    pick = rnd.random()
    if pick < 0.15:  # a microsecond either side of an hour after the send
        return SENT + dt.timedelta(hours=rnd.randrange(0, 30), microseconds=rnd.choice((-1, 1)))
    if pick < 0.2:
        return SENT + dt.timedelta(days=rnd.choice((-2, 31, 40)))  # before; past MAX_HOURS
    return SENT + dt.timedelta(
        seconds=rnd.randrange(0, 9 * 86400), microseconds=rnd.randrange(10**6)
    )


def _events(
    world: dict[str, Any], rnd: random.Random, n: int, later: int = 0
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        campaign, lead, message = rnd.choice(world["messages"])
        type_ = rnd.choice(TYPES)
        rows.append(
            {
                "type": type_,
                "at": _at(rnd) + dt.timedelta(days=later),
                "company_id": world["company"],
                "message_id": message,
                "lead_id": lead,
                "campaign_id": None if rnd.random() < 0.03 else campaign,
                "verdict": rnd.choice(VERDICTS),
                "reason": rnd.choice(REASONS),
                "inferred": type_ == "open" and rnd.random() < 0.15,
                "forwarded": rnd.random() < 0.15,
                "client": rnd.choice(CLIENTS),
                "device": rnd.choice((None, "mobile", "desktop", "tablet")),
                "device_model": rnd.choice((None, "iPhone", "Pixel 8")),
                "os": rnd.choice((None, "iOS", "Windows")),
                "country": rnd.choice(COUNTRIES),
                "ip": rnd.choice(IPS),
                "url": rnd.choice((None, "https://example.com/a", "https://e.com/" + "b" * 600)),
                "link_index": rnd.choice((None, 0, 1)),
            }
        )
    # Ids follow time, as the pipeline writes them: a replay keeps as `last_at` the latest
    # event of the last batch that touched the lead, the bulk build the latest of all.
    return sorted(rows, key=lambda r: r["at"])


async def _snapshot(db: Database) -> dict[str, Any]:
    async with db.connect() as conn:
        t = rollup_campaign_leads
        lead_rows = {
            (r.campaign_id, r.lead_id): (
                r.company_id,
                *(bool(r._mapping[k]) for k in rollups.STATE_FIELDS),
                r.last_at,
            )
            for r in (await conn.execute(select(t))).all()
        }
        readers = set((await conn.execute(select(rollup_forward_readers))).all())
        counts = {
            (r.campaign_id, r.dim, r.key): (r.company_id, int(r.n))
            for r in (await conn.execute(select(rollup_counts))).all()
        }
        groups = {tuple(r) for r in (await conn.execute(select(rollup_message_events))).all()}
        position = (
            await conn.execute(select(cursors.c.position).where(cursors.c.name == "rollups"))
        ).scalar_one()
        top = (await conn.execute(select(events.c.id).order_by(events.c.id.desc()))).first()
    assert top is not None and position == top[0]
    return {"leads": lead_rows, "readers": readers, "counts": counts, "groups": groups}


def _assert_same(incremental: dict[str, Any], bulk_: dict[str, Any]) -> None:
    assert bulk_["leads"] == incremental["leads"]
    assert bulk_["readers"] == incremental["readers"]
    assert bulk_["groups"] == incremental["groups"]  # the who-engaged list's event groups
    # A replay may leave a unique counter at 0 (an inferred open later made real, in
    # another batch); the bulk build writes no zero rows. Every other row is equal.
    zero = {k for k, (_, n) in incremental["counts"].items() if n == 0}
    assert all(dim == "n" for _, dim, _ in zero)
    assert {k: v for k, v in incremental["counts"].items() if k not in zero} == bulk_["counts"]


async def test_bulk_build_equals_the_incremental_rows(db: Database) -> None:
    rnd = random.Random(5)
    async with db.begin() as conn:
        world = await _world(conn, rnd)
        await conn.execute(insert(events), _events(world, rnd, 3000))
    await rollups.catch_up(db, limit=97)  # batches cross lead states and readers
    incremental = await _snapshot(db)
    assert len(incremental["leads"]) > 50 and len(incremental["readers"]) > 10
    assert len(incremental["groups"]) > 100
    dims = {dim for _, dim, _ in incremental["counts"]}
    assert {"how", "t_open", "t_click", "t_machine", "link", "bot_click_reason"} <= dims

    assert await bulk.rebuild_bulk(db) > 2800
    _assert_same(incremental, await _snapshot(db))

    # The stage carries on from the bulk build's cursor, and agrees with the next one.
    async with db.begin() as conn:
        await conn.execute(insert(events), _events(world, rnd, 500, later=50))
    assert await rollups.catch_up(db, limit=61) == 500
    carried_on = await _snapshot(db)
    await bulk.rebuild_bulk(db)
    _assert_same(carried_on, await _snapshot(db))


async def test_rebuild_rollups_command_uses_the_bulk_build(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        async with db.begin() as conn:
            world = await known_mix(conn)
        runner = CliRunner()
        for extra in ([], ["--replay"]):
            result = await asyncio.to_thread(
                runner.invoke, report_app, ["rebuild-rollups", "--database", sqlite_url, *extra]
            )
            assert result.exit_code == 0, result.output
            assert "rolled up 19 events" in result.output
            async with db.connect() as conn:
                report = await campaign_report(conn, world.company_id, world.campaign_id)
                naive = await naive_report(conn, world.company_id, world.campaign_id)
            report.pop("name"), report.pop("sent_at")
            assert report == naive and report["human_opens_unique"] == 5
    finally:
        await db.dispose()


async def test_the_migration_backfills_the_event_groups_the_stage_would_keep(
    db: Database,
) -> None:
    """Upgrading a database with events already rolled up: the new event groups come
    from the events up to the stage's cursor, as the stage itself would have kept them."""
    rnd = random.Random(7)
    async with db.begin() as conn:
        world = await _world(conn, rnd)
        await conn.execute(insert(events), _events(world, rnd, 800))
    await rollups.catch_up(db, limit=89)
    kept = (await _snapshot(db))["groups"]
    async with db.begin() as conn:  # not counted yet: the stage adds these after upgrading
        await conn.execute(insert(events), _events(world, rnd, 100, later=50))
    (path,) = MIGRATIONS.glob("versions/*_message_event_groups.py")
    spec = importlib.util.spec_from_file_location("message_event_groups", path)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    async with db.begin() as conn:
        await conn.execute(delete(rollup_message_events))
        await conn.exec_driver_sql(migration.BACKFILL)
    async with db.connect() as conn:
        after = {tuple(r) for r in (await conn.execute(select(rollup_message_events))).all()}
    assert after == kept and len(kept) > 50
    assert await rollups.catch_up(db) == 100
