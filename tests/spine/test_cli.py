"""The command line, run as a user would: the installed `mailbeacon` script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MAILBEACON = str(Path(sys.executable).parent / "mailbeacon")


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
