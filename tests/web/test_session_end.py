"""A session ends when its user logs out, is deactivated or gets a new password: the
old cookie, still signed and unexpired, is refused at once, in every browser."""

from __future__ import annotations

import httpx
from dashboard_helpers import Site, login, logout

from mailbeacon.crm.users import deactivate_user, set_password
from mailbeacon.store import Database
from mailbeacon.web.session import SESSION_COOKIE

EMAIL_ROLE = "marketing_manager"


async def _signed_in(base: str, site: Site, password: str | None = None) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=10)
    answer = await login(client, site.email(EMAIL_ROLE), password or site.password)
    assert answer.status_code == 303, answer.text
    assert (await client.get("/campaigns")).status_code == 200
    return client


async def _with_cookie(base: str, cookie: str, path: str = "/campaigns") -> httpx.Response:
    jar = {SESSION_COOKIE: cookie}
    async with httpx.AsyncClient(base_url=base, timeout=10, cookies=jar) as client:
        return await client.get(path)


async def _change(site: Site, change: str) -> None:
    db = Database.unpooled(site.settings.database_url)
    user_id = site.world.users[EMAIL_ROLE]
    try:
        async with db.begin() as conn:
            if change == "deactivate":
                await deactivate_user(conn, site.world.company_id, user_id)
            else:
                await set_password(conn, user_id, "a brand new password")
    finally:
        await db.dispose()


async def test_the_cookie_of_a_logged_out_session_opens_nothing(site: Site, served: str) -> None:
    laptop = await _signed_in(served, site)
    phone = await _signed_in(served, site)
    kept = laptop.cookies[SESSION_COOKIE]
    assert (await _with_cookie(served, kept)).status_code == 200

    out = await logout(laptop)
    assert (out.status_code, out.headers["location"]) == (303, "/login")

    for cookie in (kept, phone.cookies[SESSION_COOKIE]):  # this browser and the other one
        again = await _with_cookie(served, cookie)
        assert (again.status_code, again.headers["location"]) == (303, "/login?next=/campaigns")
    assert (await phone.get("/campaigns")).status_code == 303
    # Logging in again starts a session that works.
    fresh = await _signed_in(served, site)
    assert (await fresh.get("/campaigns")).status_code == 200
    for client in (laptop, phone, fresh):
        await client.aclose()


async def test_deactivation_ends_the_session_and_the_login(site: Site, served: str) -> None:
    browser = await _signed_in(served, site)
    await _change(site, "deactivate")
    refused = await _with_cookie(served, browser.cookies[SESSION_COOKIE], "/leads/1")
    assert (refused.status_code, refused.headers["location"]) == (303, "/login?next=/leads/1")
    again = await login(browser, site.email(EMAIL_ROLE), site.password)
    assert again.headers["location"] == "/login?error=1&next=/campaigns"
    await browser.aclose()


async def test_a_new_password_ends_the_sessions_of_the_old_one(site: Site, served: str) -> None:
    browser = await _signed_in(served, site)
    old = browser.cookies[SESSION_COOKIE]
    await _change(site, "password")
    assert (await _with_cookie(served, old)).status_code == 303
    renewed = await _signed_in(served, site, "a brand new password")
    assert (await renewed.get("/campaigns")).status_code == 200
    for client in (browser, renewed):
        await client.aclose()
