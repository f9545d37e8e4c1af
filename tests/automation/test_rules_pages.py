"""The rules pages of the dashboard: list, create, enable/disable, last runs."""

from __future__ import annotations

import re

import httpx
from automation_harness import Server, World, eventually

from mailbeacon.crm.users import create_user

Stage = tuple[World, Server]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def _browser(w: World, server: Server, role: str) -> httpx.Client:
    email = f"{role}@acme.test"
    async with w.db.begin() as conn:
        await create_user(
            conn, company_id=w.company_id, email=email, role=role, password="correct horse"
        )
    browser = httpx.Client(base_url=server.url, timeout=10)
    page = browser.get("/login")
    answer = browser.post(
        "/login",
        data={"email": email, "password": "correct horse", "csrf": _csrf(page.text), "next": "/"},
    )
    assert answer.status_code in (302, 303), answer.text
    return browser


async def test_a_marketer_creates_disables_and_watches_a_rule(world: Stage) -> None:
    w, server = world
    browser = await _browser(w, server, "marketing_manager")
    form = browser.get("/rules/new")
    assert form.status_code == 200
    refused = browser.post(
        "/rules/new",
        data={
            "csrf": _csrf(form.text),
            "name": "Nudge",
            "trigger_type": "not_opened",
            "actions": '[{"type": "add_score", "points": 1}]',
        },
    )
    assert refused.status_code == 200 and "within_seconds" in refused.text
    created = browser.post(
        "/rules/new",
        data={
            "csrf": _csrf(form.text),
            "name": "Openers",
            "trigger_type": "opened",
            "actions": '[{"type": "add_score", "points": 4}]',
        },
    )
    assert created.status_code == 303
    rule_id = int(created.headers["location"].rsplit("/", 1)[1])
    listing = browser.get("/rules")
    assert "Openers" in listing.text and "Disable" in listing.text
    lead = await w.lead("nia@example.com")
    await w.event(await w.message(lead), lead)
    await eventually(lambda: "score +4" in browser.get(f"/rules/{rule_id}").text, what="a run")
    off = browser.post(
        f"/rules/{rule_id}/enabled", data={"csrf": _csrf(listing.text), "enabled": "0"}
    )
    assert off.status_code == 303
    assert w.api.get(f"/api/v1/rules/{rule_id}").json()["enabled"] is False
    forged = browser.post(f"/rules/{rule_id}/enabled", data={"csrf": "nope", "enabled": "1"})
    assert forged.status_code == 403


async def test_salespeople_cannot_open_the_rules_pages(world: Stage) -> None:
    w, server = world
    browser = await _browser(w, server, "jr_salesperson")
    assert browser.get("/rules").status_code == 403


async def test_the_editor_sets_a_not_opened_rule_to_leave_privacy_protected_leads_out(
    world: Stage,
) -> None:
    w, server = world
    browser = await _browser(w, server, "marketing_manager")
    form = browser.get("/rules/new")
    assert 'name="privacy_protected"' in form.text
    created = browser.post(
        "/rules/new",
        data={
            "csrf": _csrf(form.text),
            "name": "Nudge the silent",
            "trigger_type": "not_opened",
            "within_seconds": "86400",
            "privacy_protected": "exclude",
            "actions": '[{"type": "add_score", "points": 1}]',
        },
    )
    assert created.status_code == 303, created.text
    rule_id = int(created.headers["location"].rsplit("/", 1)[1])
    trigger = w.api.get(f"/api/v1/rules/{rule_id}").json()["trigger"]
    assert trigger == {
        "type": "not_opened",
        "within_seconds": 86400,
        "privacy_protected": "exclude",
    }
