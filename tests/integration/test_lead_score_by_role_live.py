"""A lead's engagement score is tracking data: GET /api/v1/leads/{id} shows it (with the
engagement summary) to the marketing roles and leaves both out for the sales roles,
against a running server with a user of every role."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from live_server import Live, _cli
from sqlalchemy import update

from mailbeacon.crm.access import Role
from mailbeacon.store import Database
from mailbeacon.store.schema import leads

pytestmark = pytest.mark.slow

SALES = (Role.SALES_MANAGER, Role.SALESPERSON, Role.JR_SALESPERSON)


def set_score(live: Live, lead_id: int, score: int) -> None:
    async def run() -> None:
        db = Database.unpooled(live.database)
        async with db.begin() as conn:
            await conn.execute(update(leads).where(leads.c.id == lead_id).values(score=score))
        await db.dispose()

    asyncio.run(run())


def test_score_is_shown_to_marketing_roles_only(live: Live) -> None:
    keys = {Role.MARKETING_MANAGER: live.key}
    for role in Role:
        if role is not Role.MARKETING_MANAGER:
            user = _cli(
                live.env, "user", "create", "--company", str(live.company_id),
                "--email", f"{role.value}@acme.example.com", "--role", role.value,
            )  # fmt: skip
            keys[role] = user["api_key"]
    seen: dict[Role, tuple[int, set[str]]] = {}
    for role, key in keys.items():
        with httpx.Client(
            base_url=live.base, headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as api:
            # Each user's own lead: salespeople see only the leads they own.
            created = api.post("/api/v1/leads", json={"email": f"lead-{role.value}@example.com"})
            assert created.status_code == 201, created.text
            lead = created.json()
            assert ("score" in lead) is (role not in SALES)
            set_score(live, lead["id"], 42)
            got = api.get(f"/api/v1/leads/{lead['id']}")
            seen[role] = (got.status_code, set(got.json()))
            if role not in SALES:
                assert got.json()["score"] == 42
                assert got.json()["engagement"]["opens"] == 0
    for role, (status, fields) in seen.items():
        assert status == 200, role
        tracking = {"score", "engagement"} & fields
        assert tracking == (set() if role in SALES else {"score", "engagement"}), role
        assert {"id", "email", "status", "owner_user_id"} <= fields, role
