"""Who engaged with a campaign, through the real API, for the known mix of readers.

The known mix (testkit.sample.KNOWN_MIX) plus l9, whose message bounced:
l1 opens twice in Apple Mail and clicks; l2 is only prefetched by Apple's privacy proxy,
then unsubscribes; l3 opens through Gmail's proxy; l4 is scanned, then clicks (an
inferred open); l5 opens, forwards to a friend, and another reader opens their copy;
l6 is a bot; l7 clicks with images off; l8 unsubscribes; the friend reads a copy of
l5's mail (never a recipient of the campaign).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from mailbeacon.analytics import rollups
from mailbeacon.app import create_app
from mailbeacon.crm.users import create_api_key
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import leads, messages
from testkit.sample import LINKS, SENT_AT, World, known_mix

MAILBEACON = str(Path(sys.executable).parent / "mailbeacon")
EXPECTED = {
    "opened": ["L1", "L3", "L4", "L5", "L7"],  # the report's human_opens_unique: 5
    "clicked": ["L1", "L4", "L7"],  # clicks_unique: 3
    "forwarded": ["L5"],
    "not_opened": ["L6"],  # a bot is no reader; l2 and l8 left, l9 bounced
    "privacy_protected": ["L2"],
    "unsubscribed": ["L2", "L8"],  # unsubscribes: 2
    "bounced": ["L9"],
}


def at(minutes: int) -> str:
    return (SENT_AT + dt.timedelta(minutes=minutes)).isoformat(timespec="milliseconds") + "Z"


async def _bounced_lead(db: Database, world: World) -> None:
    async with db.begin() as conn:
        lead = await conn.execute(
            insert(leads)
            .values(
                company_id=world.company_id,
                email=f"l9.{world.company_id}@lead.example",
                first_name="L9",
                score=0,
                status="subscribed",
                created_at=now(),
            )
            .returning(leads.c.id)
        )
        world.leads["l9"] = int(lead.scalar_one())
        await conn.execute(
            insert(messages).values(
                company_id=world.company_id,
                lead_id=world.leads["l9"],
                campaign_id=world.campaign_id,
                subject="Our spring launch",
                html="<p>Hello</p>",
                status="failed",
                error="550 5.1.1 no such mailbox",
                created_at=SENT_AT,
            )
        )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, run_stages=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mb.test") as client:
        yield client


@pytest.fixture
async def seeded(db: Database) -> tuple[World, dict[str, str]]:
    async with db.begin() as conn:
        world = await known_mix(conn)
    await _bounced_lead(db, world)
    await rollups.catch_up(db)
    keys = {}
    async with db.begin() as conn:
        for role, user_id in world.users.items():
            keys[role] = await create_api_key(conn, user_id)
    return world, keys


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _get(api: httpx.AsyncClient, key: str, campaign_id: int, **params: Any) -> httpx.Response:
    return await api.get(f"/api/v1/campaigns/{campaign_id}/leads", params=params, headers=auth(key))


@pytest.mark.parametrize("engagement", list(EXPECTED))
async def test_each_engagement_lists_exactly_its_leads(
    api: httpx.AsyncClient, seeded: tuple[World, dict[str, str]], engagement: str
) -> None:
    world, keys = seeded
    r = await _get(api, keys["marketing_manager"], world.campaign_id, engagement=engagement)
    assert r.status_code == 200, r.text
    assert [item["first_name"] for item in r.json()] == EXPECTED[engagement]
    assert "link" not in r.headers
    for item in r.json():
        assert engagement in item["engagement"]


async def test_what_each_lead_did_and_why(
    api: httpx.AsyncClient, seeded: tuple[World, dict[str, str]]
) -> None:
    world, keys = seeded
    r = await _get(api, keys["marketing_manager"], world.campaign_id, engagement="opened")
    got = {item["first_name"]: item for item in r.json()}
    l1 = got["L1"]
    assert l1["lead_id"] == world.leads["l1"]
    assert l1["email"] == f"l1.{world.company_id}@lead.example"
    assert (l1["opens"], l1["clicks"]) == (2, 1)
    assert (l1["first_open_at"], l1["last_open_at"]) == (at(60), at(120))
    assert l1["urls"] == [LINKS[0]]
    assert l1["verdicts"] == {"human": 3}
    assert l1["reason"] == "opened in Apple Mail; clicked 1 link"
    assert l1["engagement"] == ["opened", "clicked"]
    l3 = got["L3"]
    assert (l3["opens"], l3["clicks"], l3["verdicts"]) == (1, 0, {"proxy": 1})
    assert l3["reason"].startswith("opened in Gmail (through the mail provider's image proxy")
    l4 = got["L4"]
    assert (l4["opens"], l4["clicks"], l4["machine_opens"], l4["bot_clicks"]) == (1, 1, 1, 1)
    assert (l4["first_open_at"], l4["urls"]) == (at(240), [LINKS[1]])
    assert l4["reason"] == (
        "clicked with images off: the open is inferred from the click; clicked 1 link; "
        "2 scanner hits set apart (Microsoft Defender link scan)"
    )
    l5 = got["L5"]
    assert (l5["opens"], l5["forwards"], l5["verdicts"]) == (1, 2, {"human": 3})
    assert l5["reason"] == (
        "opened in Outlook; forwarded it to a friend; "
        "another reader of their copy opened it (forwarded)"
    )
    assert l5["engagement"] == ["opened", "forwarded"]
    l7 = got["L7"]
    assert (l7["opens"], l7["clicks"], l7["first_open_at"], l7["urls"]) == (0, 1, None, [LINKS[0]])

    mm = keys["marketing_manager"]
    r = await _get(api, mm, world.campaign_id, engagement="privacy_protected")
    (l2,) = r.json()
    assert (l2["opens"], l2["machine_opens"], l2["verdicts"]) == (0, 1, {"prefetch": 1})
    assert l2["reason"] == "opened in Apple Mail; privacy prefetch only; unsubscribed"
    assert l2["engagement"] == ["privacy_protected", "unsubscribed"]

    r = await _get(api, keys["marketing_manager"], world.campaign_id, engagement="bounced")
    (l9,) = r.json()
    assert (l9["status"], l9["reason"]) == ("failed", "bounced: 550 5.1.1 no such mailbox")
    r = await _get(api, keys["marketing_manager"], world.campaign_id, engagement="not_opened")
    (l6,) = r.json()
    assert l6["reason"] == "2 bot hits set apart (python-requests)"
    assert (l6["machine_opens"], l6["bot_clicks"], l6["verdicts"]) == (1, 1, {"bot": 2})


async def test_keyset_pages_follow_the_link_header(
    api: httpx.AsyncClient, seeded: tuple[World, dict[str, str]]
) -> None:
    world, keys = seeded
    seen: list[list[str]] = []
    url: str | None = f"/api/v1/campaigns/{world.campaign_id}/leads?engagement=opened&limit=2"
    while url is not None:
        r = await api.get(url, headers=auth(keys["marketing_manager"]))
        assert r.status_code == 200, r.text
        seen.append([item["first_name"] for item in r.json()])
        link = r.headers.get("link")
        url = None
        if link is not None:
            assert link.endswith('>; rel="next"') and link.startswith("<http://mb.test/")
            url = link[1 : link.index(">")]
            assert "limit=2" in url and "engagement=opened" in url
    assert seen == [["L1", "L3"], ["L4", "L5"], ["L7"]]


async def test_bad_queries_name_their_parameter(
    api: httpx.AsyncClient, seeded: tuple[World, dict[str, str]]
) -> None:
    world, keys = seeded
    key = keys["marketing_manager"]
    first = await _get(api, key, world.campaign_id, engagement="opened", limit=1)
    cursor = first.headers["link"].split("cursor=")[1].split(">")[0]
    cases = [
        ({"engagement": "opened", "limit": 501}, "limit"),
        ({"engagement": "opened", "limit": 0}, "limit"),
        ({"engagement": "never_opened"}, "engagement"),
        ({}, "engagement"),
        ({"engagement": "clicked", "cursor": cursor}, "cursor"),  # made for another list
        ({"engagement": "opened", "cursor": "not-a-cursor"}, "cursor"),
    ]
    for params, field in cases:
        r = await _get(api, key, world.campaign_id, **params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["field"] == field, params
    r = await _get(api, key, world.campaign_id, engagement="opened", limit=500)
    assert r.status_code == 200 and len(r.json()) == 5


async def test_csv_export_of_a_whole_list(
    api: httpx.AsyncClient, seeded: tuple[World, dict[str, str]]
) -> None:
    world, keys = seeded
    r = await _get(
        api, keys["marketing_manager"], world.campaign_id, engagement="clicked", format="csv"
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["first_name"] for row in rows] == ["L1", "L4", "L7"]
    assert rows[0]["urls"] == LINKS[0]
    assert (rows[0]["opens"], rows[0]["clicks"], rows[0]["first_open_at"]) == ("2", "1", at(60))
    assert rows[0]["reason"] == "opened in Apple Mail; clicked 1 link"
    assert list(rows[0])[:9] == [
        "lead_id",
        "email",
        "first_name",
        "last_name",
        "opens",
        "clicks",
        "first_open_at",
        "last_open_at",
        "urls",
    ]
    # Every page, even from a page size of one.
    mm = keys["marketing_manager"]
    r = await _get(api, mm, world.campaign_id, engagement="opened", format="csv", limit=1)
    assert [row["first_name"] for row in csv.DictReader(io.StringIO(r.text))] == EXPECTED["opened"]


async def test_sales_roles_and_other_companies_see_nothing(
    api: httpx.AsyncClient, db: Database, seeded: tuple[World, dict[str, str]]
) -> None:
    world, keys = seeded
    r = await _get(api, keys["salesperson"], world.campaign_id, engagement="opened")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    async with db.begin() as conn:
        other = await known_mix(conn, name="Other launch")
        other_key = await create_api_key(conn, other.users["marketing_manager"])
    await rollups.catch_up(db)
    r = await _get(api, other_key, world.campaign_id, engagement="opened")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await _get(api, other_key, other.campaign_id, engagement="opened")
    assert [item["lead_id"] for item in r.json()] == [
        other.leads[k] for k in ("l1", "l3", "l4", "l5", "l7")
    ]
    # An id past what the column holds is answered like any other missing campaign.
    r = await _get(api, keys["marketing_manager"], 2**40, engagement="opened")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_the_command_line_lists_them_too(sqlite_url: str) -> None:
    async def seed() -> World:
        db = Database(sqlite_url)
        try:
            async with db.begin() as conn:
                world = await known_mix(conn)
            await rollups.catch_up(db)
            return world
        finally:
            await db.dispose()

    world = asyncio.run(seed())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MAILBEACON, "campaign", "leads", *args, "--database", sqlite_url],
            capture_output=True,
            text=True,
            timeout=60,
        )

    cid = str(world.campaign_id)
    out = run(cid, "--engagement", "clicked", "--csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["first_name"], r["clicks"], r["urls"]) for r in rows] == [
        ("L1", "1", LINKS[0]),
        ("L4", "1", LINKS[1]),
        ("L7", "1", LINKS[0]),
    ]
    out = run(cid, "--engagement", "unsubscribed", "--json")
    assert [item["first_name"] for item in json.loads(out.stdout)] == ["L2", "L8"]
    out = run(cid, "--engagement", "privacy_protected")
    assert out.stdout.splitlines()[-1] == "1 lead privacy_protected"
    assert "privacy prefetch only" in out.stdout
    bad = run(cid, "--engagement", "never")
    assert bad.returncode == 2 and "--engagement" in bad.stderr
    missing = run("999999", "--engagement", "opened")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
