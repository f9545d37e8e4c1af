"""`mailbeacon report ...`: the campaign report on the command line, a table or JSON.

Registered by `cli.main` as a sub-app (`app.add_typer(report_app, name="report")`).
The report first rolls up any events the pipeline has not reached yet, so the numbers
are current even when no server is running.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from mailbeacon.analytics import bulk, rollups
from mailbeacon.analytics.report import campaign_report
from mailbeacon.cli.common import DATABASE, database_url, run_db
from mailbeacon.store import Database
from mailbeacon.store.render import jsonable
from mailbeacon.store.schema import campaigns

report_app = typer.Typer(help="Campaign reports.", no_args_is_help=True)


async def _report(db: Database, campaign_id: int) -> dict[str, Any] | None:
    await rollups.catch_up(db)
    async with db.connect() as conn:
        company = (
            await conn.execute(select(campaigns.c.company_id).where(campaigns.c.id == campaign_id))
        ).scalar()
        if company is None:
            return None
        return jsonable(await campaign_report(conn, company, campaign_id))


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def render(report: dict[str, Any], console: Console) -> None:
    """Human numbers on the left; what was set apart, and why, on the right."""
    table = Table(title=f"Campaign {report['campaign_id']}: {report.get('name') or ''}")
    for col in ("people", "", "set apart", "", "why"):
        table.add_column(col)
    apart = report["machine_opens_by_reason"] | report["bot_clicks_by_reason"]
    why = "; ".join(f"{n} × {r}" for r, n in apart.items()) or "-"
    rows = [
        ("sent", report["sent"], "", "", ""),
        ("not tracked", report["not_tracked"], "", "", "no pixel: left out of the rates"),
        (
            "human opens (unique)",
            report["human_opens_unique"],
            "machine opens",
            report["machine_opens"],
            why,
        ),
        ("open rate", _pct(report["open_rate"]), "", "", ""),
        (
            "estimated true open rate",
            _pct(report["estimated_open_rate"]),
            "privacy-protected",
            report["privacy_protected"],
            "90% interval " + " to ".join(map(_pct, report["estimated_open_rate_interval"])),
        ),
        ("inferred opens", report["inferred_opens"], "", "", "clicked with images off"),
        ("clicks (unique)", report["clicks_unique"], "bot clicks", report["bot_clicks"], ""),
        ("clicks (total)", report["clicks_total"], "", "", ""),
        ("click rate", _pct(report["click_rate"]), "", "", ""),
        ("click-to-open", _pct(report["click_to_open_rate"]), "", "", ""),
        ("forwards", report["forwards"], "", "", ""),
        ("unsubscribes", report["unsubscribes"], "", "", ""),
        (
            "opens, every verdict",
            report["opens_total"],
            "naive unique",
            report["opens_unique"],
            "what a tool without verdicts shows",
        ),
    ]
    for row in rows:
        table.add_row(*(str(c) for c in row))
    console.print(table)
    est = report["estimate"]
    console.print(
        f"[bold]estimated true open rate[/]: {est['method']}; assumption: {est['assumption']}."
        + ("" if est["reliable"] else f" [red]Not reliable yet[/]: {est['reason']}."),
        soft_wrap=True,
    )
    for dim in ("by_client", "by_device", "by_country"):
        top = ", ".join(f"{k} {v}" for k, v in list(report[dim].items())[:6]) or "-"
        console.print(f"[bold]{dim.removeprefix('by_')}[/]: {top}")
    for link in report["links"][:10]:
        console.print(f"  link {link['index']}: {link['clicks']} human clicks  {link['url']}")


@report_app.command("campaign")
def campaign(
    campaign_id: int = typer.Argument(..., metavar="ID", help="the campaign's id"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    database: str | None = DATABASE,
) -> None:
    """The campaign report (CONTRACT.md's fields), as a table or JSON."""
    report = run_db(database_url(database), lambda db: _report(db, campaign_id))
    if report is None:
        typer.echo(
            f"error: campaign {campaign_id} does not exist (check ID and --database)", err=True
        )
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(report))
    else:
        render(report, Console())


@report_app.command("rebuild-rollups")
def rebuild_rollups(
    database: str | None = DATABASE,
    replay: bool = typer.Option(
        False, "--replay", help="Replay events through the pipeline's path (slow)."
    ),
) -> None:
    """Recount every report from the events (after `enrich --rebuild`).

    One GROUP BY in the database, in one transaction (on SQLite, writers wait for it)."""

    async def run(db: Database) -> int:
        if replay:
            return await rollups.rebuild(db, limit=5000)
        return await bulk.rebuild_bulk(db)

    typer.echo(f"rolled up {run_db(database_url(database), run)} events")
