"""The dashboard's shell: the top bar by role, the home page, dates for people, HTML
errors for browsers (JSON for the API), and /api/docs from the package."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from dashboard_helpers import login

from mailbeacon.crm.users import create_api_key
from mailbeacon.store import Database
from mailbeacon.web.dates import ago, when

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
NAV = re.compile(r'<nav aria-label="Main">(.*?)</nav>', re.S)
LINK = re.compile(r'<a href="([^"]+)"[^>]*>([^<]+)</a>')


async def api_key(site: Any) -> str:
    db = Database.unpooled(site.settings.database_url)
    try:
        async with db.begin() as conn:
            return await create_api_key(conn, site.world.users["marketing_manager"])
    finally:
        await db.dispose()


def nav_of(html: str) -> list[tuple[str, str]]:
    found = NAV.search(html)
    assert found, html
    return LINK.findall(found.group(1))


async def test_the_top_bar_reaches_what_the_role_may_open(
    client: httpx.AsyncClient, site: Any
) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    page = await client.get("/campaigns")
    assert nav_of(page.text) == [
        ("/", "Home"),
        ("/campaigns", "Campaigns"),
        ("/leads", "Leads"),
        ("/lists", "Lists"),
        ("/rules", "Rules"),
        ("/outbox", "Outbox"),
        ("/api/docs", "API docs"),
    ]
    assert '<a href="/campaigns" aria-current="page">' in page.text


async def test_a_salesperson_home_is_their_leads(client: httpx.AsyncClient, site: Any) -> None:
    await login(client, site.email("salesperson"), site.password)
    home = await client.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/leads"
    denied = await client.get("/campaigns")
    assert denied.status_code == 403
    assert nav_of(denied.text) == [("/leads", "Leads")]


async def test_home_lists_the_latest_campaigns_with_human_rates(
    client: httpx.AsyncClient, site: Any
) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    home = await client.get("/")
    assert home.status_code == 200
    assert '<a class="button" href="/campaigns/new">New campaign</a>' in home.text
    report = (
        await client.get(
            f"/api/v1/campaigns/{site.world.campaign_id}/report",
            headers={"Authorization": f"Bearer {await api_key(site)}"},
        )
    ).json()
    row = re.search(
        rf'<a href="/campaigns/{site.world.campaign_id}">[^<]+</a></td>(.*?)</tr>', home.text, re.S
    )
    assert row, home.text
    cells = re.findall(r'<td class="num">([^<]+)</td>', row.group(1))
    assert cells == [
        str(report["sent"]),
        f"{report['open_rate'] * 100:.1f}%",
        f"{report['click_rate'] * 100:.1f}%",
    ]


def test_dates_read_as_people_say_them() -> None:
    now = datetime(2024, 3, 4, 9, 3, 30, tzinfo=UTC)
    assert ago(datetime(2024, 3, 4, 9, 0, 0, 123456), now) == "3 minutes ago"
    assert ago("2024-03-02T08:00:00Z", now) == "2 days ago"
    assert ago("2024-03-04T09:03:10+00:00", now) == "just now"
    assert ago(datetime(2024, 3, 4, 10, 3, 30, tzinfo=UTC), now) == "in 1 hour"
    assert str(when("2024-03-04T09:00:00.000Z", now=now)) == (
        '<time datetime="2024-03-04T09:00:00Z" data-local title="2024-03-04T09:00:00Z">'
        '2024-03-04 09:00 UTC</time> <span class="ago">(3 minutes ago)</span>'
    )
    # A mail's Date header, and something that is no date at all.
    assert 'datetime="2024-03-04T08:00:00Z"' in when("Mon, 04 Mar 2024 09:00:00 +0100", now=now)
    assert str(when("<soon>")) == "&lt;soon&gt;"
    assert str(when(None)) == ""


@pytest.mark.parametrize(
    ("path", "status"),
    [("/nowhere", 404), ("/campaigns/not-a-number", 422), ("/leads/abc", 422)],
)
async def test_a_browser_gets_an_html_error_page(
    client: httpx.AsyncClient, site: Any, path: str, status: int
) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    page = await client.get(path, headers=HTML)
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>{status}</h1>" in page.text
    assert nav_of(page.text)[0] == ("/", "Home")  # signed in: the bar is there
    # Not a browser: the JSON error shape, as before.
    plain = await client.get(path)
    assert plain.status_code == status
    assert plain.json()["error"]["code"] == {404: "not_found", 422: "invalid"}[status]


async def test_the_api_keeps_json_errors_for_browsers_too(
    client: httpx.AsyncClient, site: Any
) -> None:
    auth = {"Authorization": f"Bearer {await api_key(site)}"} | HTML
    missing = await client.get("/api/v1/nowhere", headers=auth)
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "not_found", "message": "Not Found"}}
    invalid = await client.get("/api/v1/leads/abc", headers=auth)
    assert invalid.status_code == 422 and invalid.json()["error"]["field"] == "lead_id"


async def test_api_docs_come_from_the_package(client: httpx.AsyncClient) -> None:
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text and "https://" not in docs.text
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.text):
        asset = await client.get(src)
        assert asset.status_code == 200 and len(asset.content) > 200, src


async def test_the_campaign_page_speaks_plainly(client: httpx.AsyncClient, site: Any) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    page = (await client.get(f"/campaigns/{site.world.campaign_id}")).text
    assert "Opens, every verdict" not in page and "Naive unique opens" not in page
    assert '<span class="label">All pixel loads (people and machines)</span>' in page
    assert '<span class="label">Leads with any pixel load</span>' in page
    assert page.count('<details class="help"><summary>What is this?</summary>') == 4
    # The send time to the second, in UTC for the browser to localise: no microseconds.
    sent = re.search(r'sent <time datetime="([^"]+)" data-local', page)
    assert sent and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sent.group(1))


async def test_a_young_campaign_counts_by_minute_as_the_hours_do(site: Any) -> None:
    from datetime import timedelta

    from mailbeacon.analytics.report import campaign_report
    from mailbeacon.web.minutes import first_send, minute_series

    db = Database.unpooled(site.settings.database_url)
    try:
        async with db.connect() as conn:
            cid = site.world.campaign_id
            report = await campaign_report(conn, site.world.company_id, cid)
            start = await first_send(conn, cid)
            assert start is not None
            assert await minute_series(conn, cid, start + timedelta(hours=3, seconds=1)) is None
            series = await minute_series(conn, cid, start + timedelta(hours=2, minutes=59))
    finally:
        await db.dispose()
    assert series is not None and len(series["minutes_since_send"]) == 180
    hourly = report["over_time"]
    for name in ("human_opens", "clicks", "machine_opens"):
        by_hour = [sum(series[name][h * 60 : (h + 1) * 60]) for h in range(3)]
        assert by_hour == hourly[name][:3], name
    assert sum(series["human_opens"]) > 0


def test_settings_shows_only_to_the_roles_that_manage_the_company() -> None:
    from types import SimpleNamespace

    from mailbeacon.web.nav import nav_links

    request = SimpleNamespace()
    for role, shown in [
        ("administrator", True),
        ("company_manager", True),
        ("marketing_manager", False),
        ("salesperson", False),
    ]:
        who = SimpleNamespace(role=role, plan="essential")
        assert (("/settings", "Settings") in nav_links(request, who)) is shown, role  # type: ignore[arg-type]
    admin = SimpleNamespace(role="administrator", plan="essential")
    assert nav_links(request, admin)[-2:] == [("/settings", "Settings"), ("/api/docs", "API docs")]  # type: ignore[arg-type]
    assert nav_links(request, None) == []  # type: ignore[arg-type]
