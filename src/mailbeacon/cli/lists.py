"""`mailbeacon list ...`: make lists and see them with their sizes."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mailbeacon.cli.acting import acting_principal
from mailbeacon.cli.common import DATABASE, JSON, database_url, emit, run_db
from mailbeacon.cli.leads import COMPANY
from mailbeacon.crm import lists as crm_lists
from mailbeacon.store import Database
from mailbeacon.store.render import jsonable

list_app = typer.Typer(help="Lists of leads.", no_args_is_help=True)


@list_app.command("create")
def create_command(
    name: str = typer.Argument(..., help="the list's name"),
    company: int | None = COMPANY,
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Create a list; prints its id."""

    async def work(db: Database) -> dict[str, Any]:
        async with db.begin() as conn:
            who = await acting_principal(conn, company)
            return await crm_lists.create_list(conn, who, name)

    made = run_db(database_url(database), work)
    emit({"id": made["id"]}, as_json, f"list {made['id']} created: {made['name']}")


@list_app.command("list")
def list_command(
    company: int | None = COMPANY,
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """The company's lists and how many leads each has."""

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.connect() as conn:
            who = await acting_principal(conn, company)
            return [jsonable(r) for r in await crm_lists.all_lists(conn, who)]

    rows = run_db(database_url(database), work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("id", "name", "leads")
    for r in rows:
        table.add_row(str(r["id"]), r["name"], str(r["lead_count"]))
    Console().print(table)
