"""The dashboard over HTTP: login with CSRF, who sees what, the outbox."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from mailbeacon.store import Database
from mailbeacon.store.schema import messages

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def login(
    client: httpx.AsyncClient, email: str, password: str = "correct horse battery"
) -> httpx.Response:
    form = await client.get("/login")
    token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    data = {"email": email, "password": password, "csrf": token, "next": "/"}
    return await client.post("/login", data=data)


async def test_login_needs_the_form_token_and_sets_a_safe_cookie(
    client: httpx.AsyncClient, site: Any
) -> None:
    forged = await client.post(
        "/login", data={"email": site.email("marketing_manager"), "password": "x"}
    )
    assert forged.status_code == 403
    wrong = await login(client, site.email("marketing_manager"), "not the password")
    assert wrong.status_code == 303 and "error=1" in wrong.headers["location"]
    ok = await login(client, site.email("marketing_manager"))
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("marketing_manager", "/campaigns", 200),
        ("marketing_manager", "/campaigns/{c}", 200),
        ("marketing_manager", "/leads/{l1}", 200),
        ("marketing_manager", "/outbox", 200),
        ("salesperson", "/campaigns", 403),
        ("salesperson", "/campaigns/{c}", 403),
        ("salesperson", "/campaigns/{c}/live", 403),
        # A salesperson's lead page is for their own leads (no tracking data on it).
        ("salesperson", "/leads/{l1}", 404),
        ("salesperson", "/outbox", 403),
        (None, "/campaigns/{c}", 303),
    ],
)
async def test_who_sees_which_page(
    client: httpx.AsyncClient, site: Any, role: str | None, path: str, status: int
) -> None:
    if role:
        await login(client, site.email(role))
    url = path.format(c=site.world.campaign_id, l1=site.world.leads["l1"])
    assert (await client.get(url)).status_code == status


async def test_campaign_and_lead_pages_show_the_report(
    client: httpx.AsyncClient, site: Any
) -> None:
    await login(client, site.email("marketing_manager"))
    page = (await client.get(f"/campaigns/{site.world.campaign_id}")).text
    assert 'data-field="human_opens_unique" data-kind="count">5<' in page
    assert "62.5%" in page and "Apple Mail Privacy Protection" in page and "DB-IP" in page
    lead = (await client.get(f"/leads/{site.world.leads['l4']}")).text
    assert 'class="badge scanner"' in lead and "Microsoft Defender link scan" in lead


async def test_logout_needs_the_session_token(client: httpx.AsyncClient, site: Any) -> None:
    await login(client, site.email("marketing_manager"))
    assert (await client.post("/logout", data={"csrf": "nope"})).status_code == 403
    page = (await client.get("/campaigns")).text
    out = await client.post("/logout", data={"csrf": CSRF.search(page).group(1)})  # type: ignore[union-attr]
    assert out.status_code == 303


async def test_the_outbox_lists_and_shows_a_mail_in_a_sandbox(
    client: httpx.AsyncClient, site: Any
) -> None:
    # A mail is the company's when its Message-ID is the one stored on its message row.
    message_id = site.world.messages["l1"]
    sent_as = f"<mb.{message_id}.a1b2c3@mailbeacon.localhost>"
    db = Database(site.settings.database_url)
    try:
        async with db.begin() as conn:
            await conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(headers={"Message-ID": sent_as})
            )
    finally:
        await db.dispose()
    folder = site.settings.var_dir / "outbox"
    folder.mkdir(parents=True)
    lead = f"l1.{site.world.company_id}@lead.example"
    for name, msgid, subject in [
        ("20240304T090000-abc.eml", sent_as, "Hello there"),
        # Same lead address, a guessed id: the random part does not match.
        ("20240304T090001-def.eml", f"<mb.{message_id}.ffffff@mailbeacon.localhost>", "Not yours"),
    ]:
        (folder / name).write_bytes(
            f"Subject: {subject}\r\nTo: {lead}\r\nMessage-ID: {msgid}\r\n"
            "Date: Mon, 4 Mar 2024 09:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            '<p>Hi</p><img src="http://127.0.0.1:8000/o/x.gif">'.encode()
        )
    await login(client, site.email("marketing_manager"))
    listing = (await client.get("/outbox")).text
    assert "Hello there" in listing and lead in listing
    assert "Not yours" not in listing
    assert (await client.get("/outbox/20240304T090001-def.eml")).status_code == 404
    assert (await client.get("/outbox/20240304T090001-def.eml/html")).status_code == 404
    view = (await client.get("/outbox/20240304T090000-abc.eml")).text
    assert '<iframe class="mail" sandbox src="/outbox/20240304T090000-abc.eml/html"' in view
    assert 'href="/outbox/20240304T090000-abc.eml/as-lead"' in view
    html = await client.get("/outbox/20240304T090000-abc.eml/html")
    csp = html.headers["content-security-policy"]
    assert csp.startswith("sandbox;") and "img-src data:;" in csp and "/o/x.gif" not in html.text
    as_lead = await client.get("/outbox/20240304T090000-abc.eml/as-lead")
    assert "img-src * data:" in as_lead.headers["content-security-policy"]
    assert '<img src="http://127.0.0.1:8000/o/x.gif">' in as_lead.text
    assert (await client.get("/outbox/..%2Fsecret.eml")).status_code == 404
