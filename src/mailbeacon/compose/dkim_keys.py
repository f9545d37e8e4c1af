"""DKIM keys: make a signing key and the DNS record that publishes it.

For set-up (a CLI command, the demo) and tests; signing itself is in `mime`. Uses the
system's `openssl`, which every machine that sends mail has, rather than a crypto
dependency for one key a year.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path


def generate_key(path: Path, bits: int = 2048) -> str:
    """Write a new RSA private key (PEM) to `path`; return its DNS TXT record value,
    to publish at `<selector>._domainkey.<domain>`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(path), str(bits)],
        check=True,
        capture_output=True,
    )
    path.chmod(0o600)
    return dns_record(path)


def dns_record(path: Path) -> str:
    """The `v=DKIM1; k=rsa; p=...` TXT record for the private key at `path`."""
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(path), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode("ascii")
