"""The composer and who-engaged pages over HTTP (ASGI): a draft is saved, refused with
the error next to its field, previewed; the campaign page lists who engaged and
exports them as CSV; sales roles get 403."""

from __future__ import annotations

import csv
import io
import re

import httpx
from dashboard_helpers import Site, login
from sqlalchemy import insert

from mailbeacon.store import Database, now
from mailbeacon.store.schema import list_members, lists

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return CSRF.search(page.text).group(1)  # type: ignore[union-attr]


async def _list_id(client: httpx.AsyncClient, site: Site) -> str:
    """A list of two of the known mix's leads (made as the lists API makes one)."""
    db = Database(site.settings.database_url)
    try:
        async with db.begin() as conn:
            list_id = await conn.scalar(
                insert(lists)
                .values(company_id=site.world.company_id, name="Customers", created_at=now())
                .returning(lists.c.id)
            )
            for lead_id in sorted(site.world.leads.values())[:2]:
                await conn.execute(
                    insert(list_members).values(
                        list_id=list_id,
                        lead_id=lead_id,
                        company_id=site.world.company_id,
                        added_at=now(),
                    )
                )
    finally:
        await db.dispose()
    page = await client.get("/campaigns/new")
    assert f'<option value="{list_id}" >Customers (2 leads)</option>' in page.text, page.text
    return str(list_id)


async def test_compose_save_refuse_and_preview(client: httpx.AsyncClient, site: Site) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    token = await _csrf(client, "/campaigns/new")
    list_id = await _list_id(client, site)
    form = {
        "csrf": token,
        "name": "Spring",
        "subject": "Hi {{nosuchfield}}",
        "list_id": list_id,
        "html": "<p>Hello {{first_name}}</p>",
        "pixel_placement": "footer",
        "pixel_format": "png",
        "track_opens": "1",
        "utm_source": "newsletter",
        "action": "save",
    }
    refused = await client.post("/campaigns/new", data=form)
    assert refused.status_code == 422
    # The error is next to the Subject field, naming the unknown field.
    assert 'id="subject-error"' in refused.text and "nosuchfield" in refused.text
    assert 'aria-describedby="subject-error"' in refused.text

    saved = await client.post("/campaigns/new", data={**form, "subject": "Hi {{first_name}}"})
    assert saved.status_code == 303
    edit = saved.headers["location"]
    campaign_id = int(re.search(r"/campaigns/(\d+)/edit", edit).group(1))  # type: ignore[union-attr]
    page = await client.get(edit)
    assert "Draft saved." in page.text
    assert '<option value="footer" selected>' in page.text
    assert 'id="track_clicks" name="track_clicks" value="1" >' in page.text  # unchecked

    posted = await client.post(edit, data={**form, "subject": "Hi", "action": "preview"})
    assert posted.status_code == 303
    assert posted.headers["location"] == f"/campaigns/{campaign_id}/edit?preview=1&lead="
    previewed = await client.get(posted.headers["location"])
    assert previewed.status_code == 200, previewed.text
    assert "Preview as" in previewed.text and "bytes of HTML" in previewed.text
    frame = re.search(r'id="lead-preview" src="(/campaigns/\d+/preview/\d+)"', previewed.text)
    assert frame and 'sandbox=""' in previewed.text, previewed.text
    document = await client.get(frame.group(1))
    assert document.status_code == 200 and "/o/" in document.text
    assert document.headers["content-security-policy"].startswith("sandbox; default-src 'none'")

    confirm = await client.post(edit, data={**form, "subject": "Hi", "action": "send"})
    assert confirm.status_code == 303
    assert confirm.headers["location"] == f"/campaigns/{campaign_id}/send"
    ask = await client.get(confirm.headers["location"])
    assert re.search(r"Send to [\d,]+ leads?\?", ask.text), ask.text

    listed = await client.get("/campaigns")
    assert f'href="/campaigns/{campaign_id}/edit"' in listed.text
    assert 'href="/campaigns/new"' in listed.text


async def test_who_engaged_and_export(client: httpx.AsyncClient, site: Site) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    cid = site.world.campaign_id
    page = await client.get(f"/campaigns/{cid}")
    assert page.status_code == 200, page.text
    for heading in ("Opened", "Clicked", "Forwarded", "Not opened", "Privacy-protected"):
        assert f'-heading">{heading}</h3>' in page.text
    assert f'href="/campaigns/{cid}/engaged.csv"' in page.text
    fragment = await client.get(f"/campaigns/{cid}/engaged/opened/fragment")
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith("<section")
    exported = await client.get(f"/campaigns/{cid}/engaged.csv")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:3] == ["engagement", "lead_id", "email"]
    opened = [r for r in rows[1:] if r[0] == "opened"]
    assert opened and f"/leads/{opened[0][1]}" in page.text


async def test_sales_get_403(client: httpx.AsyncClient, site: Site) -> None:
    await login(client, site.email("salesperson"), site.password)
    cid = site.world.campaign_id
    for path in (
        "/campaigns/new",
        f"/campaigns/{cid}",
        f"/campaigns/{cid}/engaged.csv",
        f"/campaigns/{cid}/engaged/opened/fragment",
    ):
        answer = await client.get(path)
        assert answer.status_code == 403, path
