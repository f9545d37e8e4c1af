"""Erasing a lead: the lead and everything tracked about them, in one transaction.

Deleted: their hits and events, per-lead rollups (their row per campaign, their count
as a forwarder, the link counters whose URL carried their address), the readers their
forwards reached, automation runs and jobs (queued or done, and those jobs' webhook
deliveries), event webhook deliveries about them, what the scoring model scored, list
memberships, their lines in CSV imports still waiting to run (and their address in
finished imports' rejections), and the lead. Another lead they referred keeps its row
but forgets who referred it; a friend's forwarded copy keeps its links but loses its
stored bodies, whose note named the lead. One audit entry (`crm.audit`)
records who erased them, by id and a hash of the address.

Their mail already sent must still answer its pixel and links (a reader may open it
years later). The pixel needs nothing stored; a click resolves from `message_links`,
which hangs off `messages`, whose `lead_id` must name a lead row. So each sent message
is kept as an empty shell: subject, bodies, headers and warnings blanked, and moved
to the company's one placeholder lead (status `erased`, no address, hidden from every
query). The message's tracking tokens still carry the erased lead's id, which no
longer exists: enrichment drops such hits (and their rows), so the mail records nothing.

A link whose URL carries the lead's address (a merge field in a URL) is personal data
itself: it is deleted, and a click on it answers 404 like any unknown link.
Aggregate counters (`rollup_counts`: opens, clicks, clients, hours...) keep their
totals: they name no one, so reports still add up; only the per-lead rows go.

A token names its lead, and an id freed by an erase can be taken by a new lead on
SQLite; so the edge's actions and enrichment check the token's lead against the
message's own (`mail_of_lead`), which for erased mail is the placeholder: no hit, no
unsubscribe, no forward ever reaches a lead through an erased lead's mail.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import ColumnElement, Select, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm import audit
from mailbeacon.crm.leads import ERASED, get_lead
from mailbeacon.crm.users import Principal
from mailbeacon.store import now, tombstones
from mailbeacon.store.schema import (
    events,
    hits,
    lead_imports,
    leads,
    list_members,
    message_links,
    messages,
)
from mailbeacon.store.schema_analytics import (
    lead_key,
    rollup_campaign_leads,
    rollup_counts,
    rollup_forward_readers,
    rollup_message_events,
)
from mailbeacon.store.schema_automation import (
    automation_jobs,
    automation_runs,
    webhook_deliveries,
)
from mailbeacon.store.schema_scoring import lead_scores, score_events
from mailbeacon.store.schema_webhooks import event_webhook_deliveries

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


async def mail_of_lead(
    conn: AsyncConnection, company_id: int, message_id: int, lead_id: int
) -> bool:
    """Whether this message was sent to this lead and the lead is still there: what a
    token's (message, lead) must be for its hit or form to act on anyone."""
    found = await conn.scalar(
        select(func.count())
        .select_from(messages.join(leads, leads.c.id == messages.c.lead_id))
        .where(
            messages.c.id == message_id,
            messages.c.company_id == company_id,
            messages.c.lead_id == lead_id,
            leads.c.status != ERASED,
        )
    )
    return bool(found)


async def erase_lead(
    conn: AsyncConnection, who: Principal, lead_id: int, via: audit.Via = "api"
) -> None:
    """Erase a lead the caller may see (404 otherwise). Run inside a transaction."""
    lead = await get_lead(conn, who, lead_id)
    company = who.company_id
    await audit.record(conn, who, "erase", lead, via)
    mine = select(messages.c.id).where(
        messages.c.lead_id == lead_id, messages.c.company_id == company
    )
    await forget_tracking(conn, company, [lead_id], mine)
    for stmt in (
        delete(list_members).where(list_members.c.lead_id == lead_id),
        delete(rollup_counts).where(
            rollup_counts.c.company_id == company,
            rollup_counts.c.dim == "link",
            _carries(rollup_counts.c.key, str(lead["email"])),
        ),
        update(leads)
        .where(leads.c.referred_by_lead_id == lead_id, leads.c.company_id == company)
        .values(referred_by_lead_id=None),
    ):
        await conn.execute(stmt)
    await _forget_links(conn, company, lead, mine)
    await _forget_forwarded_copies(conn, company, lead, mine)
    await _forget_imports(conn, company, str(lead["email"]))
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
                # A campaign copy still waiting for its time is never sent now.
                status=case(
                    (messages.c.status.in_(("scheduled", "queued")), "skipped"),
                    else_=messages.c.status,
                ),
            )
        )
    await conn.execute(delete(leads).where(leads.c.id == lead_id, leads.c.company_id == company))


