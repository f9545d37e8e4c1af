"""GET/PATCH /api/v1/company through the real server, and the edge honouring the
company's "anonymise at capture" without a database read per hit.

A company manager turns anonymising on through the API; within the edge's refresh
delay a real pixel hit is written to `hits` holding only the reader's /24, while the
hit of a reader of another company keeps its full address.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import httpx
from company_helpers import add_managers
from dashboard_helpers import Serve, Site
from sqlalchemy import select

from mailbeacon.crm.companies import create_company
from mailbeacon.store import Database
from mailbeacon.store.schema import hits
from mailbeacon.tokens import Kind, Signer, Token

READER = "198.51.100.23"


def _as(base: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"})


async def test_roles_read_and_change_the_company_settings(site: Site, served: str) -> None:
    keys = await add_managers(site)
    async with _as(served, keys["marketing_manager"]) as mm:
        got = await mm.get("/api/v1/company")
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["tracking"] == {
            "anonymize_ip": False, "hit_retention_days": 0, "address_retention_days": 0
        }  # fmt: skip
        assert body["id"] == site.world.company_id
        assert body["limits"]["users"] == 4  # the two of the known mix, two managers
        assert body["limits"]["leads"] == len(site.world.leads)
        assert {"max_users", "max_leads"} <= body["limits"].keys()
        # Reading is for the tracking roles; changing is not for a marketing manager.
        refused = await mm.patch("/api/v1/company", json={"tracking": {"anonymize_ip": True}})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    async with _as(served, keys["salesperson"]) as sales:
        assert (await sales.get("/api/v1/company")).status_code == 403

    async with _as(served, keys["company_manager"]) as cm:
        changed = await cm.patch(
            "/api/v1/company",
            json={"tracking": {"hit_retention_days": 90, "address_retention_days": 30}},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["tracking"] == {
            "anonymize_ip": False, "hit_retention_days": 90, "address_retention_days": 30
        }  # fmt: skip
        for bad, field in [
            ({"hit_retention_days": -1}, "tracking.hit_retention_days"),
            ({"address_retention_days": 4000}, "tracking.address_retention_days"),
            ({"address_retention_days": "30"}, "tracking.address_retention_days"),
            ({"anonymize_ip": "yes"}, "tracking.anonymize_ip"),
            ({"anonymize_ip": None}, "tracking.anonymize_ip"),
            ({"keep_forever": True}, "tracking.keep_forever"),
        ]:
            answer = await cm.patch("/api/v1/company", json={"tracking": bad})
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.json()["error"]["field"] == field, (bad, answer.text)
        again = await cm.get("/api/v1/company")
        assert again.json()["tracking"]["address_retention_days"] == 30  # nothing half-saved
    async with _as(served, keys["administrator"]) as admin:
        ok = await admin.patch("/api/v1/company", json={"tracking": {"hit_retention_days": 0}})
        assert ok.json()["tracking"]["hit_retention_days"] == 0


async def _hit_rows(site: Site, message_ids: list[int]) -> list[Any]:
    db = Database.unpooled(site.settings.database_url)
    try:
        async with db.connect() as conn:
            q = select(hits.c.message_id, hits.c.ip).where(hits.c.message_id.in_(message_ids))
            return list((await conn.execute(q.order_by(hits.c.id))).all())
    finally:
        await db.dispose()


async def test_the_edge_anonymises_at_capture_once_the_company_asks(
    site: Site, serve_site: Serve
) -> None:
    keys = await add_managers(site)
    db = Database.unpooled(site.settings.database_url)
    try:
        async with db.begin() as conn:  # another company, which does not anonymise
            other = await create_company(conn, "Other", "trial")
    finally:
        await db.dispose()
    base = await serve_site(
        trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),), privacy_refresh_seconds=0.2
    )
    signer = Signer(site.settings.secret_keys)
    lead, message = site.world.leads["l1"], site.world.messages["l1"]
    ours = signer.sign(Token(Kind.OPEN, site.world.company_id, message, lead))
    theirs = signer.sign(Token(Kind.OPEN, other, 987_654, 1))
    forwarded = {"x-forwarded-for": READER}

    async with _as(base, keys["company_manager"]) as cm:
        on = await cm.patch("/api/v1/company", json={"tracking": {"anonymize_ip": True}})
        assert on.json()["tracking"]["anonymize_ip"] is True
    async with httpx.AsyncClient(base_url=base) as http:
        # The edge hears of it within its refresh delay: hit until a hit is cut.
        for _ in range(100):
            assert (await http.get(f"/o/{ours}.gif", headers=forwarded)).status_code == 200
            if (await _hit_rows(site, [message]))[-1].ip != READER:
                break
            await asyncio.sleep(0.05)
        assert (await http.get(f"/o/{ours}.gif", headers=forwarded)).status_code == 200
        assert (await http.get(f"/o/{theirs}.gif", headers=forwarded)).status_code == 200

    rows = await _hit_rows(site, [message, 987_654])
    assert [r.ip for r in rows if r.message_id == message][-2:] == ["198.51.100.0"] * 2
    assert [r.ip for r in rows if r.message_id == 987_654] == [READER]
