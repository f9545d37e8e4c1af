"""No built-in signing key: a fresh install makes its own, private, and keeps it.

The old constant key is in every copy of the source, so a session cookie or an
unsubscribe token signed with it must open nothing. The real `mailbeacon serve` runs on
a fresh SQLite directory with no MAILBEACON_SECRET_KEYS; PostgreSQL without it refuses.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mailbeacon.settings import (
    KEY_FILE,
    MissingSecretKeys,
    Settings,
    from_env,
    key_file_for,
    with_secret_keys,
)
from mailbeacon.settings.secret_keys import load_or_create
from mailbeacon.tokens import Kind, Signer, Token
from mailbeacon.web import session as sessions

MAILBEACON = str(Path(sys.executable).parent / "mailbeacon")
OLD_CONSTANT_KEY = (("dev", b"mailbeacon-development-key-change-me"),)
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The user's environment with none of ours: no key, no database, no writer."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MAILBEACON_")}


def cli(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [MAILBEACON, *args, "--json"], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def start(db_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [MAILBEACON, "serve", "--no-pipeline", "--port", str(port), "--database", db_url],
            env=clean_env(),
            stderr=err,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a service manager stops it; the exit code (0: a clean stop)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        raise


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited while starting"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/login", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError("the server did not start")


@pytest.mark.slow
def test_a_fresh_install_signs_with_its_own_private_key_and_keeps_it(
    tmp_path: Path, port: int
) -> None:
    home = tmp_path / "fresh"
    home.mkdir()
    db_url = f"sqlite:///{home / 'mailbeacon.db'}"
    company = cli("company", "create", "Acme", "--plan", "trial", "--database", db_url)
    user = cli(
        "user", "create", "--company", str(company["id"]), "--email", "ada@acme.example.com",
        "--role", "administrator", "--password", "correct horse battery", "--database", db_url,
    )  # fmt: skip
    key_file = home / KEY_FILE
    assert not key_file.exists()  # commands that sign nothing make no key
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = start(db_url, port, log)
    try:
        wait_ready(base, proc)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        keys = tuple(
            (kid, secret.encode())
            for kid, _, secret in (line.partition(":") for line in key_file.read_text().split())
        )
        assert len(keys) == 1 and len(keys[0][1]) == 43  # token_urlsafe(32)
        assert log.read_text().count(f"generated a signing key in {key_file}") == 1

        api = {"Authorization": f"Bearer {user['api_key']}"}
        lead = httpx.post(f"{base}/api/v1/leads", headers=api, json={"email": "lee@example.com"})
        assert lead.status_code == 201, lead.text
        lead_id = lead.json()["id"]
        body = {"lead_id": lead_id, "subject": "Hi", "html": "<p>hi</p>", "send": False}
        message = httpx.post(f"{base}/api/v1/messages", headers=api, json=body)
        assert message.status_code == 201, message.text
        ids = {"company_id": company["id"], "message_id": message.json()["id"]}
        unsubscribe = Token(Kind.UNSUBSCRIBE, lead_id=lead_id, **ids)

        # Forged with the old constant key: no session, no unsubscribe.
        forged = sessions.issue(OLD_CONSTANT_KEY, int(user["id"]), 0)
        page = httpx.get(f"{base}/campaigns", cookies={sessions.SESSION_COOKIE: forged})
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        forged_token = Signer(OLD_CONSTANT_KEY).sign(unsubscribe)
        assert httpx.post(f"{base}/u/{forged_token}", data=ONE_CLICK).status_code == 404
        assert httpx.get(f"{base}/api/v1/leads/{lead_id}", headers=api).json()["status"] == (
            "subscribed"
        )

        # Signed with the key in the file: the same requests work (the test can fail).
        cookie = sessions.issue(keys, int(user["id"]), 0)
        page = httpx.get(f"{base}/campaigns", cookies={sessions.SESSION_COOKIE: cookie})
        assert page.status_code == 200
        token = Signer(keys).sign(unsubscribe)
    finally:
        stopped = stop(proc)
    assert stopped == 0  # a clean stop, with the helpers stopped in order

    # The second start reuses the key: what was signed before still verifies.
    before = key_file.read_text()
    proc = start(db_url, port, log)
    try:
        wait_ready(base, proc)
        assert key_file.read_text() == before
        assert log.read_text().count("generated a signing key") == 1
        page = httpx.get(f"{base}/campaigns", cookies={sessions.SESSION_COOKIE: cookie})
        assert page.status_code == 200
        assert httpx.post(f"{base}/u/{token}", data=ONE_CLICK).status_code == 200
        assert httpx.get(f"{base}/api/v1/leads/{lead_id}", headers=api).json()["status"] == (
            "unsubscribed"
        )
    finally:
        stop(proc)


def test_postgresql_without_a_key_refuses_to_start_and_names_the_variable(
    pg_database: str,
) -> None:
    for command in (["serve"], ["pipeline"]):
        out = subprocess.run(
            [MAILBEACON, *command, "--database", pg_database],
            env=clean_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 1
        assert "error: MAILBEACON_SECRET_KEYS is not set" in out.stderr


def test_settings_carry_no_key_unless_given_one() -> None:
    assert Settings().secret_keys == ()
    assert from_env({}).secret_keys == ()
    assert from_env({"MAILBEACON_SECRET_KEYS": "a:x, b:y"}).secret_keys == (
        ("a", b"x"),
        ("b", b"y"),
    )
    with pytest.raises(ValueError, match="at least one signing key"):
        Signer(Settings().secret_keys)
    pg = Settings(database_url="postgresql+asyncpg://u@localhost/db")
    with pytest.raises(MissingSecretKeys, match="MAILBEACON_SECRET_KEYS"):
        with_secret_keys(pg)
    given = pg.with_(secret_keys=(("k", b"s"),))
    assert with_secret_keys(given) is given


@pytest.mark.parametrize(
    "url,expected",
    [
        ("sqlite:///var/mailbeacon.db", Path("var") / KEY_FILE),
        ("sqlite+aiosqlite:////srv/mb/data.db", Path("/srv/mb") / KEY_FILE),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+asyncpg://u@localhost/db", None),
    ],
)
def test_the_key_file_sits_beside_the_sqlite_database(url: str, expected: Path | None) -> None:
    assert key_file_for(url) == expected


def test_the_key_file_is_made_once_owner_only_whatever_the_umask(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db" / KEY_FILE
    old = os.umask(0)
    try:
        with caplog.at_level(logging.WARNING, "mailbeacon.settings"):
            first = load_or_create(path)
            again = load_or_create(path)
    finally:
        os.umask(old)
    assert first == again and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.message.count("generated a signing key") for r in caplog.records] == [1]
    assert sorted(p.name for p in path.parent.iterdir()) == [KEY_FILE]  # no temp file left
    settings = with_secret_keys(Settings(database_url=f"sqlite:///{tmp_path / 'db' / 'x.db'}"))
    assert settings.secret_keys == first


def test_a_key_file_others_can_read_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / KEY_FILE
    path.write_text("k2:new-secret\nk1:old-secret\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, "mailbeacon.settings"):
        assert load_or_create(path) == (("k2", b"new-secret"), ("k1", b"old-secret"))
    assert "can be read by other users" in caplog.text and "chmod 600" in caplog.text
    path.write_text("no colon here\n")
    with pytest.raises(MissingSecretKeys, match="one kid:secret per line"):
        load_or_create(path)


def test_a_key_file_that_cannot_be_read_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).mkdir()  # in the way, and not readable as a file (even by root)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(MissingSecretKeys, match="set MAILBEACON_SECRET_KEYS"):
        with_secret_keys(settings)
