"""Dashboard and API answers carry a CSP, nosniff, a referrer policy and no-store; the
edge's pixel keeps its own headers; the session cookie is `Secure` when HTTPS reached
a trusted proxy. Through the real server."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from dashboard_helpers import Serve, Site, login
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mailbeacon.api.headers import DASHBOARD_CSP, DOCS_CSP, SecurityHeaders
from mailbeacon.crm.users import create_api_key
from mailbeacon.store import Database

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # engine-blind
PRIVATE = {
    "content-security-policy": DASHBOARD_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _security(answer: httpx.Response) -> dict[str, str | None]:
    return {name: answer.headers.get(name) for name in PRIVATE}


@SQLITE
async def test_pages_and_api_answers_carry_the_headers(site: Site, served: str) -> None:
    db = Database.unpooled(site.settings.database_url)
    async with db.begin() as conn:
        key = await create_api_key(conn, site.world.users["marketing_manager"])
    await db.dispose()
    async with httpx.AsyncClient(base_url=served, timeout=10) as browser:
        assert _security(await browser.get("/login")) == PRIVATE
        await login(browser, site.email("marketing_manager"), site.password)
        for path in (f"/campaigns/{site.world.campaign_id}", "/rules", "/nowhere"):
            assert _security(await browser.get(path)) == PRIVATE, path
        lead = site.world.leads["l1"]
        auth = {"Authorization": f"Bearer {key}"}
        for path in (f"/api/v1/leads/{lead}", "/api/v1/leads/999999", "/api/openapi.json"):
            assert _security(await browser.get(path, headers=auth)) == PRIVATE, path
        # The static files may be cached; they are still never sniffed.
        css = await browser.get("/static/app.css")
        assert css.headers["x-content-type-options"] == "nosniff"
        assert "cache-control" not in css.headers
        docs = await browser.get("/api/docs")
        assert docs.headers["content-security-policy"] == DOCS_CSP
        # The edge's hot path is left as it was: its own cache header, nothing added.
        pixel = await browser.get("/o/not-a-token.gif")
        assert pixel.headers["content-type"] == "image/gif"
        assert "content-security-policy" not in pixel.headers
        assert pixel.headers["cache-control"] == (
            "no-store, no-cache, must-revalidate, private, max-age=0"
        )


async def test_a_csp_the_answer_sets_itself_is_kept() -> None:
    mail_csp = "sandbox; default-src 'none'; img-src * data:"

    async def mail(_: object) -> PlainTextResponse:
        return PlainTextResponse("<p>hi</p>", headers={"Content-Security-Policy": mail_csp})

    app = SecurityHeaders(Starlette(routes=[Route("/mail", mail)]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer = await c.get("/mail")
    assert answer.headers.get_list("content-security-policy") == [mail_csp]
    assert answer.headers["x-content-type-options"] == "nosniff"


async def _session_cookie_header(base: str, site: Site, headers: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
        form = await browser.get("/login", headers=headers)
        # A `Secure` login cookie would stay in an https browser; this client is on http.
        token = form.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        answer = await browser.post(
            "/login",
            data={"email": site.email("marketing_manager"), "password": site.password,
                  "csrf": token, "next": "/"},
            headers={**headers, "Cookie": f"mb_login_csrf={token}"},
        )  # fmt: skip
    assert answer.status_code == 303
    [cookie] = [c for c in answer.headers.get_list("set-cookie") if c.startswith("mb_session=")]
    return cookie


@SQLITE
async def test_the_session_cookie_is_secure_over_https_through_a_trusted_proxy(
    site: Site, serve_site: Serve
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    untrusted = await serve_site()  # nobody is trusted: the header is anyone's word
    cookie = await _session_cookie_header(untrusted, site, https)
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    proxied = await serve_site(trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    assert "; Secure" in await _session_cookie_header(proxied, site, https)
    assert "Secure" not in await _session_cookie_header(proxied, site, {})
    plain = {"X-Forwarded-Proto": "https, http"}  # the nearest proxy saw plain HTTP
    assert "Secure" not in await _session_cookie_header(proxied, site, plain)
