"""`mailbeacon user list|deactivate|role`: the company's users, from the server's shell.

`user create` (in `cli.main`) and these go through the same `crm` rules as the API and
the settings page: the plan's user limit, and the company keeps an active
administrator. The operator is not a user, so the rules about who may change whom
(administrators only for administrators) do not apply here.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mailbeacon.cli.common import DATABASE, JSON, database_url, emit, run_db
from mailbeacon.crm import team
from mailbeacon.crm.access import Role
from mailbeacon.store import Database
from mailbeacon.store.render import jsonable

EMAIL = typer.Argument(..., help="the user's login email")


def list_command(
    company: int = typer.Option(..., "--company", help="the company id"),
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """The company's users with their role and status (active, invited, deactivated)."""

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.connect() as conn:
            return [jsonable(u) for u in await team.list_users(conn, company)]

    rows = run_db(database_url(database), work)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("id", "email", "role", "status")
    for r in rows:
        table.add_row(str(r["id"]), r["email"], r["role"], r["status"])
    Console().print(table)


def _change(database: str | None, email: str, **change: Any) -> dict[str, Any]:
    async def work(db: Database) -> dict[str, Any]:
        async with db.begin() as conn:
            company, user_id = await team.find_user_by_email(conn, email)
            return jsonable(await team.change_user(conn, company, user_id, actor=None, **change))

    return run_db(database_url(database), work)


def deactivate_command(
    email: str = EMAIL, as_json: bool = JSON, database: str | None = DATABASE
) -> None:
    """Deactivate a user: their sessions and API keys stop at once."""
    user = _change(database, email, active=False)
    emit(user, as_json, f"{user['email']} is deactivated; their sessions and API keys ended")


def activate_command(
    email: str = EMAIL, as_json: bool = JSON, database: str | None = DATABASE
) -> None:
    """Bring a deactivated user back (they take a seat of the plan again)."""
    user = _change(database, email, active=True)
    emit(user, as_json, f"{user['email']} is active again")


def role_command(
    email: str = EMAIL,
    role: Role = typer.Argument(
        ...,
        metavar="ROLE",
        help="administrator, company_manager, marketing_manager, sales_manager, "
        "salesperson or jr_salesperson",
    ),
    as_json: bool = JSON,
    database: str | None = DATABASE,
) -> None:
    """Change a user's role; it applies from their next request."""
    user = _change(database, email, role=role.value)
    emit(user, as_json, f"{user['email']} is now {user['role']}")
