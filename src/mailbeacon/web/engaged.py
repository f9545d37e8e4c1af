"""Who engaged, on the campaign page: the campaign's leads by engagement.

Each list is `analytics.engaged.engaged_leads`, the function behind
`GET /api/v1/campaigns/{id}/leads`: keyset pages (the "More" link follows the cursor),
the same items the API answers. The "Opened" section is also a small HTML fragment the
campaign page's script swaps in whenever the live report changes. "Export CSV" streams
every list of the campaign in the API's CSV columns, after a first `engagement` column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.routing import APIRouter

from mailbeacon.analytics import engaged
from mailbeacon.api.campaign_leads import _cell as csv_cell
from mailbeacon.crm.errors import CrmError, NotFound
from mailbeacon.crm.users import Principal
from mailbeacon.web.auth import PageExit, services, templates, tracking_user
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
PAGE = 25  # leads per section on the campaign page
# Each list's heading and what it means, in the order the page shows them.
SECTIONS = (
    ("opened", "Opened", "Opened it as a person: a human or Gmail-proxy open, or a click."),
    ("clicked", "Clicked", "Clicked a link as a person."),
    ("forwarded", "Forwarded", "Forwarded it, or their copy was read by someone else."),
    ("not_opened", "Not opened", "Got it and have not opened it (the privacy-protected too)."),
    (
        "privacy_protected",
        "Privacy-protected",
        "Apple Mail Privacy Protection fetched it; whether they read it is unknown.",
    ),
    ("unsubscribed", "Unsubscribed", "Unsubscribed from this campaign."),
    ("bounced", "Bounced", "The mail to them failed."),
)
TITLES = {key: (title, hint) for key, title, hint in SECTIONS}


async def section(
    request: Request, who: Principal, campaign_id: int, engagement: str, cursor: str | None
) -> dict[str, Any]:
    """One page of one list, ready for `engaged_section.html`."""
    try:
        async with services(request).db.connect() as conn:
            page = await engaged.engaged_leads(
                conn, who.company_id, campaign_id, engagement, limit=PAGE, cursor=cursor
            )
    except NotFound:
        raise PageExit(HTMLResponse("campaign not found", status_code=404)) from None
    except CrmError as e:  # a cursor of another list, or a broken one
        raise PageExit(HTMLResponse(e.message, status_code=422)) from None
    title, hint = TITLES[engagement]
    return {
        "key": engagement,
        "title": title,
        "hint": hint,
        "leads": page.items,
        "more": f"/campaigns/{campaign_id}/engaged/{engagement}?cursor={page.next_cursor}"
        if page.next_cursor
        else None,
        "continued": cursor is not None,
    }


async def sections(request: Request, who: Principal, campaign_id: int) -> list[dict[str, Any]]:
    """The first page of every list, for the campaign page."""
    return [await section(request, who, campaign_id, key, None) for key, _, _ in SECTIONS]


def _engagement(engagement: str) -> str:
    if engagement not in TITLES:
        raise PageExit(HTMLResponse("There is no such list.", status_code=404))
    return engagement


@router.get("/campaigns/{campaign_id}/engaged/{engagement}", response_class=HTMLResponse)
async def engaged_page(
    request: Request, campaign_id: int, engagement: str, cursor: str | None = None
) -> Response:
    """One list on a page of its own: where "More" leads, page after page."""
    who, session = await tracking_user(request)
    shown = await section(request, who, campaign_id, _engagement(engagement), cursor)
    return render(
        request, "engaged_page.html", who, session, campaign_id=campaign_id, section=shown
    )


@router.get("/campaigns/{campaign_id}/engaged/{engagement}/fragment", response_class=HTMLResponse)
async def engaged_fragment(request: Request, campaign_id: int, engagement: str) -> Response:
    """The list's first page as an HTML fragment, swapped in by the live campaign page."""
    who, _ = await tracking_user(request)
    shown = await section(request, who, campaign_id, _engagement(engagement), None)
    return templates.TemplateResponse(
        request,
        "engaged_section.html",
        {"section": shown, "campaign_id": campaign_id},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/campaigns/{campaign_id}/engaged.csv")
async def export_csv(request: Request, campaign_id: int) -> Response:
    """Every list of the campaign, the API's CSV columns after `engagement`."""
    who, _ = await tracking_user(request)
    await section(request, who, campaign_id, "opened", None)  # 404 before the stream
    db = services(request).db

    async def lines() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("engagement", *engaged.CSV_COLUMNS))
        for key, _, _ in SECTIONS:
            cursor: str | None = None
            while True:
                async with db.connect() as conn:
                    page = await engaged.engaged_leads(
                        conn,
                        who.company_id,
                        campaign_id,
                        key,
                        limit=engaged.MAX_LIMIT,
                        cursor=cursor,
                    )
                for item in page.items:
                    writer.writerow([key, *(csv_cell(v) for v in engaged.csv_row(item))])
                yield out.getvalue()
                out.seek(0)
                out.truncate()
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor

    name = f"campaign-{campaign_id}-leads.csv"
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
