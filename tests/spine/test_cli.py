"""The command line, run as a user would: the installed `mailbeacon` script."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mailbeacon.tokens import Signer

MAILBEACON = str(Path(sys.executable).parent / "mailbeacon")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAILBEACON, *args, "--database", db], capture_output=True, text=True, timeout=60
    )


def test_company_and_user_create_print_json(db_url: str) -> None:
    company = run("company", "create", "Acme Ltd", "--plan", "advanced", "--json", db=db_url)
    assert company.returncode == 0, company.stderr
    company_id = json.loads(company.stdout)["id"]
    user = run(
        "user", "create", "--company", str(company_id), "--email", "m@acme.example.com",
        "--role", "marketing_manager", "--password", "long enough pw", "--json", db=db_url,
    )  # fmt: skip
    assert user.returncode == 0, user.stderr
    out = json.loads(user.stdout)
    assert isinstance(out["id"], int) and out["api_key"].startswith("mb_")


@pytest.mark.parametrize(
    "args,choices",
    [
        (["company", "create", "X", "--plan", "gold"], "trial"),
        (["user", "create", "--company", "1", "--email", "a@example.com", "--role", "boss"],
         "jr_salesperson"),
    ],
)  # fmt: skip
def test_unknown_plan_or_role_exits_2_with_the_choices(
    args: list[str], choices: str, sqlite_url: str
) -> None:
    r = run(*args, db=sqlite_url)
    assert r.returncode == 2
    assert choices in r.stderr


def test_duplicate_user_is_a_clear_error_naming_the_flag(sqlite_url: str) -> None:
    company = json.loads(
        run("company", "create", "A", "--plan", "trial", "--json", db=sqlite_url).stdout
    )
    args = ["user", "create", "--company", str(company["id"]), "--email", "d@example.com",
            "--role", "salesperson", "--json"]  # fmt: skip
    assert run(*args, db=sqlite_url).returncode == 0
    again = run(*args, db=sqlite_url)
    assert again.returncode == 1
    assert "--email" in again.stderr and "already exists" in again.stderr


@pytest.mark.slow
def test_demo_needs_no_setup_signs_with_a_key_of_its_own_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    """`make run` in a fresh checkout: no variables, no key; Ctrl-C stops every process
    it started without the supervisor taking their stop for a crash."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBEACON_")}
    port, smtp_port = _free_port(), _free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [MAILBEACON, "demo", "--port", str(port), "--smtp-port", str(smtp_port)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=err, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/login").status_code == 200:
                    break
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.2)
        key_file = tmp_path / "var" / "secret_keys"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        kid, _, secret = key_file.read_text().strip().partition(":")
        [mail] = (tmp_path / "var" / "outbox").glob("*.eml")
        message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        [token] = re.findall(r"/o/([A-Za-z0-9_.-]+)\.gif", html)
        assert token.startswith(f"{kid}.")
        assert Signer(((kid, secret.encode()),)).verify(token) is not None
        assert httpx.get(f"http://127.0.0.1:{port}/o/{token}.gif").status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert "Demo company created" in out
    text = log.read_text()
    assert proc.returncode == 0, text
    assert text.count("generated a signing key in var/secret_keys") == 1, text
    assert " died " not in text and "starting it again" not in text, text
