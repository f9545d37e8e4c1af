"""Event webhooks through the real server: subscribe, then every matching event reaches
the receiver once, in order per lead, signed, even across a receiver outage."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from automation_harness import Server, World, eventually, stranger_key
from webhook_receiver import Receiver

SECRET = "s3cret-for-hooks"


def subscribe(world: World, url: str, **body: Any) -> dict[str, Any]:
    body = {"url": url, "secret": SECRET, "events": ["open", "click", "unsubscribe"], **body}
    answer = world.api.post("/api/v1/webhooks", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def log(world: World, hook_id: int) -> list[dict[str, Any]]:
    answer = world.api.get(f"/api/v1/webhooks/{hook_id}/deliveries", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_a_receiver_down_for_a_while_gets_every_event_once_in_order(
    world: tuple[World, Server],
) -> None:
    w, _server = world
    receiver = Receiver(SECRET)
    receiver.start()
    hook = subscribe(w, receiver.url)
    assert hook["secret"] == "********" and hook["verdicts"] == ["human", "proxy"]
    leads = [await w.lead(f"reader{i}@example.com") for i in range(4)]
    mail = {lead: await w.message(lead) for lead in leads}
    wanted: dict[int, list[int]] = {lead: [] for lead in leads}

    async def happen(lead: int, **fields: Any) -> None:
        event = await w.event(mail[lead], lead, **fields)
        kind, verdict = fields.get("type", "open"), fields.get("verdict", "human")
        if kind == "unsubscribe" or (kind != "forward" and verdict in ("human", "proxy")):
            wanted[lead].append(event)

    for lead in leads:  # the receiver is up
        await happen(lead)
        await happen(lead, type="open", verdict="prefetch")  # a machine: not sent
    await eventually(lambda: len(receiver.once_each()) == len(leads), what="the first opens")

    receiver.kill()
    for round_ in range(3):  # the receiver is down: all of this waits
        for lead in leads:
            await happen(lead, type="click", url=f"https://example.com/{round_}")
            await happen(lead, type="open", verdict="proxy", client="Gmail")
            await happen(lead, type="forward")  # not subscribed
    await happen(leads[0], type="unsubscribe", verdict="bot")  # token-authorised: always sent

    def retried() -> bool:  # each lead's queue head failed and is waiting to try again
        pending = [d for d in log(w, hook["id"]) if d["status"] == "pending"]
        return len(pending) == sum(map(len, wanted.values())) - len(leads) and all(
            d["attempts"] >= 2 for d in pending if d["last_error"]
        ) and sum(1 for d in pending if d["last_error"]) == len(leads)  # fmt: skip

    await eventually(retried, what="failed attempts while the receiver is down")
    heads = [d for d in log(w, hook["id"]) if d["last_error"]]
    assert all("ConnectError" in d["last_error"] and d["next_attempt_at"] for d in heads)
    assert len(receiver.got) == len(leads)  # nothing got through; nothing was dropped
    receiver.start()

    total = sum(map(len, wanted.values()))
    await eventually(lambda: len(receiver.once_each()) == total, 20, "every event after restart")
    await asyncio.sleep(0.5)  # anything extra would show up now
    kept = receiver.once_each()
    assert len(kept) == total and all(r.signed for r in receiver.got)
    assert len(receiver.got) == total  # not even a duplicate to drop, this time
    for lead in leads:
        arrived = [r.event_id for r in receiver.got if r.lead_id == lead]
        assert arrived == wanted[lead]  # every event, in the order it happened
    first = receiver.got[0].body
    assert first["webhook_id"] == hook["id"] and first["delivery_id"] == receiver.got[0].delivery
    assert first["event"]["verdict"] == "human" and "ip" not in first["event"]
    delivered = log(w, hook["id"])
    assert {d["status"] for d in delivered} == {"delivered"}
    assert all(d["delivered_at"] and d["next_attempt_at"] is None for d in delivered)
    assert max(d["attempts"] for d in delivered) >= 2


async def test_subscriptions_belong_to_their_company_and_its_tracking_roles(
    world: tuple[World, Server],
) -> None:
    w, server = world
    receiver = Receiver(SECRET)
    receiver.start()
    hook = subscribe(w, receiver.url, events=["click"], verdicts=["human", "bot"])
    stranger = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {await stranger_key(w.db)}"}
    )
    sales = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {w.sales_key}"})
    with stranger, sales:
        for path in (f"/api/v1/webhooks/{hook['id']}", f"/api/v1/webhooks/{hook['id']}/deliveries"):
            assert stranger.get(path).json()["error"]["code"] == "not_found"
        assert stranger.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 404
        assert stranger.get("/api/v1/webhooks").json() == []
        # The stranger's own subscription hears nothing of ours.
        theirs = stranger.post(
            "/api/v1/webhooks", json={"url": receiver.url, "secret": "x" * 8, "events": ["click"]}
        )
        assert theirs.status_code == 201
        assert sales.get("/api/v1/webhooks").status_code == 403
        assert sales.post("/api/v1/webhooks", json={}).status_code == 403

    lead = await w.lead("clicker@example.com")
    message = await w.message(lead)
    await w.event(message, lead, type="click", verdict="bot", url="https://example.com/")
    await w.event(message, lead, type="click", verdict="scanner", url="https://example.com/")
    await w.event(message, lead, type="open")
    await eventually(lambda: len(receiver.got) == 1, what="the bot click")
    await asyncio.sleep(0.5)
    assert [(r.type, r.body["webhook_id"]) for r in receiver.got] == [("click", hook["id"])]

    # Paused: held back; resumed: sent. Deleted: what was queued is cancelled.
    assert w.api.patch(f"/api/v1/webhooks/{hook['id']}", json={"paused": True}).json()["paused"]
    await w.event(message, lead, type="click", verdict="human", url="https://example.com/")
    await eventually(lambda: any(d["status"] == "pending" for d in log(w, hook["id"])))
    await asyncio.sleep(0.3)
    assert len(receiver.got) == 1
    w.api.patch(f"/api/v1/webhooks/{hook['id']}", json={"paused": False})
    await eventually(lambda: len(receiver.got) == 2, what="the held click after resume")
    assert w.api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    assert w.api.get(f"/api/v1/webhooks/{hook['id']}").status_code == 404
    receiver.kill()
