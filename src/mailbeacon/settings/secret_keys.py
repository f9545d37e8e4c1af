"""The signing keys: sessions, tracking tokens and form nonces are HMAC-signed with them.

There is no built-in key: a key anyone can read in our source would let anyone forge a
session or a tracking token. `MAILBEACON_SECRET_KEYS` names them (`kid:secret`, comma
separated, the first one signs). Without it, a SQLite install makes its own on first
start, in a file beside the database that only its owner may read, and every later start
(and every process `serve` starts) reads the same file. PostgreSQL serves several
machines, which must share one key, so there the variable is required.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailbeacon.settings import Settings

Keys = tuple[tuple[str, bytes], ...]
KEY_FILE = "secret_keys"  # beside the SQLite database file

log = logging.getLogger("mailbeacon.settings")


class MissingSecretKeys(RuntimeError):
    """No signing key is configured and none may be made here."""


def parse_keys(raw: str, source: str = "MAILBEACON_SECRET_KEYS") -> Keys:
    keys: list[tuple[str, bytes]] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, secret = part.partition(":")
        if not sep or not kid or not secret:
            raise ValueError(
                f"{source} must be comma-separated kid:secret pairs, "
                f"got an entry without both: {kid!r}"
            )
        keys.append((kid, secret.encode()))
    if not keys:
        raise ValueError(f"{source} has no keys")
    return tuple(keys)


def key_file_for(database_url: str) -> Path | None:
    """Where a SQLite database keeps its key file; None for other engines and memory."""
    from sqlalchemy.engine import make_url  # here: the hits writer imports settings

    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).parent / KEY_FILE


def with_secret_keys(settings: Settings) -> Settings:
    """`settings` with signing keys: its own, else the SQLite key file (made on first use).

    Raises `MissingSecretKeys` on PostgreSQL without `MAILBEACON_SECRET_KEYS`.
    """
    if settings.secret_keys:
        return settings
    if not settings.is_sqlite:
        raise MissingSecretKeys(
            "MAILBEACON_SECRET_KEYS is not set. On PostgreSQL every server must sign with "
            "the same key: set MAILBEACON_SECRET_KEYS=kid:secret on each of them, e.g. "
            "k1:$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    path = key_file_for(settings.database_url)
    if path is None:  # an in-memory database lives in one process: so may its key
        return settings.with_(secret_keys=(_new_key(),))
    try:
        return settings.with_(secret_keys=load_or_create(path))
    except OSError as e:
        raise MissingSecretKeys(
            f"cannot read or make the signing key file {path} ({e.strerror}): let this "
            "user write there, or set MAILBEACON_SECRET_KEYS"
        ) from None


def load_or_create(path: Path) -> Keys:
    """The keys in `path`; on first use a new random key, written there owner-only."""
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kid, secret = _new_key()
    # Written whole under a private name, then linked into place: another process
    # starting at the same moment sees no file or the complete one, never half of it,
    # and whichever link comes second keeps the first key.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, f"{kid}:{secret.decode()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)
    except FileExistsError:
        return _read(path)
    finally:
        temp.unlink()
    log.warning(
        "mailbeacon: generated a signing key in %s (readable by this user only). Keep it "
        "and back it up with the database: sessions and tracking links in sent mail need "
        "it. Set MAILBEACON_SECRET_KEYS to use keys of your own.",
        path,
    )
    return _read(path)


def _new_key() -> tuple[str, bytes]:
    # The kid says when the key was made; it appears in every token and session.
    return f"k{dt.datetime.now(dt.UTC):%Y%m%d}", secrets.token_urlsafe(32).encode()


def _read(path: Path) -> Keys:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning(
            "mailbeacon: %s can be read by other users (mode %o): anyone who reads it can "
            "sign in as any user; run chmod 600 %s",
            path,
            mode,
            path,
        )
    try:
        return parse_keys(path.read_text().replace("\n", ","), str(path))
    except ValueError as e:
        hint = "write one kid:secret per line, the signing key first"
        raise MissingSecretKeys(f"{e}: {hint}") from None
