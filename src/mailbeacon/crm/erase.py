"""Erasing a lead: the lead and everything tracked about them, in one transaction.

Deleted: their hits and events, per-lead rollups, automation runs and jobs (and those
jobs' webhook deliveries), list memberships, and the lead. Another lead they referred
keeps its row but forgets who referred it.

Their mail already sent must still answer its pixel and links (a reader may open it
years later). The pixel needs nothing stored; a click resolves from `message_links`,
which hangs off `messages`, whose `lead_id` must name a lead row. So each sent message
is kept as an empty shell: subject, bodies, headers and warnings blanked, and moved
to the company's one placeholder lead (status `erased`, no address, hidden from every
query). The message's tracking tokens still carry the erased lead's id, which no
longer exists: enrichment drops such hits (and their rows), so the mail records nothing.

A link whose URL carries the lead's address (a merge field in a URL) is personal data
itself: it is deleted, and a click on it answers 404 like any unknown link.
Aggregate counters (`rollup_counts`) keep their totals: they name no one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.leads import ERASED, get_lead
from mailbeacon.crm.users import Principal
from mailbeacon.store import now
from mailbeacon.store.schema import (
    events,
    hits,
    leads,
    list_members,
    message_links,
    messages,
)
from mailbeacon.store.schema_analytics import (
    rollup_campaign_leads,
    rollup_forward_readers,
    rollup_message_events,
)
from mailbeacon.store.schema_automation import (
    automation_jobs,
    automation_runs,
    webhook_deliveries,
)

# Not an address (no @): never equal to a normalised email, so never found by one.
PLACEHOLDER_EMAIL = "(erased)"


async def placeholder_lead(conn: AsyncConnection, company_id: int) -> int:
    """The company's placeholder lead that erased leads' sent mail belongs to."""
    found = await conn.scalar(
        select(leads.c.id).where(leads.c.company_id == company_id, leads.c.status == ERASED)
    )
    if found is not None:
        return int(found)
    result = await conn.execute(
        insert(leads)
        .values(
            company_id=company_id,
            email=PLACEHOLDER_EMAIL,
            score=0,
            status=ERASED,
            created_at=now(),
        )
        .returning(leads.c.id)
    )
    return int(result.scalar_one())


async def erase_lead(conn: AsyncConnection, who: Principal, lead_id: int) -> None:
    """Erase a lead the caller may see (404 otherwise). Run inside a transaction."""
    lead = await get_lead(conn, who, lead_id)
    company = who.company_id
    mine = select(messages.c.id).where(
        messages.c.lead_id == lead_id, messages.c.company_id == company
    )
    jobs = select(automation_jobs.c.id).where(
        automation_jobs.c.lead_id == lead_id, automation_jobs.c.company_id == company
    )
    for stmt in (
        delete(hits).where(hits.c.lead_id == lead_id, hits.c.company_id == company),
        delete(events).where(events.c.lead_id == lead_id, events.c.company_id == company),
        delete(rollup_campaign_leads).where(
            rollup_campaign_leads.c.lead_id == lead_id,
            rollup_campaign_leads.c.company_id == company,
        ),
        delete(rollup_forward_readers).where(rollup_forward_readers.c.message_id.in_(mine)),
        # Their events' groups carry the clicked URLs and clients: gone with the events.
        delete(rollup_message_events).where(rollup_message_events.c.message_id.in_(mine)),
        delete(webhook_deliveries).where(webhook_deliveries.c.job_id.in_(jobs)),
        delete(automation_jobs).where(automation_jobs.c.id.in_(jobs)),
        delete(automation_runs).where(
            automation_runs.c.lead_id == lead_id, automation_runs.c.company_id == company
        ),
        delete(list_members).where(list_members.c.lead_id == lead_id),
        update(leads)
        .where(leads.c.referred_by_lead_id == lead_id, leads.c.company_id == company)
        .values(referred_by_lead_id=None),
    ):
        await conn.execute(stmt)
    await _forget_links(conn, company, lead, mine)
    has_mail = await conn.scalar(select(func.count()).select_from(mine.subquery()))
    if has_mail:
        shell = await placeholder_lead(conn, company)
        await conn.execute(
            update(messages)
            .where(messages.c.lead_id == lead_id, messages.c.company_id == company)
            .values(
                lead_id=shell,
                subject="",
                html="",
                text=None,
                source_html=None,
                source_text=None,
                headers=None,
                warnings=None,
                error=None,
            )
        )
    await conn.execute(delete(leads).where(leads.c.id == lead_id, leads.c.company_id == company))


async def _forget_links(
    conn: AsyncConnection, company: int, lead: dict[str, Any], mine: Select[Any]
) -> None:
    """Delete the links of the lead's mail whose URL carries their address."""
    email = str(lead["email"])
    forms = {email, quote(email, safe=""), quote_plus(email), quote(email, safe="@")}
    await conn.execute(
        delete(message_links).where(
            message_links.c.company_id == company,
            message_links.c.message_id.in_(mine),
            or_(
                *(
                    func.lower(message_links.c.url).contains(f.lower(), autoescape=True)
                    for f in forms
                )
            ),
        )
    )
