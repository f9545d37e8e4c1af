"""Ids no row can have (0, negative, past 64 bits, past PostgreSQL's 32-bit columns) are
404 in the JSON error shape on the API and an HTML 404 page on the dashboard, never a
500 ("Python int too large"). Through the real server, on both engines."""

from __future__ import annotations

import httpx
import pytest
from dashboard_helpers import Site, login

from mailbeacon.crm.users import create_api_key
from mailbeacon.store import Database

BAD = ["9223372036854775808", "18446744073709551616", "-1", "99999999999999999999999", "0"]
API = [
    ("GET", "/api/v1/leads/{}", "lead_id"),
    ("GET", "/api/v1/leads/{}/activity", "lead_id"),
    ("GET", "/api/v1/leads/{}/export", "lead_id"),
    ("DELETE", "/api/v1/leads/{}", "lead_id"),
    ("GET", "/api/v1/lists/{}/leads", "list_id"),
    ("POST", "/api/v1/lists/{}/leads", "list_id"),
    ("GET", "/api/v1/campaigns/{}", "campaign_id"),
    ("POST", "/api/v1/campaigns/{}/send", "campaign_id"),
    ("GET", "/api/v1/campaigns/{}/report", "campaign_id"),
    ("GET", "/api/v1/messages/{}", "message_id"),
    ("GET", "/api/v1/messages/{}/events", "message_id"),
    ("GET", "/api/v1/rules/{}", "rule_id"),
    ("PATCH", "/api/v1/rules/{}", "rule_id"),
    ("DELETE", "/api/v1/rules/{}", "rule_id"),
]
PAGES = [
    ("GET", "/campaigns/{}"),
    ("GET", "/campaigns/{}/live"),
    ("GET", "/leads/{}"),
    ("POST", "/leads/{}/export"),
    ("GET", "/rules/{}"),
    ("POST", "/rules/{}/enabled"),
]


async def _api_key(site: Site) -> str:
    db = Database.unpooled(site.settings.database_url)
    try:
        async with db.begin() as conn:
            return await create_api_key(conn, site.world.users["marketing_manager"])
    finally:
        await db.dispose()


async def test_the_api_answers_404_in_its_error_shape(site: Site, served: str) -> None:
    auth = {"Authorization": f"Bearer {await _api_key(site)}"}
    async with httpx.AsyncClient(base_url=served, headers=auth, timeout=10) as api:
        for method, route, field in API:
            for bad in BAD:
                answer = await api.request(method, route.format(bad), json={})
                assert answer.status_code == 404, (method, route, bad, answer.text)
                assert answer.json() == {
                    "error": {
                        "code": "not_found",
                        "message": f"{field} {bad} does not exist",
                        "field": field,
                    }
                }
        # The largest ids a row can have reach the database and are simply not there;
        # one past them is refused before (a 32-bit column in PostgreSQL, 64-bit one).
        for path in ("/api/v1/leads/2147483647", "/api/v1/messages/9223372036854775807"):
            answer = await api.get(path)
            assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found")
        answer = await api.get("/api/v1/leads/2147483648")
        assert answer.json()["error"]["message"] == "lead_id 2147483648 does not exist"
        answer = await api.get(f"/api/v1/leads/{site.world.leads['l1']}?list_id=-5")
        assert answer.status_code == 422
        assert answer.json()["error"] == {
            "code": "invalid",
            "message": "list_id: must be an id between 1 and 2147483647",
            "field": "list_id",
        }
        # A real lead still answers; a word where an id goes is the route's own 422.
        assert (await api.get(f"/api/v1/leads/{site.world.leads['l1']}")).status_code == 200
        assert (await api.get("/api/v1/leads/abc")).json()["error"]["field"] == "lead_id"


async def test_the_dashboard_answers_an_html_404_page(site: Site, served: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=10) as browser:
        assert (await login(browser, site.email("marketing_manager"), site.password)).is_redirect
        for method, route in PAGES:
            for bad in BAD:
                answer = await browser.request(method, route.format(bad))
                assert answer.status_code == 404, (method, route, bad, answer.text)
                assert answer.headers["content-type"] == "text/html; charset=utf-8"
                assert "<h1>404</h1><p>There is no such page.</p>" in answer.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_huge_number_of_digits_is_no_id_either(site: Site, served: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=10) as client:
        answer = await client.get("/api/v1/leads/" + "9" * 5000)
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == f"lead_id {'9' * 40}... does not exist"
