"""The stories the automation issue must show, against the running server, on SQLite
and PostgreSQL, with a real SMTP server and a real webhook receiver on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

from automation_harness import Hooks, Mailbox, Server, World, body_json, eventually

from mailbeacon.automation.webhooks import verify

Stage = tuple[World, Server]


async def test_an_opened_rule_fires_once_for_two_opens(world: Stage, hooks: Hooks) -> None:
    w, _ = world
    rule = w.rule(
        trigger={"type": "opened", "campaign_id": w.campaign_id},
        actions=[
            {"type": "add_score", "points": 10},
            {"type": "webhook", "url": f"{hooks.url}/ok", "secret": "s3cret-s3cret"},
        ],
    )
    lead = await w.lead("olivia@example.com")
    message = await w.message(lead)
    await w.event(message, lead)
    await w.event(message, lead, client="Apple Mail")
    await eventually(lambda: w.score(lead) == 10, what="the score")
    await eventually(lambda: len(hooks.received) == 1, what="the webhook")
    await asyncio.sleep(1.0)  # time enough for a second firing, were there one
    assert w.score(lead) == 10
    assert len(hooks.received) == 1
    runs = w.runs(rule["id"])
    assert len(runs) == 1
    assert [j["status"] for j in runs[0]["jobs"]] == ["done", "done"]


async def test_an_apple_prefetch_fires_nothing(world: Stage) -> None:
    w, _ = world
    rule = w.rule(trigger={"type": "opened"}, actions=[{"type": "add_score", "points": 5}])
    fetched, opened = await w.lead("pat@icloud.com"), await w.lead("rea@example.com")
    await w.event(
        await w.message(fetched),
        fetched,
        verdict="prefetch",
        reason="Apple Mail Privacy Protection fetched the pixel",
        client="Apple MPP",
    )
    # A human open after it: once this has fired, the prefetch has been read too.
    await w.event(await w.message(opened), opened)
    await eventually(lambda: w.score(opened) == 5, what="the human open to fire")
    assert w.score(fetched) == 0
    assert [r["lead_id"] for r in w.runs(rule["id"])] == [opened]


async def test_a_delayed_follow_up_survives_kill_9_and_is_sent_once(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, server = world
    box = smtp[0]
    rule = w.rule(
        trigger={"type": "clicked", "url_contains": "pricing"},
        actions=[
            {
                "type": "send_email",
                "subject": "About our pricing",
                "html": "<p>Hello {{first_name}}, questions about <a href='https://acme.test/pricing'>pricing</a>?</p>",
                "delay_seconds": 3,
            }
        ],
    )
    lead = await w.lead("carl@example.com")
    await w.event(await w.message(lead), lead, type="click", url="https://acme.test/pricing?x=1")
    runs = await eventually(lambda: w.runs(rule["id"]), what="the click to fire")
    assert runs[0]["jobs"][0]["status"] == "pending"
    server.kill()
    await asyncio.sleep(0.5)
    server.start()
    await eventually(lambda: box.to("carl@example.com"), timeout=20, what="the follow-up")
    await asyncio.sleep(2.0)
    sent = box.to("carl@example.com")
    assert len(sent) == 1
    assert sent[0]["Subject"] == "About our pricing"
    job = w.runs(rule["id"])[0]["jobs"][0]
    assert job["status"] == "done" and job["attempts"] == 1


async def test_a_signed_webhook_verifies(world: Stage, hooks: Hooks) -> None:
    w, _ = world
    secret = "whsec-0123456789"
    rule = w.rule(
        trigger={"type": "clicked", "url_contains": "/pricing"},
        actions=[{"type": "webhook", "url": f"{hooks.url}/ok", "secret": secret}],
    )
    lead = await w.lead("dana@example.com")
    message = await w.message(lead)
    click = await w.event(message, lead, type="click", url="https://acme.test/pricing")
    await w.event(message, lead, type="click", url="https://acme.test/blog")
    hook = (await eventually(lambda: hooks.received, what="the webhook"))[0]
    headers = {k.lower(): v for k, v in hook["headers"].items()}
    assert verify(secret, hook["body"], headers["x-mailbeacon-signature"])
    assert not verify("another-secret", hook["body"], headers["x-mailbeacon-signature"])
    payload = body_json(hook)
    assert payload["rule_id"] == rule["id"] and payload["lead_id"] == lead
    assert payload["event"]["id"] == click and payload["event"]["type"] == "click"
    assert payload["timestamp"] == int(headers["x-mailbeacon-timestamp"])
    deliveries = w.api.get(f"/api/v1/rules/{rule['id']}/deliveries").json()
    assert [(d["ok"], d["status_code"], d["attempt"]) for d in deliveries] == [(True, 200, 1)]
    assert rule["actions"][0]["secret"] == "********"


async def test_not_opened_reminds_only_leads_with_no_person_opening(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    box = smtp[0]
    w.rule(
        trigger={"type": "not_opened", "campaign_id": w.campaign_id, "within_seconds": 2},
        actions=[{"type": "send_email", "subject": "Did you see this?", "html": "<p>ping</p>"}],
    )
    people: dict[str, Any] = {}
    for name in ("human", "inferred", "prefetch", "scanner", "nothing", "forwarded"):
        lead = await w.lead(f"{name}@example.com")
        people[name] = (lead, await w.message(lead))
    await w.event(people["human"][1], people["human"][0])
    await w.event(people["inferred"][1], people["inferred"][0], inferred=True)
    await w.event(people["prefetch"][1], people["prefetch"][0], verdict="prefetch")
    await w.event(people["scanner"][1], people["scanner"][0], verdict="scanner")
    await w.event(people["forwarded"][1], people["forwarded"][0], forwarded=True)
    reminded = {
        "prefetch@example.com",
        "scanner@example.com",
        "nothing@example.com",
        "forwarded@example.com",
    }
    await eventually(lambda: len(box.received) >= len(reminded), timeout=20, what="reminders")
    await asyncio.sleep(1.0)
    assert sorted(m["To"] for m in box.received) == sorted(reminded)
    assert all(m["Subject"] == "Did you see this?" for m in box.received)


async def test_a_failing_webhook_is_retried_then_logged_as_failed(
    world: Stage, hooks: Hooks
) -> None:
    w, _ = world
    rule = w.rule(
        trigger={"type": "unsubscribed"},
        actions=[{"type": "webhook", "url": f"{hooks.url}/fail", "secret": "s3cret-s3cret"}],
    )
    lead = await w.lead("ursula@example.com")
    await w.event(await w.message(lead), lead, type="unsubscribe")

    def log() -> list[dict[str, Any]]:
        rows = w.api.get(f"/api/v1/rules/{rule['id']}/deliveries").json()
        return rows if any(r["final"] for r in rows) else []

    deliveries = await eventually(log, timeout=20, what="the last attempt")
    assert [(d["attempt"], d["ok"], d["status_code"]) for d in reversed(deliveries)] == [
        (1, False, 500),
        (2, False, 500),
        (3, False, 500),
    ]
    assert len(hooks.received) == 3
    job = w.runs(rule["id"])[0]["jobs"][0]
    assert job["status"] == "failed" and "gave up after 3 attempts" in job["result"]


async def test_a_pricing_click_alerts_the_owner_and_forwards_fire_only_forwarded(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    box = smtp[0]
    w.rule(
        name="Pricing alert",
        trigger={"type": "clicked", "url_contains": "pricing"},
        actions=[{"type": "notify_owner", "note": "Call them today."}],
    )
    opened = w.rule(trigger={"type": "opened"}, actions=[{"type": "add_score", "points": 1}])
    forwarded = w.rule(trigger={"type": "forwarded"}, actions=[{"type": "add_score", "points": 7}])
    lead = await w.lead("fay@example.com")
    message = await w.message(lead)
    await w.event(message, lead, forwarded=True, client="Outlook")  # a colleague reads it
    await w.event(message, lead, type="click", url="https://acme.test/pricing")
    alert = (await eventually(lambda: box.to(w.owner_email), what="the owner's alert"))[0]
    assert "Pricing alert" in alert["Subject"]
    body = alert.get_payload(decode=True).decode()
    assert "fay@example.com" in body and "https://acme.test/pricing" in body
    assert "Call them today." in body
    await eventually(lambda: w.score(lead) == 7, what="the forward to score")
    assert w.runs(opened["id"]) == [] and len(w.runs(forwarded["id"])) == 1
