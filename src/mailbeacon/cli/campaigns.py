"""`mailbeacon campaign create ...`: a draft campaign from files; `mailbeacon campaign send
ID`: send a campaign in the foreground with a progress bar; `mailbeacon campaign leads ID
--engagement opened [--csv]`: who engaged, and how."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from mailbeacon.analytics import engaged
from mailbeacon.cli.common import DATABASE, JSON, database_url, emit, run_db, signing_settings
from mailbeacon.crm import campaigns as crm_campaigns
from mailbeacon.crm.access import Role
from mailbeacon.crm.errors import NotFound
from mailbeacon.crm.users import Principal
from mailbeacon.delivery import AlreadySent, CampaignProgress, queue_campaign, send_under_lease
from mailbeacon.delivery.sender import LEASE, LEASE_SECONDS
from mailbeacon.store import Database, stages
from mailbeacon.store.render import jsonable
from mailbeacon.store.schema import campaigns, companies
from mailbeacon.tokens import Signer

campaign_app = typer.Typer(help="Campaigns.", no_args_is_help=True)
_FILE = {"exists": True, "dir_okay": False, "readable": True}


async def _operator(conn: Any, company_id: int) -> Principal:
    """Whoever runs the command holds the database: they act as the company's admin."""
    plan = (
        await conn.execute(select(companies.c.plan).where(companies.c.id == company_id))
    ).scalar()
    if plan is None:
        raise NotFound(f"company {company_id} does not exist", field="company")
    return Principal(0, company_id, Role.ADMINISTRATOR.value, plan, "cli")


@campaign_app.command("create")
def create(
    company: int = typer.Option(..., "--company", help="the company id"),
    list_id: int = typer.Option(..., "--list", "--list-id", help="the list it goes to"),
    name: str = typer.Option(..., "--name", help="the campaign's name"),
    subject: str = typer.Option(..., "--subject", help="subject (merge fields allowed)"),
    html: Path = typer.Option(..., "--html", help="file holding the HTML body", **_FILE),
    text: Path | None = typer.Option(None, "--text", help="file holding a text body", **_FILE),
    pixel_placement: str = typer.Option("body", "--pixel-placement", help="header|body|footer"),
    forward_link: bool = typer.Option(
        False,
        "--forward-link/--no-forward-link",
        help='a "Forward to a friend" link in the footer',
    ),
    track_opens: bool = typer.Option(
        True, "--track-opens/--no-track-opens", help="a tracking pixel (opens)"
    ),
    track_clicks: bool = typer.Option(
        True, "--track-clicks/--no-track-clicks", help="tracked links (clicks)"
    ),
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Create a draft campaign; `campaign send ID` sends it. Leads who are not tracked
    get neither a pixel nor tracked links, whatever the switches say."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.begin() as conn:
            return await crm_campaigns.create_campaign(
                conn,
                await _operator(conn, company),
                name=name,
                subject=subject,
                html=html.read_text(encoding="utf-8"),
                text=text.read_text(encoding="utf-8") if text else None,
                list_id=list_id,
                pixel_placement=pixel_placement,
                forward_link=forward_link,
                tracking={"opens": track_opens, "clicks": track_clicks},
            )

    c = jsonable(run_db(database_url(database), work))
    link = "on" if c["forward_link"] else "off"
    emit(c, as_json, f"campaign {c['id']} created (draft); forward-to-a-friend link {link}")


@campaign_app.command("send")
def send(
    campaign_id: int = typer.Argument(..., help="the campaign's id"),
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Send (or resume) a campaign now, to every subscribed lead of its list."""
    settings = signing_settings(database)

    async def work(db: Database) -> CampaignProgress | None:
        async with db.connect() as conn:
            company_id = (
                await conn.execute(
                    select(campaigns.c.company_id).where(campaigns.c.id == campaign_id)
                )
            ).scalar()
        if company_id is None:
            typer.echo(f"error: campaign {campaign_id} does not exist (check ID)", err=True)
            raise typer.Exit(1)
        holder = stages.holder_id()
        # A running server may be sending campaigns: wait our turn on the same lease,
        # and only then queue it, so the server does not take this one.
        while not await stages.acquire(db, LEASE, holder, LEASE_SECONDS):
            await asyncio.sleep(0.5)
        try:
            await queue_campaign(db, company_id, campaign_id)
            with Progress(
                TextColumn("[bold]campaign {task.fields[cid]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("sent {task.fields[sent]} skipped {task.fields[skipped]} "
                           "failed {task.fields[failed]}"),
                TimeElapsedColumn(),
                disable=as_json,
            ) as bar:  # fmt: skip
                task = bar.add_task("send", total=None, cid=campaign_id, sent=0, skipped=0,
                                    failed=0)  # fmt: skip

                def show(p: CampaignProgress) -> None:
                    bar.update(task, total=p.total, completed=p.processed, sent=p.sent,
                               skipped=p.skipped, failed=p.failed)  # fmt: skip

                try:
                    return await send_under_lease(
                        db, settings, Signer(settings.secret_keys), holder, company_id,
                        campaign_id, show,
                    )  # fmt: skip
                except (AlreadySent, ValueError) as e:
                    typer.echo(f"error: {e}", err=True)
                    raise typer.Exit(1) from None
        finally:
            await stages.release(db, LEASE, holder)

    p = run_db(settings.database_url, work)
    if p is None:
        typer.echo("error: another process took over the send; it resumes there", err=True)
        raise typer.Exit(1)
    emit(
        {"id": campaign_id, "sent": p.sent, "skipped": p.skipped, "failed": p.failed},
        as_json,
        f"campaign {campaign_id}: {p.sent} sent, {p.skipped} skipped, {p.failed} failed",
    )


@campaign_app.command("leads")
def engaged_leads(
    campaign_id: int = typer.Argument(..., help="the campaign's id"),
    engagement: str = typer.Option(
        ...,
        "--engagement",
        help="opened, clicked, forwarded, not_opened, privacy_protected, unsubscribed or bounced",
    ),
    as_csv: bool = typer.Option(False, "--csv", help="print CSV (a header row first)"),
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """The campaign's leads with one engagement, as the campaign's page lists them."""
    if engagement not in engaged.ENGAGEMENTS:
        typer.echo(
            f"error (--engagement): must be one of {', '.join(engaged.ENGAGEMENTS)}", err=True
        )
        raise typer.Exit(2)

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.connect() as conn:
            company_id = await conn.scalar(
                select(campaigns.c.company_id).where(campaigns.c.id == campaign_id)
            )
        if company_id is None:
            typer.echo(f"error: campaign {campaign_id} does not exist (check ID)", err=True)
            raise typer.Exit(1)
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            async with db.connect() as conn:
                page = await engaged.engaged_leads(
                    conn, company_id, campaign_id, engagement, limit=engaged.MAX_LIMIT,
                    cursor=cursor,
                )  # fmt: skip
            items += page.items
            if (cursor := page.next_cursor) is None:
                return items

    items = run_db(database_url(database), work)
    if as_json:
        typer.echo(json.dumps(items))
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(engaged.CSV_COLUMNS)
        writer.writerows(engaged.csv_row(item) for item in items)
    else:
        for item in items:
            name = " ".join(p for p in (item["first_name"], item["last_name"]) if p)
            typer.echo(
                f"{item['lead_id']:>8}  {item['email']}{f' ({name})' if name else ''}: "
                f"{item['opens']} opens, {item['clicks']} clicks; {item['reason']}"
            )
        typer.echo(f"{len(items)} lead{'s' if len(items) != 1 else ''} {engagement}")
