"""Migration 0008 turns the composer's old marker tags into the tracking columns: the
campaign's switches, its tags without the markers, and its mail already sent marked as
sent without what was off (so the report's `not_tracked` is right for old campaigns)."""

from __future__ import annotations

import datetime as dt
import json

from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from mailbeacon.store import Database
from mailbeacon.store.migrate import alembic_config
from mailbeacon.store.schema import campaigns, leads, messages

WHEN = dt.datetime(2026, 3, 1, 9, 0)


def _move(conn: Connection, target: str, down: bool) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    (command.downgrade if down else command.upgrade)(cfg, target)


def _old_rows(conn: Connection) -> None:
    """Rows as the schema before 0008 held them (plain SQL: no column of 0008)."""
    conn.execute(
        text("INSERT INTO companies (id, name, plan, anonymize_ip, hit_retention_days,"
             " created_at) VALUES (1, 'Acme', 'trial', false, 0, :at)"),
        {"at": WHEN},
    )  # fmt: skip
    conn.execute(
        text("INSERT INTO leads (id, company_id, email, score, status, created_at)"
             " VALUES (1, 1, 'ann@example.com', 0, 'subscribed', :at)"),
        {"at": WHEN},
    )  # fmt: skip
    tags = {
        1: ["news", "tracking:opens-off"],
        2: ["tracking:clicks-off", "tracking:opens-off"],
        3: ["news"],
        4: None,
    }
    for campaign_id, tag_list in tags.items():
        conn.execute(
            text("INSERT INTO campaigns (id, company_id, name, subject, html, tags,"
                 " pixel_placement, pixel_format, status, sent_count, skipped_count,"
                 " failed_count, created_at) VALUES (:id, 1, 'c', 's', '<p>x</p>', :tags,"
                 " 'body', 'gif', 'sent', 1, 0, 0, :at)"),
            {"id": campaign_id, "tags": json.dumps(tag_list), "at": WHEN},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO messages (company_id, lead_id, campaign_id, subject, html,"
                 " status, created_at, sent_at) VALUES (1, 1, :id, 's', '<p>x</p>', 'sent',"
                 " :at, :at)"),
            {"id": campaign_id, "at": WHEN},
        )  # fmt: skip


async def test_old_marker_tags_become_the_switches(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_move, "0008-1", True)
        await conn.run_sync(_old_rows)
        await conn.run_sync(_move, "head", False)
    async with db.connect() as conn:
        rows = await conn.execute(
            select(
                campaigns.c.id, campaigns.c.tags, campaigns.c.track_opens, campaigns.c.track_clicks
            ).order_by(campaigns.c.id)
        )
        got = {r.id: (r.tags, r.track_opens, r.track_clicks) for r in rows}
        sent = await conn.execute(
            select(messages.c.campaign_id, messages.c.track_opens, messages.c.track_clicks)
        )
        mail = {r.campaign_id: (r.track_opens, r.track_clicks) for r in sent}
        tracked = (await conn.execute(select(leads.c.tracking))).scalar_one()
    assert got == {
        1: (["news"], False, True),
        2: ([], False, False),
        3: (["news"], True, True),
        4: (None, True, True),
    }
    assert mail == {1: (False, True), 2: (False, False), 3: (True, True), 4: (True, True)}
    assert tracked is True

    # Down again: the markers are back where a switch was off, and the columns are gone.
    async with db.engine.begin() as conn:
        await conn.run_sync(_move, "0008-1", True)
        back = await conn.execute(text("SELECT id, tags FROM campaigns ORDER BY id"))
        tags = {i: json.loads(t) if isinstance(t, str) else t for i, t in back}
        await conn.run_sync(_move, "head", False)
    assert tags == {
        1: ["news", "tracking:opens-off"],
        2: ["tracking:opens-off", "tracking:clicks-off"],
        3: ["news"],
        4: None,
    }
