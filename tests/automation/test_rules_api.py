"""/api/v1/rules as a marketing team uses it, against the running server."""

from __future__ import annotations

import asyncio

import httpx
from automation_harness import Server, World, eventually, stranger_key
from sqlalchemy import select

from mailbeacon.store.schema_automation import automation_rules

Stage = tuple[World, Server]
SCORE = [{"type": "add_score", "points": 3}]


async def test_create_read_change_and_delete_a_rule(world: Stage) -> None:
    w, _ = world
    rule = w.rule(
        name="Pricing clickers",
        trigger={"type": "clicked", "url_contains": "pricing"},
        actions=SCORE,
    )
    assert rule["enabled"] is True and rule["repeat"] is False
    assert rule["trigger"] == {"type": "clicked", "url_contains": "pricing"}
    assert [r["id"] for r in w.api.get("/api/v1/rules").json()] == [rule["id"]]
    path = f"/api/v1/rules/{rule['id']}"
    changed = w.api.patch(path, json={"enabled": False, "name": "Renamed"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False and changed.json()["name"] == "Renamed"
    assert w.api.get(path).json()["trigger"]["url_contains"] == "pricing"
    assert w.api.delete(path).status_code == 204
    gone = w.api.get(path)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


async def test_a_bad_rule_is_refused_naming_the_field(world: Stage) -> None:
    w, _ = world
    cases = [
        ({"trigger": {"type": "not_opened"}, "actions": SCORE}, "trigger.within_seconds"),
        (
            {"trigger": {"type": "opened"}, "actions": [{"type": "add_to_list", "list_id": 999}]},
            "actions.0.list_id",
        ),
        (
            {"trigger": {"type": "opened", "campaign_id": 999}, "actions": SCORE},
            "trigger.campaign_id",
        ),
        (
            {
                "trigger": {"type": "opened"},
                "actions": [{"type": "webhook", "url": "gopher://x.test", "secret": "12345678"}],
            },
            "actions.0.webhook.url",
        ),
    ]
    for body, field in cases:
        answer = w.api.post("/api/v1/rules", json={"name": "r", **body})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == field


async def test_another_companys_rule_is_not_found_and_sales_roles_are_refused(
    world: Stage,
) -> None:
    w, server = world
    rule = w.rule(trigger={"type": "opened"}, actions=SCORE)
    key = await stranger_key(w.db)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as them:
        path = f"/api/v1/rules/{rule['id']}"
        assert them.get(path).status_code == 404
        assert them.patch(path, json={"enabled": False}).status_code == 404
        assert them.delete(path).status_code == 404
        assert them.get(f"{path}/runs").status_code == 404
        assert them.get("/api/v1/rules").json() == []
    sales = {"Authorization": f"Bearer {w.sales_key}"}
    with httpx.Client(base_url=server.url, headers=sales) as salesperson:
        assert salesperson.get("/api/v1/rules").status_code == 403
        answer = salesperson.post(
            "/api/v1/rules", json={"name": "r", "trigger": {"type": "opened"}, "actions": SCORE}
        )
        assert answer.status_code == 403


async def test_a_masked_secret_sent_back_keeps_the_secret(world: Stage) -> None:
    w, _ = world
    hook = {"type": "webhook", "url": "https://hooks.example/x", "secret": "the-real-secret"}
    rule = w.rule(trigger={"type": "opened"}, actions=[hook])
    shown = rule["actions"]
    assert shown[0]["secret"] == "********"
    answer = w.api.patch(f"/api/v1/rules/{rule['id']}", json={"actions": shown})
    assert answer.status_code == 200, answer.text
    async with w.db.connect() as conn:
        stored = (await conn.execute(select(automation_rules.c.actions))).scalar_one()
    assert stored[0]["secret"] == "the-real-secret"
    new_url = [{**shown[0], "url": "https://elsewhere.example/"}]
    refused = w.api.patch(f"/api/v1/rules/{rule['id']}", json={"actions": new_url})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "actions.0.secret"


async def test_a_disabled_rule_fires_nothing_and_changes_apply_at_once(world: Stage) -> None:
    w, _ = world
    off = w.rule(trigger={"type": "opened"}, actions=SCORE, enabled=False)
    lead = await w.lead("ivy@example.com")
    message = await w.message(lead)
    await w.event(message, lead)
    sentinel = w.rule(trigger={"type": "clicked"}, actions=[{"type": "add_score", "points": 100}])
    await w.event(message, lead, type="click", url="https://a.test/")
    await eventually(lambda: w.score(lead) == 100, what="the sentinel rule")
    assert w.runs(off["id"]) == []
    w.api.patch(f"/api/v1/rules/{off['id']}", json={"enabled": True})
    await w.event(message, lead)
    await eventually(lambda: w.score(lead) == 103, what="the enabled rule")
    assert len(w.runs(sentinel["id"])) == 1


async def test_repeat_and_min_opens(world: Stage) -> None:
    w, _ = world
    every = w.rule(trigger={"type": "opened"}, actions=SCORE, repeat=True)
    third = w.rule(
        trigger={"type": "opened", "min_opens": 3}, actions=[{"type": "add_score", "points": 50}]
    )
    lead = await w.lead("max@example.com")
    message = await w.message(lead)
    for verdict in ("human", "prefetch", "proxy", "human"):
        await w.event(message, lead, verdict=verdict)
    await eventually(lambda: w.score(lead) == 3 * 3 + 50, what="three opens and the third")
    await asyncio.sleep(0.5)
    assert len(w.runs(every["id"])) == 3 and len(w.runs(third["id"])) == 1
