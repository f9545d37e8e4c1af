"""The permission matrix, cell by cell: pure, then through every tracking route.

The help article's table: email tracking on every plan; its data for administrators,
company managers and marketing managers; 403 for the three sales roles.
"""

from __future__ import annotations

import httpx
import pytest
from spine_helpers import Accounts

from mailbeacon.crm.access import Permission, Plan, Role, allowed, sees_only_own_leads

TRACKING_ROLES = {Role.ADMINISTRATOR, Role.COMPANY_MANAGER, Role.MARKETING_MANAGER}
EXPECTED = {
    Permission.VIEW_TRACKING: TRACKING_ROLES,
    Permission.MANAGE_TRACKING: TRACKING_ROLES,
    Permission.MANAGE_LEADS: set(Role),
    Permission.SEND_EMAIL: set(Role),
    Permission.MANAGE_COMPANY: {Role.ADMINISTRATOR, Role.COMPANY_MANAGER},
}


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("plan", list(Plan))
@pytest.mark.parametrize("role", list(Role))
def test_matrix_cell(role: Role, plan: Plan, permission: Permission) -> None:
    assert allowed(role, plan, permission) is (role in EXPECTED[permission])


@pytest.mark.parametrize("role", list(Role))
def test_only_the_tracking_roles_see_every_lead_of_the_company(role: Role) -> None:
    # Issue 13: "Sales roles see only their own leads", the sales manager included.
    assert sees_only_own_leads(role) is (role not in TRACKING_ROLES)


@pytest.mark.parametrize("role,plan", [("owner", "trial"), ("administrator", "gold")])
def test_unknown_role_or_plan_is_refused(role: str, plan: str) -> None:
    assert not any(allowed(role, plan, p) for p in Permission)


async def _tracked_objects(api: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, int]:
    lead = (
        await api.post("/api/v1/leads", json={"email": "lead@example.com"}, headers=auth)
    ).json()
    lst = (await api.post("/api/v1/lists", json={"name": "L"}, headers=auth)).json()
    campaign = await api.post(
        "/api/v1/campaigns",
        json={"name": "C", "subject": "S", "html": "<p>hi</p>", "list_id": lst["id"]},
        headers=auth,
    )
    message = await api.post(
        "/api/v1/messages",
        json={"lead_id": lead["id"], "subject": "Hi", "html": "<p>x</p>", "send": False},
        headers=auth,
    )
    assert campaign.status_code == 201 and message.status_code == 201, message.text
    return {"lead": lead["id"], "campaign": campaign.json()["id"], "message": message.json()["id"]}


def _tracking_requests(ids: dict[str, int]) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/api/v1/messages/{ids['message']}", None),
        ("GET", f"/api/v1/messages/{ids['message']}/events", None),
        ("GET", f"/api/v1/leads/{ids['lead']}/activity", None),
        ("GET", f"/api/v1/campaigns/{ids['campaign']}/report", None),
        ("GET", "/api/v1/rules", None),
        ("GET", "/api/v1/rules/999999", None),
        (
            "POST",
            "/api/v1/rules",
            {
                "name": "r",
                "trigger": {"type": "opened"},
                "actions": [{"type": "add_score", "points": 1}],
            },
        ),
    ]


@pytest.mark.parametrize("plan", list(Plan))
async def test_tracking_routes_follow_the_matrix(
    plan: Plan, api: httpx.AsyncClient, accounts: Accounts
) -> None:
    company = await accounts.company(plan.value)
    admin = await accounts.user(company, Role.ADMINISTRATOR.value)
    ids = await _tracked_objects(api, admin.auth)
    wrong = []
    for role in Role:
        # One role at a time beside the administrator: the trial plan allows 3 users.
        account = admin if role == Role.ADMINISTRATOR else await accounts.user(company, role.value)
        for method, path, body in _tracking_requests(ids):
            r = await api.request(method, path, json=body, headers=account.auth)
            if role in TRACKING_ROLES:
                ok = r.status_code != 403 and r.status_code < 500
                # An existing object answers 2xx; only the made-up rule id is a 404.
                ok = ok and (r.status_code < 300 or path.endswith("999999"))
            else:
                ok = r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
            if not ok:
                wrong.append(f"{role.value} {method} {path} -> {r.status_code} {r.text[:120]}")
        if account is not admin:
            gone = await api.patch(
                f"/api/v1/users/{account.user_id}", json={"active": False}, headers=admin.auth
            )
            assert gone.status_code == 200, gone.text
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", [Role.SALES_MANAGER, Role.SALESPERSON, Role.JR_SALESPERSON])
async def test_sales_roles_still_work_leads_and_send(
    role: Role, api: httpx.AsyncClient, accounts: Accounts
) -> None:
    company = await accounts.company("essential")
    seller = await accounts.user(company, role.value)
    lead = await api.post("/api/v1/leads", json={"email": "p@example.com"}, headers=seller.auth)
    assert lead.status_code == 201
    got = await api.get(f"/api/v1/leads/{lead.json()['id']}", headers=seller.auth)
    assert got.status_code == 200
    assert "engagement" not in got.json()  # tracking data stays with the tracking roles
    sent = await api.post(
        "/api/v1/messages",
        json={"lead_id": lead.json()["id"], "subject": "Hi", "html": "<p>x</p>", "send": False},
        headers=seller.auth,
    )
    assert sent.status_code == 201, sent.text
