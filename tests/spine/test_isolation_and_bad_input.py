"""Two companies never see each other's objects; bad input gets a clear answer and
leaves nothing half-written."""

from __future__ import annotations

import httpx
import pytest
from spine_helpers import Accounts
from sqlalchemy import func, select

from mailbeacon.store import Database
from mailbeacon.store.schema import campaigns, leads, list_members, lists, messages


async def _count(db: Database, table) -> int:  # type: ignore[no-untyped-def]
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_another_companys_objects_answer_404(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    a = await accounts.user(await accounts.company("advanced", "A"))
    b = await accounts.user(await accounts.company("advanced", "B"))
    lead = (await api.post("/api/v1/leads", json={"email": "x@example.com"}, headers=a.auth)).json()
    lst = (await api.post("/api/v1/lists", json={"name": "A list"}, headers=a.auth)).json()
    campaign = (
        await api.post(
            "/api/v1/campaigns",
            json={"name": "A", "subject": "S", "html": "<p>x</p>", "list_id": lst["id"]},
            headers=a.auth,
        )
    ).json()
    msg = (
        await api.post(
            "/api/v1/messages",
            json={"lead_id": lead["id"], "subject": "S", "html": "<p>x</p>", "send": False},
            headers=a.auth,
        )
    ).json()
    probes = [
        ("GET", f"/api/v1/leads/{lead['id']}", None),
        ("GET", f"/api/v1/leads/{lead['id']}/activity", None),
        ("GET", f"/api/v1/lists/{lst['id']}/leads", None),
        ("POST", f"/api/v1/lists/{lst['id']}/leads", {"lead_ids": [lead["id"]]}),
        ("GET", f"/api/v1/campaigns/{campaign['id']}", None),
        ("GET", f"/api/v1/campaigns/{campaign['id']}/report", None),
        ("POST", f"/api/v1/campaigns/{campaign['id']}/send", None),
        ("GET", f"/api/v1/messages/{msg['id']}", None),
        ("GET", f"/api/v1/messages/{msg['id']}/events", None),
        (
            "POST",
            "/api/v1/messages",
            {"lead_id": lead["id"], "subject": "S", "html": "x", "send": False},
        ),
    ]
    for method, path, body in probes:
        r = await api.request(method, path, json=body, headers=b.auth)
        assert r.status_code == 404, f"{method} {path} -> {r.status_code} {r.text}"
        assert r.json()["error"]["code"] == "not_found"
    # B's own list cannot take A's lead either.
    b_list = (await api.post("/api/v1/lists", json={"name": "B list"}, headers=b.auth)).json()
    r = await api.post(
        f"/api/v1/lists/{b_list['id']}/leads", json={"lead_ids": [lead["id"]]}, headers=b.auth
    )
    assert r.status_code == 404
    # And A still sees everything of its own.
    assert (await api.get(f"/api/v1/leads/{lead['id']}", headers=a.auth)).status_code == 200


SALES_ROLES = ("sales_manager", "salesperson", "jr_salesperson")


@pytest.mark.parametrize(
    "role",
    ["administrator", "company_manager", "marketing_manager", *SALES_ROLES],
)
async def test_sales_roles_see_only_their_own_leads_everywhere(
    role: str, api: httpx.AsyncClient, accounts: Accounts
) -> None:
    """Each role, each way of reaching a lead: by id, search, address, list, export and
    list count. The sales roles (sales manager included) see only the leads they own."""
    company = await accounts.company("ultimate")
    admin = await accounts.user(company, "administrator")
    user = await accounts.user(company, role)
    other = (
        await api.post("/api/v1/leads", json={"email": "other@example.com"}, headers=admin.auth)
    ).json()
    mine = await api.post("/api/v1/leads", json={"email": "mine@example.com"}, headers=user.auth)
    assert mine.status_code == 201, mine.text
    lst = (await api.post("/api/v1/lists", json={"name": "Both"}, headers=admin.auth)).json()
    added = await api.post(
        f"/api/v1/lists/{lst['id']}/leads",
        json={"lead_ids": [other["id"], mine.json()["id"]]},
        headers=admin.auth,
    )
    assert added.status_code < 300, added.text
    expected = (
        ["mine@example.com"] if role in SALES_ROLES else ["mine@example.com", "other@example.com"]
    )

    async def emails(params: dict[str, str]) -> list[str]:
        r = await api.get("/api/v1/leads", params=params, headers=user.auth)
        assert r.status_code == 200, r.text
        return sorted(lead["email"] for lead in r.json())

    got = await api.get(f"/api/v1/leads/{other['id']}", headers=user.auth)
    assert got.status_code == (404 if role in SALES_ROLES else 200)
    assert await emails({}) == expected
    assert await emails({"q": "example"}) == expected
    assert await emails({"list_id": str(lst["id"])}) == expected
    assert await emails({"email": "other@example.com"}) == [e for e in expected if "other" in e]
    csv_answer = await api.get("/api/v1/leads", params={"format": "csv"}, headers=user.auth)
    assert csv_answer.status_code == 200
    assert ("other@example.com" in csv_answer.text) is (role not in SALES_ROLES)
    counts = (await api.get("/api/v1/lists", headers=user.auth)).json()
    assert [x["lead_count"] for x in counts] == [len(expected)]
    # The lead they cannot see cannot be changed either.
    patch = await api.patch(
        f"/api/v1/leads/{other['id']}", json={"first_name": "X"}, headers=user.auth
    )
    assert patch.status_code == (404 if role in SALES_ROLES else 200), patch.text


@pytest.mark.parametrize(
    "body,field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@@example.com"}, "email"),
        ({}, "email"),
        ({"email": "ok@example.com", "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "ok@example.com", "first_name": "x" * 201}, "first_name"),
    ],
)
async def test_invalid_lead_is_422_naming_the_field(
    body: dict, field: str, api: httpx.AsyncClient, accounts: Accounts, db: Database
) -> None:
    a = await accounts.user(await accounts.company())
    r = await api.post("/api/v1/leads", json=body, headers=a.auth)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert field in r.json()["error"]["message"]
    assert await _count(db, leads) == 0


