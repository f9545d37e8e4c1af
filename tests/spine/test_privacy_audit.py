"""Export and erase by API and CLI, who may do them, and the audit log that records both:
append-only in the code and in the database itself."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from spine_helpers import Accounts
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from test_workspace_cli import ok, run

from mailbeacon.store import Database
from mailbeacon.store.schema import audit_log, leads

SRC = Path(__file__).parents[2] / "src" / "mailbeacon"


async def test_export_and_audit_follow_the_permission_matrix(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    company = await accounts.company("ultimate")
    admin = await accounts.user(company)
    marketer = await accounts.user(company, "marketing_manager")
    seller = await accounts.user(company, "salesperson")
    lead = (
        await api.post("/api/v1/leads", json={"email": "ann@example.com"}, headers=admin.auth)
    ).json()
    url = f"/api/v1/leads/{lead['id']}/export"

    got = await api.get(url, headers=marketer.auth)
    assert got.status_code == 200 and got.headers["cache-control"] == "no-store"
    assert got.json()["lead"]["email"] == "ann@example.com"
    # Tracking data: the sales roles get 403; another company's lead is a 404.
    assert (await api.get(url, headers=seller.auth)).status_code == 403
    other = await accounts.user(await accounts.company("ultimate", "Other"))
    assert (await api.get(url, headers=other.auth)).status_code == 404
    assert (await api.get("/api/v1/leads/999999/export", headers=admin.auth)).status_code == 404

    # The log: administrators and company managers only; each company its own.
    assert (await api.get("/api/v1/audit", headers=marketer.auth)).status_code == 403
    assert (await api.get("/api/v1/audit", headers=other.auth)).json() == []
    [entry] = (await api.get("/api/v1/audit", headers=admin.auth)).json()
    assert entry["action"] == "export" and entry["user_id"] == marketer.user_id
    assert entry["lead_email_sha256"] == hashlib.sha256(b"ann@example.com").hexdigest()
    assert "ann@example.com" not in json.dumps(entry)

    # Paged newest first, with a Link to the next page.
    for _ in range(2):
        await api.get(url, headers=admin.auth)
    first = await api.get("/api/v1/audit?limit=2", headers=admin.auth)
    assert [e["user_id"] for e in first.json()] == [admin.user_id, admin.user_id]
    nxt = first.headers["link"].split(";")[0].strip("<>")
    assert [e["id"] for e in (await api.get(nxt, headers=admin.auth)).json()] == [entry["id"]]
    assert "link" not in (await api.get(nxt, headers=admin.auth)).headers
    erased = await api.get("/api/v1/audit?action=erase", headers=admin.auth)
    assert erased.json() == []


async def test_the_database_refuses_to_change_or_remove_an_entry(
    api: httpx.AsyncClient, accounts: Accounts, db: Database
) -> None:
    company = await accounts.company("ultimate")
    admin = await accounts.user(company)
    lead = (
        await api.post("/api/v1/leads", json={"email": "bo@example.com"}, headers=admin.auth)
    ).json()
    assert (await api.delete(f"/api/v1/leads/{lead['id']}", headers=admin.auth)).status_code == 204
    for statement in (update(audit_log).values(user_email="x"), delete(audit_log)):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.begin() as conn:
                await conn.execute(statement)
    async with db.connect() as conn:
        rows = (await conn.execute(select(audit_log.c.action, audit_log.c.user_email))).all()
    assert [r.action for r in rows] == ["erase"] and rows[0].user_email != "x"


def test_no_code_changes_or_removes_an_entry() -> None:
    """Append-only in the code too: nothing but an insert names the table."""
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        for needle in (
            "update(audit_log",
            "delete(audit_log",
            "audit_log.update",
            "audit_log.delete",
        )
        if needle in path.read_text()
    ]
    assert offenders == []


async def test_the_cli_exports_and_erases(db_url: str, db: Database) -> None:
    company = json.loads(ok("company", "create", "Acme", "--plan", "ultimate", "--json", db=db_url))
    cid = str(company["id"])
    args = ("--company", cid, "--email", "admin@acme.example.com")
    ok("user", "create", *args, "--role", "administrator", "--password", "x" * 10, db=db_url)
    lead = json.loads(
        ok("lead", "add", "cy@example.com", "--last-name", "Cyan", "--json", db=db_url)
    )

    doc = json.loads(ok("lead", "export", str(lead["id"]), "--company", cid, db=db_url))
    assert doc["lead"]["email"] == "cy@example.com" and doc["lead"]["last_name"] == "Cyan"
    assert doc["audit"][0]["via"] == "cli"

    # It asks first; without an answer, nothing is erased.
    asked = run("lead", "erase", str(lead["id"]), db=db_url, stdin="")
    assert asked.returncode != 0 and "Erase lead" in asked.stdout
    missing = run("lead", "erase", "999999", "--yes", db=db_url)
    assert missing.returncode == 1 and "lead 999999 does not exist" in missing.stderr
    done = json.loads(ok("lead", "erase", str(lead["id"]), "--yes", "--json", db=db_url))
    assert done == {"id": lead["id"], "erased": True}
    async with db.connect() as conn:
        assert (await conn.execute(select(leads.c.id))).all() == []
        actions = (await conn.execute(select(audit_log.c.action, audit_log.c.via))).all()
    assert sorted(actions) == [("erase", "cli"), ("export", "cli")]
