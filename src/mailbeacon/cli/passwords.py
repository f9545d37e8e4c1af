"""`mailbeacon user password EMAIL`: reset a forgotten password."""

from __future__ import annotations

import typer

from mailbeacon.cli.common import DATABASE, database_url, run_db
from mailbeacon.crm.passwords import set_password
from mailbeacon.store import Database


def password_command(
    email: str = typer.Argument(..., help="the user's login email"),
    password: str | None = typer.Option(
        None, "--password", help="the new password (asked for when left out)"
    ),
    database: str | None = DATABASE,
) -> None:
    """Set a user's password (asked twice unless --password); ends their sessions."""
    if password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)

    async def work(db: Database) -> None:
        async with db.begin() as conn:
            await set_password(conn, email, password)

    run_db(database_url(database), work)
    typer.echo(f"password set for {email}; their sessions have ended")
