"""The scoring model (issue 16): what each event is worth, how points fade, and the
model applied by the automation stage's batch, idempotently, on both engines."""

from __future__ import annotations

import datetime as dt

import pytest
from automation_harness import World, seed
from sqlalchemy import select, update

from mailbeacon.automation.consumer import RuleCache, consume_batch
from mailbeacon.automation.scoring import Scored, add_points, fade, refresh_scores, score_of
from mailbeacon.automation.triggers import Event
from mailbeacon.crm.scoring import ScoringModel, update_model
from mailbeacon.store import Database, now
from mailbeacon.store.schema import cursors, leads
from mailbeacon.store.schema_scoring import lead_scores

MODEL = ScoringModel(
    enabled=True,
    open_points=2,
    click_points=6,
    forward_points=7,
    unsubscribe_points=-20,
    half_life_days=10,
)


def ev(type_: str = "open", verdict: str = "human", **kw: object) -> Event:
    fields: dict[str, object] = {"id": 1, "type": type_, "company_id": 1, "lead_id": 2}
    fields |= {"message_id": 3, "campaign_id": None, "verdict": verdict} | kw
    return Event(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "scored"),
    [
        (ev(), ("open:3", 2)),
        (ev(verdict="proxy"), ("open:3", 2)),  # Gmail's proxy fetches when the reader opens
        (ev(verdict="human", inferred=True), ("open:3", 2)),  # a click proves the open
        (ev(id=9), ("open:3", 2)),  # same message, same key: the first open only scores
        (ev(message_id=4), ("open:4", 2)),
        (ev(verdict="prefetch"), None),  # Apple's privacy prefetch
        (ev(verdict="scanner"), None),
        (ev(verdict="bot"), None),
        (ev("click", url="https://a.test/pricing"), ("click:3:", 6)),
        (ev("click", "scanner", url="https://a.test/pricing"), None),
        (ev("click", "bot", url="https://a.test/pricing"), None),
        (ev("forward"), ("forward:3", 7)),
        (ev(forwarded=True), ("forward:3", 7)),  # a reader the lead forwarded it to
        (ev("forward", "bot"), None),
        (ev("unsubscribe"), ("unsubscribe:3", -20)),
        # An unsubscribe is authorised by its token: the lead's, whoever carried it.
        (ev("unsubscribe", "bot"), ("unsubscribe:3", -20)),
    ],
)
def test_what_an_event_is_worth(event: Event, scored: tuple[str, int] | None) -> None:
    got = score_of(event, MODEL)
    if scored is None or got is None:
        assert got == scored
    else:
        assert got[0].startswith(scored[0]) and got[1] == scored[1]


def test_each_link_scores_once_and_a_zero_scores_nothing() -> None:
    pricing = score_of(ev("click", url="https://a.test/pricing"), MODEL)
    again = score_of(ev("click", id=8, url="https://a.test/pricing"), MODEL)
    docs = score_of(ev("click", url="https://a.test/docs"), MODEL)
    assert pricing == again and pricing != docs
    assert score_of(ev(), ScoringModel(enabled=True, open_points=0)) is None


T0 = dt.datetime(2026, 1, 1)


@pytest.mark.parametrize(
    ("points", "days", "half_life", "left"),
    [
        (100, 0, 10, 100),
        (100, 10, 10, 50),
        (100, 20, 10, 25),
        (100, 30, 0, 100),  # a half-life of 0: never fades
        (-20, 10, 10, -10),  # an unsubscribe fades too
        (100, -5, 10, 100),  # time never runs back
    ],
)
def test_points_halve_every_half_life(points: int, days: int, half_life: int, left: int) -> None:
    assert fade(points, days * 86400, half_life) == pytest.approx(left)


def test_points_read_late_are_faded_to_the_latest_time() -> None:
    def s(day: int, points: int) -> Scored:
        return Scored(1, 1, f"k{day}", points, T0 + dt.timedelta(days=day), day)

    points, at = add_points(0.0, T0, [s(10, 8), s(0, 8)], 10)
    assert (points, at) == (pytest.approx(12), T0 + dt.timedelta(days=10))
    assert add_points(points, at, [s(20, 4)], 10) == (pytest.approx(10), s(20, 4).at)


async def _score(db: Database, lead: int) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(select(leads.c.score).where(leads.c.id == lead))).scalar())


async def _consume(db: Database) -> int:
    async with db.begin() as conn:
        return (await consume_batch(conn, RuleCache(), 100))[0]


async def test_the_stage_scores_once_per_key_and_scores_fade(db_url: str) -> None:
    db = Database(db_url)
    try:
        company, _, owner, _, campaign, _ = await seed(db)
        w = World(db, None, company, owner, "", "", campaign)  # type: ignore[arg-type]
        lead, other = await w.lead("lee@acme.test"), await w.lead("kim@acme.test")
        message = await w.message(lead)
        await w.event(message, lead)
        assert await _consume(db) == 1
        assert await _score(db, lead) == 0  # the model is off until the company turns it on

        async with db.begin() as conn:
            await update_model(conn, company, MODEL.as_json())
        when = now()
        for _ in range(2):  # a second open of the same message
            await w.event(message, lead, at=when)
        await w.event(message, lead, type="click", url="https://acme.test/pricing", at=when)
        await w.event(message, lead, type="click", url="https://acme.test/pricing", at=when)
        await w.event(message, lead, verdict="prefetch", at=when)
        await w.event(message, other, verdict="scanner", type="click", url="https://x.test/")
        assert await _consume(db) == 6
        assert (await _score(db, lead), await _score(db, other)) == (2 + 6, 0)

        # Read again from the start (a crash before the cursor moved): nothing more.
        async with db.begin() as conn:
            await conn.execute(
                update(cursors).where(cursors.c.name == "automation").values(position=0)
            )
        assert await _consume(db) == 7
        assert await _score(db, lead) == 8

        # Rule points sit on top and never fade (9 here); the model's 8 halve in 10 days.
        async with db.begin() as conn:
            await conn.execute(update(leads).where(leads.c.id == lead).values(score=9 + 8))
            await conn.execute(
                update(lead_scores)
                .where(lead_scores.c.lead_id == lead)
                .values(at=when - dt.timedelta(days=10), refreshed_at=when - dt.timedelta(days=1))
            )
            assert await refresh_scores(conn, now()) == 1
            assert await refresh_scores(conn, now()) == 0  # fresh now: looked at again later
        assert await _score(db, lead) == 9 + 4

        # An unsubscribe takes points away.
        await w.event(message, lead, type="unsubscribe", verdict="human")
        assert await _consume(db) == 1
        assert await _score(db, lead) == 9 + 4 - 20
    finally:
        await db.dispose()
