"""The composer's API: edit a draft, preview it as a lead, send a test copy through real
SMTP, send it and watch its progress. A preview and a test record and count nothing."""

from __future__ import annotations

import email
import re
from email import policy
from typing import Any

import httpx
import sqlalchemy as sa

from mailbeacon.crm.users import create_api_key, create_user
from mailbeacon.delivery import send_campaign
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.schema import events, hits, leads, messages
from mailbeacon.tokens import Signer


async def count(db: Database, table: Any) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def nothing_recorded(db: Database) -> None:
    assert (await count(db, hits), await count(db, events), await count(db, messages)) == (0, 0, 0)


async def test_a_draft_is_edited_previewed_tested_and_sent(
    api: httpx.AsyncClient,
    db: Database,
    smtp_settings: Settings,
    scripted_smtp: Any,
    key: dict[str, str],
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
) -> None:
    ann = await make_lead("ann@example.com", first_name="Ann")
    bob = await make_lead("bob@example.com", first_name="Bob")
    gone = await make_lead("gone@example.com", status="unsubscribed")
    cid = await make_campaign([ann, bob, gone], utm={"source": "newsletter"})
    base = f"/api/v1/campaigns/{cid}"

    # Edit: only what is sent changes; each mistake names its field.
    r = await api.patch(
        base, json={"subject": "Hello {{first_name}}", "pixel_placement": "footer"}, headers=key
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["subject"], got["pixel_placement"], got["name"]) == (
        "Hello {{first_name}}",
        "footer",
        "Spring sale",
    )
    for body, status, field in (
        ({"pixel_format": "jpg"}, 422, "pixel_format"),
        ({"html": "{{ broken"}, 422, "html"),
        ({"name": None}, 422, "name"),
        ({"list_id": 99999}, 404, "list_id"),
        ({"utm": {"colour": "red"}}, 422, "utm"),
    ):
        r = await api.patch(base, json=body, headers=key)
        assert (r.status_code, r.json()["error"].get("field")) == (status, field), body

    r = await api.get(f"{base}/progress", headers=key)
    assert r.json() == {
        "campaign_id": cid,
        "status": "draft",
        "recipients": 3,
        "deliverable": 2,
        "sent": 0,
        "failed": 0,
        "skipped": 0,
        "done": False,
        "scheduled": 0,
        "next_at": None,
        "last_at": None,
        "percent": 0.0,
    }

    # Preview as Ann: merged, with the pixel and tracked links, and inert.
    r = await api.post(f"{base}/preview", json={"lead_id": ann}, headers=key)
    assert r.status_code == 200, r.text
    pre = r.json()
    assert pre["subject"] == "Hello Ann" and pre["warnings"] == []
    pixel = re.search(r'src="http://127\.0\.0\.1:8000(/o/preview\.[^"]+\.gif)"', pre["html"])
    click = re.search(r'href="http://127\.0\.0\.1:8000(/c/preview\.[^"]+)"', pre["html"])
    assert pixel and click, pre["html"]
    assert "/c/preview." in pre["text"]
    assert pre["html"].rindex("/o/preview.") > pre["html"].rindex("Unsubscribe")  # footer
    r = await api.get(pixel.group(1))
    assert (r.status_code, r.headers["content-type"]) == (200, "image/gif")
    assert (await api.get(click.group(1))).status_code == 404
    await nothing_recorded(db)
    r = await api.post(f"{base}/preview", json={"lead_id": gone}, headers=key)
    assert r.status_code == 409 and "unsubscribed" in r.json()["error"]["message"]
    r = await api.post(f"{base}/preview", json={"lead_id": 99999}, headers=key)
    assert (r.status_code, r.json()["error"]["field"]) == (404, "lead_id")

    # Gmail clips past 102 KB: the warning says how big it is.
    big = "<p>Sale!</p>" + "<p>" + "x" * 110_000 + "</p>"
    assert (await api.patch(base, json={"html": big}, headers=key)).status_code == 200
    pre = (await api.post(f"{base}/preview", json={"lead_id": ann}, headers=key)).json()
    size = len(pre["html"].encode())
    assert size == pre["size"] and size > 102 * 1024
    assert any(f"The HTML is {size:,} bytes" in w for w in pre["warnings"]), pre["warnings"]
    html = '<p>Sale! <a href="https://shop.example/sale">shop</a></p>'
    assert (await api.patch(base, json={"html": html}, headers=key)).status_code == 200

    # A test copy to any address, through the real SMTP server.
    handler, _ = scripted_smtp
    r = await api.post(
        f"{base}/test", json={"email": "tester@agency.example", "lead_id": ann}, headers=key
    )
    assert r.status_code == 200, r.text
    assert r.json()["subject"] == "[Test] Hello Ann"
    (raw,) = handler.received
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert (mail["Subject"], mail["To"]) == ("[Test] Hello Ann", "Ann <tester@agency.example>")
    body = mail.get_body(("html",)).get_content()
    assert 'href="https://shop.example/sale?utm_source=newsletter' in body
    # The one tracked link left is the hidden honeypot, inert like the pixel.
    assert re.findall(r'<a href="[^"]*/c/test\.[^"]*" style="display:none"', body)
    assert body.count("/c/") == 1 and "/c/" not in mail.get_body(("plain",)).get_content()
    test_pixel = re.search(r'src="http://127\.0\.0\.1:8000(/o/test\.[^"]+\.gif)"', body)
    assert test_pixel, body
    assert (await api.get(test_pixel.group(1))).status_code == 200
    await nothing_recorded(db)
    assert await count(db, leads) == 3
    r = await api.post(f"{base}/test", json={"email": "not an address"}, headers=key)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "email")

    # Send: no more edits; progress follows the send to its end.
    assert (await api.post(f"{base}/send", headers=key)).status_code == 202
    r = await api.patch(base, json={"subject": "Too late"}, headers=key)
    assert r.status_code == 409 and "queued" in r.json()["error"]["message"]
    signer = Signer(smtp_settings.secret_keys)
    await send_campaign(db, smtp_settings, signer, company_id, cid)
    r = await api.get(f"{base}/progress", headers=key)
    assert r.json() | {"deliverable": 0} == {
        "campaign_id": cid,
        "status": "sent",
        "recipients": 3,
        "deliverable": 0,
        "sent": 2,
        "failed": 0,
        "skipped": 1,
        "done": True,
        "scheduled": 0,
        "next_at": None,
        "last_at": None,
        "percent": 100.0,
    }
    assert len(handler.received) == 3  # the test copy, then Ann and Bob
    r = await api.get("/api/v1/campaigns", headers=key)
    (listed,) = r.json()
    assert (listed["status"], listed["sent_count"], listed["skipped_count"]) == ("sent", 2, 1)


async def test_another_companys_campaign_is_not_found(
    api: httpx.AsyncClient, db: Database, make_campaign: Any, make_lead: Any
) -> None:
    ann = await make_lead("ann@example.com")
    cid = await make_campaign([ann])
    async with db.begin() as conn:
        other = await conn.execute(
            sa.text(
                "INSERT INTO companies (name, plan, anonymize_ip, hit_retention_days, created_at)"
                " VALUES ('Other', 'trial', false, 0, '2024-01-01') RETURNING id"
            )
        )
        user = await create_user(
            conn, company_id=int(other.scalar_one()), email="x@o.example", role="administrator"
        )
        key = {"Authorization": f"Bearer {await create_api_key(conn, user)}"}
    base = f"/api/v1/campaigns/{cid}"
    for method, path, body in (
        ("PATCH", base, {"name": "Mine now"}),
        ("POST", f"{base}/preview", {"lead_id": ann}),
        ("POST", f"{base}/test", {"email": "a@b.example"}),
        ("GET", f"{base}/progress", None),
    ):
        r = await api.request(method, path, json=body, headers=key)
        assert r.status_code == 404, (method, path, r.text)
