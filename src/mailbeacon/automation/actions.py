"""What each action does to a lead. Local ones change our tables; mail goes out through
delivery, so a follow-up is composed, tracked and suppressed like any other message.

Each function returns an `Outcome`: the job's final status and a line for the run log.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import httpx
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon import delivery
from mailbeacon.automation.sqlutil import add_scores, db_time, insert_rows
from mailbeacon.compose.headers import (
    address_header,
    configured_address,
    notification_id_header,
    one_line,
    sender_domain,
)
from mailbeacon.compose.mime import WIRE, as_bytes, set_headers
from mailbeacon.crm import leads as crm_leads
from mailbeacon.crm import lists as crm_lists
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import leads, list_members, lists, messages, users
from mailbeacon.tokens import Signer


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # done | failed | skipped | pending (retry later)
    result: str
    retry_in: float | None = None


@dataclass
class Context:
    """What remote actions reach: one of each per runner process."""

    db: Database
    settings: Settings
    signer: Signer
    transport: delivery.Transport
    http: httpx.AsyncClient


async def apply_local(conn: AsyncConnection, job: dict[str, Any]) -> Outcome:
    """Run a database-only action inside the transaction that marks it done."""
    action, company, lead = job["action"], job["company_id"], job["lead_id"]
    kind = action["type"]
    if kind == "add_score":
        await crm_leads.add_score(conn, company, lead, int(action["points"]))
        return Outcome("done", f"score {int(action['points']):+d}")
    if kind == "add_to_list":
        added = await crm_lists.add_lead(conn, company, action["list_id"], lead)
        return Outcome("done", "added to list" if added else "already in the list")
    if kind == "remove_from_list":
        removed = await crm_lists.remove_lead(conn, company, action["list_id"], lead)
        return Outcome("done", "removed from list" if removed else "was not in the list")
    if kind == "assign_owner":
        return await _assign_owner(conn, company, lead, int(action["user_id"]))
    return Outcome("failed", f"unknown local action {kind!r}")


async def apply_local_batch(
    conn: AsyncConnection, jobs: list[dict[str, Any]]
) -> dict[int, Outcome]:
    """The fast path for a batch of local jobs: one statement per kind of action.

    The per-lead work is what `crm` does one lead at a time (`add_score`, `add_lead`,
    `remove_lead`), as executemany; a batch that fails is redone job by job instead.
    """
    out: dict[int, Outcome] = {}
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        by_kind.setdefault(job["kind"], []).append(job)
    scores = by_kind.pop("add_score", [])
    if scores:
        await _add_scores(conn, scores)
        out.update({j["id"]: Outcome("done", f"score {j['action']['points']:+d}") for j in scores})
    listed = by_kind.pop("add_to_list", []) + by_kind.pop("remove_from_list", [])
    if listed:
        out.update(await _list_batch(conn, listed))
    for job in (j for rest in by_kind.values() for j in rest):
        out[job["id"]] = await apply_local(conn, job)
    return out


async def _add_scores(conn: AsyncConnection, jobs: list[dict[str, Any]]) -> None:
    """One change per lead, however many rules scored it in this batch."""
    points: dict[tuple[int, int], int] = {}
    for j in jobs:
        key = (j["lead_id"], j["company_id"])
        points[key] = points.get(key, 0) + int(j["action"]["points"])
    await add_scores(conn, points)


def _params(job: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"b_lead": job["lead_id"], "b_co": job["company_id"], **more}


async def _list_batch(conn: AsyncConnection, jobs: list[dict[str, Any]]) -> dict[int, Outcome]:
    wanted = {j["action"]["list_id"] for j in jobs}
    found = set(
        await conn.execute(select(lists.c.id, lists.c.company_id).where(lists.c.id.in_(wanted)))
    )
    out, adds, removes = {}, [], []
    for job in jobs:
        list_id = job["action"]["list_id"]
        if (list_id, job["company_id"]) not in found:
            out[job["id"]] = Outcome("failed", f"list {list_id} does not exist")
        elif job["kind"] == "add_to_list":
            adds.append(job)
            out[job["id"]] = Outcome("done", "in the list")
        else:
            removes.append(job)
            out[job["id"]] = Outcome("done", "not in the list")
    if adds:
        at = db_time(conn, now())
        await insert_rows(
            conn,
            list_members,
            ("list_id", "lead_id", "company_id", "added_at"),
            [(j["action"]["list_id"], j["lead_id"], j["company_id"], at) for j in adds],
            skip_conflicts=True,
        )
    if removes:
        await conn.execute(
            delete(list_members).where(
                list_members.c.list_id == bindparam("b_list"),
                list_members.c.lead_id == bindparam("b_lead"),
                list_members.c.company_id == bindparam("b_co"),
            ),
            [_params(j, b_list=j["action"]["list_id"]) for j in removes],
        )
    return out


async def _assign_owner(conn: AsyncConnection, company: int, lead: int, user_id: int) -> Outcome:
    user = await conn.execute(
        select(users.c.id).where(
            users.c.id == user_id, users.c.company_id == company, users.c.active
        )
    )
    if user.scalar() is None:
        return Outcome("skipped", f"user {user_id} is gone or inactive")
    await conn.execute(
        update(leads)
        .where(leads.c.id == lead, leads.c.company_id == company)
        .values(owner_user_id=user_id)
    )
    return Outcome("done", f"owner is now user {user_id}")


async def _lead(db: Database, company: int, lead: int) -> Any:
    async with db.connect() as conn:
        result = await conn.execute(
            select(
                leads.c.email,
                leads.c.first_name,
                leads.c.last_name,
                leads.c.status,
                leads.c.score,
                users.c.email.label("owner_email"),
                users.c.active.label("owner_active"),
            )
            .outerjoin(users, users.c.id == leads.c.owner_user_id)
            .where(leads.c.id == lead, leads.c.company_id == company)
        )
        return result.mappings().first()


async def _already_sent(db: Database, job: dict[str, Any]) -> int | None:
    """After a crash mid-send: the message that attempt stored, if it got that far."""
    async with db.connect() as conn:
        found = await conn.execute(
            select(messages.c.id).where(
                messages.c.company_id == job["company_id"],
                messages.c.lead_id == job["lead_id"],
                messages.c.subject == job["action"]["subject"],
                messages.c.created_at >= job["due_at"],
                messages.c.status.in_(("queued", "sent")),
            )
        )
        value = found.scalar()
    return int(value) if value is not None else None


async def send_email(ctx: Context, job: dict[str, Any]) -> Outcome:
    action = job["action"]
    lead = await _lead(ctx.db, job["company_id"], job["lead_id"])
    if lead is None:
        return Outcome("skipped", "the lead no longer exists")
    if lead["status"] != "subscribed":
        return Outcome("skipped", f"not sent: the lead is {lead['status']}")
    if job["recovered"] and (earlier := await _already_sent(ctx.db, job)) is not None:
        return Outcome("done", f"message {earlier} (sent before a restart)")
    try:
        msg = await delivery.create_message(
            ctx.db,
            ctx.settings,
            ctx.signer,
            company_id=job["company_id"],
            lead_id=job["lead_id"],
            subject=action["subject"],
            html=action["html"],
            text=action.get("text"),
            transport=ctx.transport,
        )
    except delivery.Suppressed as e:
        return Outcome("skipped", f"not sent: {e}")
    except (delivery.LeadNotFound, ValueError) as e:
        return Outcome("failed", f"not sent: {e}")
    if msg["status"] != "sent":
        return Outcome("failed", f"message {msg['id']}: {msg.get('error')}")
    return Outcome("done", f"message {msg['id']} sent")


def _owner_mail(settings: Settings, job: dict[str, Any], lead: Any) -> EmailMessage:
    event = job["trigger"] or {}
    # Names and the rule's name are users' text: one line each, so nothing they hold
    # (a newline, a comma, quotes) can add a header or a recipient.
    who = one_line(" ".join(p for p in (lead["first_name"], lead["last_name"]) if p))
    who = who or lead["email"]
    rule = one_line(str(job["rule_name"]))
    what = one_line(str(event.get("type", "engaged")))
    mail = EmailMessage(policy=WIRE)
    domain = sender_domain(settings.mail_from)
    set_headers(
        mail,
        {
            "From": configured_address(settings.mail_from),
            "To": address_header(None, lead["owner_email"]),
            "Subject": f"{who} triggered '{rule}' ({what})",
            "Message-ID": notification_id_header(job["company_id"], domain),
        },
    )
    lines = [
        f"Your lead {who} <{lead['email']}> triggered the rule '{rule}'.",
        "",
        f"What happened: {what}" + (f" at {event['at']}" if event.get("at") else ""),
    ]
    if event.get("url"):
        lines.append(f"Link: {event['url']}")
    lines += [f"Score: {lead['score']}", f"Lead: {settings.base_url}/leads/{job['lead_id']}"]
    if job["action"].get("note"):
        lines += ["", job["action"]["note"]]
    mail.set_content("\n".join(lines) + "\n")
    return mail


async def notify_owner(ctx: Context, job: dict[str, Any]) -> Outcome:
    lead = await _lead(ctx.db, job["company_id"], job["lead_id"])
    if lead is None:
        return Outcome("skipped", "the lead no longer exists")
    if not lead["owner_email"] or not lead["owner_active"]:
        return Outcome("skipped", "the lead has no active owner")
    mail = _owner_mail(ctx.settings, job, lead)
    try:
        await ctx.transport.send(
            parseaddr(ctx.settings.mail_from)[1], [lead["owner_email"]], as_bytes(mail)
        )
    except delivery.DeliveryError as e:
        return Outcome("failed", f"owner not notified: {e}")
    return Outcome("done", f"notified {lead['owner_email']}")
