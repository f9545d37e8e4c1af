"""Apple-aware silence: a not_opened rule may leave privacy-protected leads alone.

Apple Mail Privacy Protection fetches the pixel whether or not the reader opens, so a
lead whose only sign is that prefetch is not known to be silent. With
`"privacy_protected": "exclude"` the rule neither reminds them nor counts them.
"""

from __future__ import annotations

import asyncio

import pytest
from automation_harness import Mailbox, Server, World, eventually

Stage = tuple[World, Server]


async def test_exclude_skips_the_privacy_protected_lead_and_reminds_the_silent_one(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    box = smtp[0]
    rule = w.rule(
        trigger={
            "type": "not_opened",
            "campaign_id": w.campaign_id,
            "within_seconds": 2,
            "privacy_protected": "exclude",
        },
        actions=[{"type": "send_email", "subject": "Did you see this?", "html": "<p>ping</p>"}],
    )
    assert rule["trigger"]["privacy_protected"] == "exclude"
    people = {}
    for name in ("apple", "silent", "scanned", "reader"):
        lead = await w.lead(f"{name}@example.com")
        people[name] = (lead, await w.message(lead))
    apple, silent, scanned, reader = (people[k] for k in ("apple", "silent", "scanned", "reader"))
    await w.event(apple[1], apple[0], verdict="prefetch", client="Apple Mail")
    await w.event(scanned[1], scanned[0], verdict="scanner")  # a scanner is no reader
    await w.event(reader[1], reader[0])
    await eventually(lambda: len(box.received) >= 2, timeout=20, what="the reminders")
    await asyncio.sleep(1.5)  # time enough for a reminder to the Apple reader, were there one
    assert sorted(m["To"] for m in box.received) == ["scanned@example.com", "silent@example.com"]
    runs = w.runs(rule["id"])
    assert sorted(r["lead_id"] for r in runs) == sorted([silent[0], scanned[0]])


async def test_include_is_the_default_and_reminds_the_apple_reader(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    box = smtp[0]
    w.rule(
        trigger={"type": "not_opened", "campaign_id": w.campaign_id, "within_seconds": 2},
        actions=[{"type": "send_email", "subject": "Did you see this?", "html": "<p>ping</p>"}],
    )
    lead = await w.lead("apple@example.com")
    await w.event(await w.message(lead), lead, verdict="prefetch", client="Apple Mail")
    await eventually(lambda: len(box.received) >= 1, timeout=20, what="the reminder")
    assert [m["To"] for m in box.received] == ["apple@example.com"]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            {"type": "not_opened", "within_seconds": 60, "privacy_protected": "maybe"},
            "trigger.privacy_protected",
        ),
        ({"type": "opened", "privacy_protected": "exclude"}, "trigger.privacy_protected"),
    ],
)
async def test_a_bad_privacy_protected_is_refused_naming_the_field(
    world: Stage, trigger: dict, message: str
) -> None:
    w, _ = world
    answer = w.api.post(
        "/api/v1/rules",
        json={"name": "x", "trigger": trigger, "actions": [{"type": "add_score", "points": 1}]},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == message