async def forget_tracking(
    conn: AsyncConnection, company: int, lead_ids: list[int], mail: Select[Any]
) -> None:
    """Delete what the pipeline's stages write about these leads: hits, events, rollup
    rows, automation runs and jobs and the jobs' webhook deliveries, and the forward
    readers of `mail` (a select of message ids). The erase runs it, and the sweep
    (`crm.erase_sweep`) again, for what stages already in flight write after it."""
    jobs = select(automation_jobs.c.id).where(
        automation_jobs.c.lead_id.in_(lead_ids), automation_jobs.c.company_id == company
    )
    # The highest hit or event id is kept as an empty tombstone (store.tombstones).
    await tombstones.delete_rows(
        conn, hits, and_(hits.c.lead_id.in_(lead_ids), hits.c.company_id == company)
    )
    await tombstones.delete_rows(
        conn, events, and_(events.c.lead_id.in_(lead_ids), events.c.company_id == company)
    )
    for stmt in (
        delete(rollup_campaign_leads).where(
            rollup_campaign_leads.c.lead_id.in_(lead_ids),
            rollup_campaign_leads.c.company_id == company,
        ),
        delete(rollup_forward_readers).where(
            rollup_forward_readers.c.company_id == company,
            rollup_forward_readers.c.message_id.in_(mail),
        ),
        # Their events' groups carry the clicked URLs and clients: gone with the events.
        delete(rollup_message_events).where(rollup_message_events.c.message_id.in_(mail)),
        delete(rollup_counts).where(
            rollup_counts.c.company_id == company,
            rollup_counts.c.dim == "forwarder",
            rollup_counts.c.key.in_([lead_key(i) for i in lead_ids]),
        ),
        delete(webhook_deliveries).where(webhook_deliveries.c.job_id.in_(jobs)),
        delete(event_webhook_deliveries).where(
            event_webhook_deliveries.c.lead_id.in_(lead_ids),
            event_webhook_deliveries.c.company_id == company,
        ),
        delete(automation_jobs).where(automation_jobs.c.id.in_(jobs)),
        # The scoring model runs in the automation stage: a batch in flight may score again.
        delete(score_events).where(
            score_events.c.lead_id.in_(lead_ids), score_events.c.company_id == company
        ),
        delete(lead_scores).where(
            lead_scores.c.lead_id.in_(lead_ids), lead_scores.c.company_id == company
        ),
        delete(automation_runs).where(
            automation_runs.c.lead_id.in_(lead_ids), automation_runs.c.company_id == company
        ),
    ):
        await conn.execute(stmt)


def _carries(column: Any, email: str) -> ColumnElement[bool]:
    """The column's text holds the address, as written or URL-encoded."""
    forms = {email, quote(email, safe=""), quote_plus(email), quote(email, safe="@")}
    return or_(*(func.lower(column).contains(f.lower(), autoescape=True) for f in forms))


async def _forget_links(
    conn: AsyncConnection, company: int, lead: dict[str, Any], mine: Select[Any]
) -> None:
    """Delete the links of the lead's mail whose URL carries their address."""
    await conn.execute(
        delete(message_links).where(
            message_links.c.company_id == company,
            message_links.c.message_id.in_(mine),
            _carries(message_links.c.url, str(lead["email"])),
        )
    )


async def _forget_forwarded_copies(
    conn: AsyncConnection, company: int, lead: dict[str, Any], mine: Select[Any]
) -> None:
    """A friend's copy of their mail opens with their note ("Ann Lee forwarded this...")
    and, from a single message, their merged subject: the stored bodies go (the friend's
    links and events stay, they are the friend's), and a subject that names them."""
    copies = (messages.c.company_id == company, messages.c.forwarded_from_message_id.in_(mine))
    await conn.execute(
        update(messages).where(*copies).values(html="", text=None, headers=None, warnings=None)
    )
    names = [str(lead[k]) for k in ("email", "first_name", "last_name") if lead.get(k)]
    await conn.execute(
        update(messages)
        .where(*copies, or_(*(func.lower(messages.c.subject).contains(n.lower()) for n in names)))
        .values(subject="")
    )


async def _forget_imports(conn: AsyncConnection, company: int, email: str) -> None:
    """Their lines in imports still queued (a running one holds its file in memory
    already), and their address in finished imports' rejections (line and no reason)."""
    jobs = await conn.execute(
        select(lead_imports.c.id, lead_imports.c.content, lead_imports.c.rejected).where(
            lead_imports.c.company_id == company
        )
    )
    for job in jobs.all():
        values: dict[str, Any] = {}
        if job.content is not None and email.encode() in bytes(job.content).lower():
            values["content"] = without_lines_naming(bytes(job.content), email)
        if job.rejected and any(email in str(r.get("reason", "")).lower() for r in job.rejected):
            values["rejected"] = [
                r | {"reason": "(erased)"} if email in str(r.get("reason", "")).lower() else r
                for r in job.rejected
            ]
        if values:
            await conn.execute(
                update(lead_imports).where(lead_imports.c.id == job.id).values(**values)
            )


def without_lines_naming(data: bytes, email: str) -> bytes:
    """The CSV without the lines that hold the address (the header line always stays;
    line endings as they were)."""
    needle = email.lower().encode()
    lines = data.splitlines(keepends=True)
    return b"".join(lines[:1] + [x for x in lines[1:] if needle not in x.lower()])
