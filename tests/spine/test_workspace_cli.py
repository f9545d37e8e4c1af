"""The lead, list and password commands, run as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from mailbeacon.crm.users import authenticate_password
from mailbeacon.store import Database
from mailbeacon.store.schema import users

MAILBEACON = str(Path(sys.executable).parent / "mailbeacon")


def run(*args: str, db: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAILBEACON, *args, "--database", db],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        env={**os.environ, "COLUMNS": "80"},
    )


def ok(*args: str, db: str, stdin: str | None = None) -> str:
    r = run(*args, db=db, stdin=stdin)
    assert r.returncode == 0, r.stderr
    return r.stdout


async def test_import_list_show_add_and_lists(db_url: str, tmp_path: Path) -> None:
    company = json.loads(ok("company", "create", "Acme", "--plan", "ultimate", "--json", db=db_url))
    args = ("--company", str(company["id"]), "--email", "admin@acme.example.com")
    ok("user", "create", *args, "--role", "administrator", "--password", "x" * 10, db=db_url)
    made = json.loads(ok("list", "create", "Spring", "--json", db=db_url))
    csv = tmp_path / "leads.csv"
    csv.write_text("email;first_name;city\nann@example.com;Ann;Oslo\nbroken;Bo;\n")
    out = json.loads(ok("lead", "import", str(csv), "--list", str(made["id"]), "--json", db=db_url))
    assert out == {
        "imported": 1,
        "updated": 0,
        "rejected": [{"line": 3, "reason": "email: An email address must have an @-sign."}],
    }
    text = ok("lead", "import", str(csv), db=db_url)
    assert text.splitlines() == [
        "0 imported, 1 updated, 1 rejected",
        "  line 3: email: An email address must have an @-sign.",
    ]
    added = json.loads(
        ok("lead", "add", "BO@example.com", "--first-name", "Bo", "--json", db=db_url)
    )
    listed = json.loads(ok("lead", "list", "--json", db=db_url))
    assert [(x["email"], x["fields"]) for x in listed] == [
        ("ann@example.com", {"city": "Oslo"}),
        ("bo@example.com", {}),
    ]
    shown = json.loads(ok("lead", "show", str(added["id"]), db=db_url))
    assert (shown["email"], shown["first_name"]) == ("bo@example.com", "Bo")
    lists = json.loads(ok("list", "list", "--json", db=db_url))
    assert [(x["name"], x["lead_count"]) for x in lists] == [("Spring", 1)]
    dup = run("lead", "add", "ann@example.com", db=db_url)
    assert dup.returncode == 1
    assert dup.stderr.startswith("error (--email): a lead with email ann@example.com already")
    for command in (["lead"], ["lead", "import"], ["list"], ["user", "password"]):
        r = subprocess.run(
            [MAILBEACON, *command, "--help"],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "80"},
        )
        assert r.returncode == 0
        assert max(len(line) for line in r.stdout.splitlines()) <= 80


async def test_user_password_resets_and_ends_sessions(db_url: str) -> None:
    company = json.loads(ok("company", "create", "Acme", "--plan", "trial", "--json", db=db_url))
    args = ("--company", str(company["id"]), "--email", "m@acme.example.com")
    ok(
        "user",
        "create",
        *args,
        "--role",
        "marketing_manager",
        "--password",
        "old password",
        db=db_url,
    )
    ok("user", "password", "M@acme.example.com", db=db_url, stdin="new password!\nnew password!\n")
    db = Database.unpooled(db_url)
    try:
        async with db.connect() as conn:
            assert await authenticate_password(conn, "m@acme.example.com", "new password!")
            assert not await authenticate_password(conn, "m@acme.example.com", "old password")
            epoch = await conn.scalar(select(users.c.session_epoch))
        assert epoch == 1
    finally:
        await db.dispose()
    short = run("user", "password", "m@acme.example.com", "--password", "short", db=db_url)
    assert (short.returncode, short.stderr.strip()) == (
        1,
        "error (--password): password must be at least 8 characters",
    )
    nobody = run("user", "password", "x@example.com", "--password", "long enough", db=db_url)
    assert nobody.stderr.strip() == "error (--email): no user has the email x@example.com"