async def test_duplicate_lead_email_is_409_case_insensitively(
    api: httpx.AsyncClient, accounts: Accounts, db: Database
) -> None:
    a = await accounts.user(await accounts.company())
    assert (
        await api.post("/api/v1/leads", json={"email": "Dup@Example.com"}, headers=a.auth)
    ).status_code == 201
    r = await api.post("/api/v1/leads", json={"email": "dup@example.COM"}, headers=a.auth)
    assert r.status_code == 409 and r.json()["error"]["field"] == "email"
    assert await _count(db, leads) == 1
    # The same address in another company is another lead.
    b = await accounts.user(await accounts.company(name="B"))
    assert (
        await api.post("/api/v1/leads", json={"email": "dup@example.com"}, headers=b.auth)
    ).status_code == 201


@pytest.mark.parametrize(
    "path", ["/api/v1/leads/999999", "/api/v1/campaigns/999999", "/api/v1/messages/999999"]
)
async def test_unknown_id_is_404(path: str, api: httpx.AsyncClient, accounts: Accounts) -> None:
    a = await accounts.user(await accounts.company())
    r = await api.get(path, headers=a.auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer mb_0123456789ab_forged"},
        {"Authorization": "Bearer garbage"},
    ],
)
async def test_missing_or_wrong_api_key_is_401(
    headers: dict, api: httpx.AsyncClient, accounts: Accounts
) -> None:
    await accounts.user(await accounts.company())
    r = await api.get("/api/v1/leads/1", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


async def test_revoked_key_is_401(api: httpx.AsyncClient, accounts: Accounts, db: Database) -> None:
    from mailbeacon.crm.users import revoke_api_key

    a = await accounts.user(await accounts.company())
    assert (await api.get("/api/v1/campaigns", headers=a.auth)).status_code == 200
    async with db.begin() as conn:
        assert await revoke_api_key(conn, a.key.split("_")[1])
    assert (await api.get("/api/v1/campaigns", headers=a.auth)).status_code == 401


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_over_1_mib_is_413_and_stores_nothing(
    chunked: bool, api: httpx.AsyncClient, accounts: Accounts, db: Database
) -> None:
    a = await accounts.user(await accounts.company())
    big = b'{"email": "big@example.com", "first_name": "' + b"x" * (1024 * 1024) + b'"}'

    async def stream():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    content = stream() if chunked else big
    r = await api.post(
        "/api/v1/leads", content=content, headers={**a.auth, "content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert await _count(db, leads) == 0


async def test_adding_an_unknown_lead_to_a_list_adds_none(
    api: httpx.AsyncClient, accounts: Accounts, db: Database
) -> None:
    a = await accounts.user(await accounts.company())
    lead = (await api.post("/api/v1/leads", json={"email": "l@example.com"}, headers=a.auth)).json()
    lst = (await api.post("/api/v1/lists", json={"name": "L"}, headers=a.auth)).json()
    r = await api.post(
        f"/api/v1/lists/{lst['id']}/leads", json={"lead_ids": [lead["id"], 424242]}, headers=a.auth
    )
    assert r.status_code == 404 and r.json()["error"]["field"] == "lead_ids"
    assert await _count(db, list_members) == 0
    ok = await api.post(
        f"/api/v1/lists/{lst['id']}/leads", json={"lead_ids": [lead["id"]]}, headers=a.auth
    )
    assert ok.status_code == 200
    members = (await api.get(f"/api/v1/lists/{lst['id']}/leads", headers=a.auth)).json()
    assert [m["email"] for m in members] == ["l@example.com"]


async def test_campaign_on_unknown_list_is_404_and_stores_nothing(
    api: httpx.AsyncClient, accounts: Accounts, db: Database
) -> None:
    a = await accounts.user(await accounts.company())
    r = await api.post(
        "/api/v1/campaigns",
        json={"name": "C", "subject": "S", "html": "<p>x</p>", "list_id": 77},
        headers=a.auth,
    )
    assert r.status_code == 404 and r.json()["error"]["field"] == "list_id"
    assert await _count(db, campaigns) == 0 and await _count(db, lists) == 0


async def test_message_to_unsubscribed_lead_is_409_and_nothing_stored(
    api: httpx.AsyncClient, accounts: Accounts, db: Database
) -> None:
    from mailbeacon.crm.leads import set_lead_status

    a = await accounts.user(await accounts.company())
    lead = (await api.post("/api/v1/leads", json={"email": "u@example.com"}, headers=a.auth)).json()
    async with db.begin() as conn:
        await set_lead_status(conn, a.company_id, lead["id"], "unsubscribed")
    r = await api.post(
        "/api/v1/messages",
        json={"lead_id": lead["id"], "subject": "S", "html": "<p>x</p>", "send": True},
        headers=a.auth,
    )
    assert r.status_code == 409, r.text
    assert await _count(db, messages) == 0


async def test_openapi_is_served(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/openapi.json")
    assert r.status_code == 200
    assert "/api/v1/leads" in r.json()["paths"]
