"""The enrich stage on both engines: raw hits in, the events a user would expect out."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import func, select

from mailbeacon.enrich import pipeline
from mailbeacon.enrich.geo import Locator
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.schema import events

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.6.0"
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
LATER = dt.datetime(2030, 1, 1)  # a clock past every hit: nothing is held back


async def enrich(db: Database, settings: Settings) -> int:
    n = 0
    while step := await pipeline.process_batch(db, settings, Locator(), at_now=LATER):
        n += step
    return n


def summary(rows: list) -> list[tuple]:
    return [(r.type, r.verdict, r.inferred, r.forwarded) for r in rows]


async def test_a_forwarded_reader_is_flagged(db: Database, settings: Settings, mail: Any) -> None:
    await mail.hit("open", 600, "81.2.69.160", OUTLOOK)  # the lead, in London
    await mail.hit("click", 620, "81.2.69.161", CHROME, link_index=0)  # same network, browser
    await mail.hit("open", 7200, "8.8.8.8", THUNDERBIRD)  # someone else, elsewhere
    await mail.hit("click", 7230, "8.8.8.8", CHROME, link_index=1)
    await mail.hit("forward", 7300, "81.2.69.160", CHROME, method="POST")
    await enrich(db, settings)
    rows = await mail.events()
    assert summary(rows) == [
        ("open", "human", False, False),
        ("click", "human", False, False),
        ("open", "human", False, True),
        ("click", "human", False, True),
        ("forward", "human", False, False),
    ]
    assert (rows[0].client, rows[0].country) == ("Outlook", "GB")
    assert rows[1].url == "https://example.com/a"


async def test_proxy_refetches_fold_into_one_open(
    db: Database, settings: Settings, mail: Any
) -> None:
    for seconds in (300, 310, 330):  # one reading, three fetches by Gmail's proxy
        await mail.hit("open", seconds, "66.249.84.12", GMAIL)
    await mail.hit("open", 3600, "66.249.84.12", GMAIL)  # opened again an hour later
    await enrich(db, settings)
    rows = await mail.events()
    assert summary(rows) == [("open", "proxy", False, False), ("open", "proxy", False, False)]
    assert (rows[0].client, rows[0].country, rows[0].device) == ("Gmail", None, None)


async def test_a_human_click_without_an_open_infers_one(
    db: Database, settings: Settings, mail: Any
) -> None:
    click = await mail.hit("click", 900, "81.2.69.160", CHROME, link_index=1)
    await mail.hit("click", 1000, "81.2.69.160", CHROME, link_index=2)
    await mail.hit("click", 1100, "curl-box", "curl/8.4.0", link_index=0)
    await enrich(db, settings)
    rows = await mail.events()
    assert summary(rows) == [
        ("open", "human", True, False),
        ("click", "human", False, False),
        ("click", "human", False, False),
        ("click", "bot", False, False),
    ]
    assert rows[0].hit_id == click


async def test_a_machine_click_infers_no_open(db: Database, settings: Settings, mail: Any) -> None:
    await mail.hit("click", 900, "81.2.69.160", "python-requests/2.31.0", link_index=1)
    await enrich(db, settings)
    assert summary(await mail.events()) == [("click", "bot", False, False)]


async def test_a_scanner_burst_is_judged_whole(db: Database, settings: Settings, mail: Any) -> None:
    for i, seconds in enumerate((120.0, 120.3, 120.6)):  # every link at once
        await mail.hit("click", seconds, "81.2.69.160", CHROME, link_index=i)
    await mail.hit("click", 2.0, "20.42.1.1", CHROME, link_index=0)  # a cloud, on delivery
    await enrich(db, settings)
    rows = await mail.events()
    assert [r.verdict for r in rows] == ["scanner"] * 4
    assert rows[0].reason == "3 links clicked within 2 s from one address"
    # The cloud address is the sign; the timing is only named beside it.
    assert rows[3].reason == "from a cloud datacenter network (Microsoft Azure), 2 s after delivery"


async def test_readers_who_click_at_once_are_people(
    db: Database, settings: Settings, mail: Any
) -> None:
    """Timing alone never makes a verdict: the hottest leads click within seconds."""
    await mail.hit("open", 1.0, "81.2.69.160", OUTLOOK)  # opened the moment it arrived
    await mail.hit("click", 3.0, "81.2.69.161", CHROME, link_index=0)  # the office network
    await enrich(db, settings)
    rows = await mail.events()
    assert summary(rows) == [("open", "human", False, False), ("click", "human", False, False)]
    assert rows[1].reason == (
        "Chrome click from the address on Windows that opened this message as a person"
    )


async def test_an_images_blocked_reader_who_clicks_at_once_gets_an_inferred_open(
    db: Database, settings: Settings, mail: Any
) -> None:
    await mail.hit("click", 0.5, "81.2.69.160", CHROME, link_index=1)  # no pixel: images off
    await enrich(db, settings)
    rows = await mail.events()
    assert summary(rows) == [("open", "human", True, False), ("click", "human", False, False)]
    assert rows[1].reason == (
        "no machine signs: Chrome from the reader's own network, one link at a time; "
        "clicked 0 s after delivery, which alone proves nothing"
    )


async def test_a_head_of_the_pixel_is_no_event(db: Database, settings: Settings, mail: Any) -> None:
    await mail.hit("open", 5, "81.2.69.160", CHROME, method="HEAD")
    await mail.hit("open", 6, "40.94.1.20", None, method="HEAD")  # a gateway's probe
    assert await enrich(db, settings) == 2  # consumed, and nothing to show for it
    assert await mail.events() == []
    await mail.hit("open", 60, "81.2.69.160", OUTLOOK)
    await enrich(db, settings)
    assert summary(await mail.events()) == [("open", "human", False, False)]


async def test_a_one_click_unsubscribe_from_a_cloud_is_the_leads(
    db: Database, settings: Settings, mail: Any
) -> None:
    await mail.hit("unsubscribe", 40, "20.42.1.1", None, method="POST")  # RFC 8058 POST
    await enrich(db, settings)
    rows = await mail.events()
    assert summary(rows) == [("unsubscribe", "human", False, False)]
    assert rows[0].reason.startswith("unsubscribe authorised by its signed token, whoever")
    # The carrier's place is not the lead's.
    assert (rows[0].country, rows[0].device, rows[0].os) == (None, None, None)


async def test_a_honeypot_click_marks_its_burst(
    db: Database, settings: Settings, mail: Any
) -> None:
    await mail.hit("click", 400.0, "81.2.69.160", CHROME, link_index=0)
    await mail.hit("click", 400.5, "81.2.69.160", CHROME, link_index=3)  # the honeypot
    await mail.hit("click", 900.0, "81.2.69.160", CHROME, link_index=1)  # later: a person
    await enrich(db, settings)
    rows = await mail.events()
    assert summary(rows) == [
        ("click", "bot", False, False),
        ("click", "bot", False, False),
        ("open", "human", True, False),
        ("click", "human", False, False),
    ]
    assert "honeypot" in rows[0].reason


async def test_unsubscribe_and_rerun_are_idempotent(
    db: Database, settings: Settings, mail: Any
) -> None:
    await mail.hit("open", 60, "81.2.69.160", OUTLOOK)
    await mail.hit("unsubscribe", 90, "81.2.69.160", CHROME, method="POST")
    await mail.hit("unsubscribe", 80, "81.2.69.160", CHROME)  # the page view: no event
    assert await enrich(db, settings) == 3
    assert await enrich(db, settings) == 0
    first = summary(await mail.events())
    assert first == [("open", "human", False, False), ("unsubscribe", "human", False, False)]
    # Even replaying hits past the cursor (a crash before the cursor moved) adds nothing.
    async with db.begin() as conn:
        await conn.execute(pipeline.cursors.update().values(position=0))
    await enrich(db, settings)
    assert summary(await mail.events()) == first


async def test_rebuild_recomputes_every_event(db: Database, settings: Settings, mail: Any) -> None:
    await mail.hit("open", 60, "81.2.69.160", OUTLOOK)
    await mail.hit("click", 900, "81.2.69.160", CHROME, link_index=1)
    await enrich(db, settings)
    before = summary(await mail.events())
    async with db.begin() as conn:
        await conn.execute(events.update().values(verdict="bot"))  # a stale classifier
    assert await pipeline.rebuild(db, settings) == 2
    assert summary(await mail.events()) == before
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(events)) == 2


async def test_recent_clicks_wait_for_their_burst(
    db: Database, settings: Settings, mail: Any
) -> None:
    await mail.hit("open", 60, "81.2.69.160", OUTLOOK)
    await mail.hit("click", 100, "81.2.69.160", CHROME, link_index=0)
    at_click = mail.sent_at + dt.timedelta(seconds=100)
    locator = Locator()
    assert await pipeline.process_batch(db, settings, locator, at_now=at_click) == 1
    late = at_click + dt.timedelta(seconds=pipeline.CLICK_HOLD_SECONDS)
    assert await pipeline.process_batch(db, settings, locator, at_now=late) == 1


async def test_run_forever_holds_the_lease_and_stops(
    db: Database, settings: Settings, mail: Any
) -> None:
    await mail.hit("open", 60, "81.2.69.160", OUTLOOK)
    stop = asyncio.Event()
    first = asyncio.create_task(pipeline.run_forever(db, settings, stop))
    second = asyncio.create_task(pipeline.run_forever(db, settings, stop))
    for _ in range(50):
        if await mail.events():
            break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert summary(await mail.events()) == [("open", "human", False, False)]


async def test_a_proxy_open_is_an_open_so_a_click_infers_none(
    db: Database, settings: Settings, mail: Any
) -> None:
    await mail.hit("open", 300, "66.249.84.12", GMAIL)
    await mail.hit("click", 320, "81.2.69.160", CHROME, link_index=0)
    await enrich(db, settings)
    assert summary(await mail.events()) == [
        ("open", "proxy", False, False),
        ("click", "human", False, False),
    ]


async def test_anonymised_addresses_keep_only_the_network(
    db: Database, settings: Settings, mail: Any
) -> None:
    await mail.hit("open", 60, "81.2.69.160", OUTLOOK)
    await mail.hit("open", 90, "2a02:c7c:1234:5678::9", OUTLOOK)
    await enrich(db, settings.with_(anonymize_ip=True))
    rows = await mail.events()
    assert [r.ip for r in rows] == ["81.2.69.0", "2a02:c7c:1234::"]
    assert rows[0].country == "GB"
