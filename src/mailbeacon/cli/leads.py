"""`mailbeacon lead ...`: import a CSV with a progress bar, list, show and add leads;
export everything held about one, or erase them (both recorded in the audit log)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailbeacon.cli.acting import acting_principal
from mailbeacon.cli.common import DATABASE, JSON, database_url, emit, run_db
from mailbeacon.crm import leads as crm_leads
from mailbeacon.crm.erase import erase_lead
from mailbeacon.crm.export import export_lead
from mailbeacon.crm.imports import ImportResult, import_leads
from mailbeacon.crm.search import LeadQuery, search_leads
from mailbeacon.store import Database
from mailbeacon.store.render import jsonable

lead_app = typer.Typer(help="Leads: import, list, show, add, export, erase.", no_args_is_help=True)
COMPANY = typer.Option(
    None, "--company", metavar="ID", help="the company (needed when there are several)"
)


@lead_app.command("import")
def import_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="a CSV file, UTF-8"),
    list_id: int | None = typer.Option(None, "--list", metavar="ID", help="add them to a list"),
    company: int | None = COMPANY,
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Import leads from a CSV file: email required; first_name, last_name, timezone;
    any other column becomes a custom field. Existing leads are updated."""
    data = file.read_bytes()
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
        disable=as_json or not console.is_terminal,
    )

    async def work(db: Database) -> ImportResult:
        async with db.connect() as conn:
            who = await acting_principal(conn, company)
        task = bar.add_task("import", total=None)
        with bar:
            return await import_leads(
                db,
                who,
                data,
                list_id=list_id,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )

    result = run_db(database_url(database), work)
    rejected = "".join(f"\n  line {r['line']}: {r['reason']}" for r in result.rejected)
    emit(
        result.as_dict(),
        as_json,
        f"{result.imported} imported, {result.updated} updated, "
        f"{len(result.rejected)} rejected{rejected}",
    )


@lead_app.command("list")
def list_command(
    q: str | None = typer.Option(None, "--search", "-q", help="email or name contains"),
    list_id: int | None = typer.Option(None, "--list", metavar="ID", help="members of a list"),
    limit: int = typer.Option(50, min=1, max=500, help="at most this many"),
    company: int | None = COMPANY,
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """List leads, sorted by email."""

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.connect() as conn:
            who = await acting_principal(conn, company)
            query = LeadQuery(q=q, list_id=list_id, sort="email", limit=limit)
            rows, _ = await search_leads(conn, who, query, tracking=True)
        return [jsonable(r) for r in rows]

    rows = run_db(database_url(database), work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("id", "email", "name", "score", "engagement")
    for r in rows:
        name = " ".join(p for p in (r["first_name"], r["last_name"]) if p)
        table.add_row(str(r["id"]), r["email"], name, str(r["score"]), r["engagement"] or "")
    Console().print(table)


@lead_app.command("show")
def show_command(
    lead_id: int = typer.Argument(..., help="the lead's id"),
    company: int | None = COMPANY,
    database: str | None = DATABASE,
) -> None:
    """Print one lead as JSON."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.connect() as conn:
            who = await acting_principal(conn, company)
            return jsonable(await crm_leads.get_lead(conn, who, lead_id))

    typer.echo(json.dumps(run_db(database_url(database), work), indent=2))


@lead_app.command("add")
def add_command(
    email: str = typer.Argument(..., help="the lead's email address"),
    first_name: str | None = typer.Option(None, "--first-name"),
    last_name: str | None = typer.Option(None, "--last-name"),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA, e.g. Europe/Paris"),
    company: int | None = COMPANY,
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Add one lead; prints its id."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.begin() as conn:
            who = await acting_principal(conn, company)
            return await crm_leads.create_lead(
                conn, who, email=email, first_name=first_name, last_name=last_name,
                timezone=timezone,
            )  # fmt: skip

    lead = run_db(database_url(database), work)
    emit({"id": lead["id"]}, as_json, f"lead {lead['id']} added: {lead['email']}")


@lead_app.command("export")
def export_command(
    lead_id: int = typer.Argument(..., help="the lead's id"),
    company: int | None = COMPANY,
    database: str | None = DATABASE,
) -> None:
    """Print everything held about a lead as one JSON document (GDPR article 15), as
    GET /api/v1/leads/{id}/export answers it. Recorded in the audit log."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.begin() as conn:
            who = await acting_principal(conn, company)
            return await export_lead(conn, who, lead_id, via="cli")

    typer.echo(json.dumps(run_db(database_url(database), work), indent=2, ensure_ascii=False))


@lead_app.command("erase")
def erase_command(
    lead_id: int = typer.Argument(..., help="the lead's id"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask first"),
    company: int | None = COMPANY,
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Erase a lead and everything tracked about them (GDPR article 17), as DELETE
    /api/v1/leads/{id} does. Their mail already sent still answers, and records
    nothing. Cannot be undone; recorded in the audit log."""
    if not yes:
        typer.confirm(f"Erase lead {lead_id} and everything tracked about them?", abort=True)

    async def work(db: Database) -> dict[str, Any]:
        async with db.begin() as conn:
            who = await acting_principal(conn, company)
            await erase_lead(conn, who, lead_id, via="cli")
            # No address in the answer: a script's log must not keep what was erased.
            return {"id": lead_id, "erased": True}

    done = run_db(database_url(database), work)
    emit(done, as_json, f"lead {lead_id} erased, and everything tracked about them")
