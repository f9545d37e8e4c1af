"""What every command shares: the --database option, settings with their signing keys,
running async code, JSON output."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from mailbeacon.crm.errors import CrmError
from mailbeacon.settings import (
    DEFAULT_DATABASE_URL,
    MissingSecretKeys,
    Settings,
    from_env,
    with_secret_keys,
)
from mailbeacon.store import Database

T = TypeVar("T")

DATABASE = typer.Option(
    None,
    "--database",
    metavar="URL",
    help="database URL (default: $MAILBEACON_DATABASE_URL, else var/mailbeacon.db)",
)
JSON = typer.Option(False, "--json", help="print JSON for scripts")


def database_url(option: str | None) -> str:
    return option or os.environ.get("MAILBEACON_DATABASE_URL") or DEFAULT_DATABASE_URL


def signing_settings(database: str | None) -> Settings:
    """Settings for a command that signs (serve, pipeline, the demo, sends): with the
    keys from the environment, else the SQLite key file, made on first start."""
    try:
        return with_secret_keys(from_env(database_url=database_url(database)))
    except MissingSecretKeys as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


def run_db(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database, run `work`, close; a domain error becomes a clear exit 1."""

    async def main() -> T:
        db = Database.unpooled(url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except CrmError as e:
        flag = f" (--{e.field.replace('_', '-')})" if e.field else ""
        typer.echo(f"error{flag}: {e.message}", err=True)
        raise typer.Exit(1) from None


def emit(data: dict[str, Any], as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data) if as_json else text)
