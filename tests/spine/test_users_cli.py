"""`mailbeacon user list|role|deactivate|activate` and the plan's user limit, run as an
operator would (SQLite: the commands are engine-blind; the API story runs on both)."""

from __future__ import annotations

import json

from test_workspace_cli import ok, run


def test_the_operator_manages_users_within_the_plan(sqlite_url: str) -> None:
    db = sqlite_url
    company = json.loads(ok("company", "create", "Tri", "--plan", "trial", "--json", db=db))["id"]

    def create(email: str, role: str) -> tuple[int, str, str]:
        r = run("user", "create", "--company", str(company), "--email", email,
                "--role", role, "--json", db=db)  # fmt: skip
        return r.returncode, r.stdout, r.stderr.strip()

    assert create("a@tri.example.com", "administrator")[0] == 0
    assert create("m@tri.example.com", "marketing_manager")[0] == 0
    assert create("s@tri.example.com", "salesperson")[0] == 0
    code, out, err = create("x@tri.example.com", "salesperson")
    assert (code, out) == (1, "")
    assert err == (
        "error: plan limit: the trial plan allows 3 users (max_users) and this company has 3;"
        " deactivate a user or move to a larger plan"
    )

    changed = json.loads(
        ok("user", "role", "M@tri.example.com", "company_manager", "--json", db=db)
    )
    assert changed["role"] == "company_manager"
    gone = json.loads(ok("user", "deactivate", "s@tri.example.com", "--json", db=db))
    assert gone["status"] == "deactivated"
    assert create("x@tri.example.com", "salesperson")[0] == 0  # the freed seat
    back = run("user", "activate", "s@tri.example.com", db=db)
    assert back.returncode == 1 and "plan limit: the trial plan allows 3 users" in back.stderr

    last = run("user", "deactivate", "a@tri.example.com", db=db)
    assert last.returncode == 1
    assert "a@tri.example.com is the company's last administrator" in last.stderr
    wrong = run("user", "role", "a@tri.example.com", "boss", db=db)
    assert wrong.returncode == 2 and "ROLE" in wrong.stderr
    nobody = run("user", "deactivate", "who@tri.example.com", db=db)
    assert nobody.stderr.strip() == "error (--email): no user has the email who@tri.example.com"

    listed = json.loads(ok("user", "list", "--company", str(company), "--json", db=db))
    assert [(u["email"], u["role"], u["status"]) for u in listed] == [
        ("a@tri.example.com", "administrator", "active"),
        ("m@tri.example.com", "company_manager", "active"),
        ("s@tri.example.com", "salesperson", "deactivated"),
        ("x@tri.example.com", "salesperson", "active"),
    ]
    table = ok("user", "list", "--company", str(company), db=db)
    assert "deactivated" in table and "m@tri.example.com" in table
