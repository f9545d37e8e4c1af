"""Users, API keys and plan limits through a real `mailbeacon serve` and real SMTP.

An administrator on the trial plan (3 users) invites a marketing manager, who follows
the mailed link, sets a password and is signed in; a salesperson takes the third seat
and the fourth invitation is refused with `plan_limit`, by the API and by the CLI in
the same words. A role change applies from the next request. Deactivating ends the
user's API key and session cookie at once and frees a seat; reactivating past the
limit is refused. A revoked key is a 401 at once. Nobody deactivates themselves or
demotes the last administrator. Another company sees none of it (404). A CSV import
past the lead limit imports the rows that fit and rejects the rest by line.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import httpx
from live_server import MAILBEACON, Live, Mailbox, _cli

INVITE_LINK = re.compile(r"(http://\S+/invite/[A-Za-z0-9_-]+)")


def _cli_fails(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([MAILBEACON, *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stdout
    return out.stderr.strip()


def _bearer(live: Live, key: str) -> httpx.Client:
    return httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _company(live: Live, name: str, plan: str, admin: str) -> tuple[int, dict[str, Any]]:
    company = _cli(live.env, "company", "create", name, "--plan", plan)["id"]
    user = _cli(
        live.env, "user", "create", "--company", str(company), "--email", admin,
        "--role", "administrator", "--password", "admin-pass-123",
    )  # fmt: skip
    return company, user


def _accept(live: Live, link: str, password: str) -> httpx.Client:
    """Follow the invitation link in a cookie-keeping client, as a browser would."""
    browser = httpx.Client(timeout=10)
    form = browser.get(link)
    assert form.status_code == 200, form.text
    assert "Set password" in form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    done = browser.post(
        link, data={"csrf": csrf.group(1), "password": password, "repeat": password}
    )
    assert done.status_code == 303 and done.headers["location"] == "/"
    return browser


def test_team_on_the_trial_plan(live: Live, mailbox: tuple[Mailbox, str]) -> None:
    box, _ = mailbox
    company, admin_user = _company(live, "Trialco", "trial", "boss@trial.example.com")
    admin = _bearer(live, admin_user["api_key"])

    # Invite a marketing manager: a seat taken at once, a mail with a link.
    made = admin.post(
        "/api/v1/users", json={"email": "Mia@Trial.example.com", "role": "marketing_manager"}
    )
    assert made.status_code == 201, made.text
    mia = made.json()
    assert (mia["email"], mia["role"], mia["status"]) == (
        "mia@trial.example.com",
        "marketing_manager",
        "invited",
    )
    mail = box.wait(1)[-1]
    assert mail["To"] == "mia@trial.example.com"
    link = INVITE_LINK.search(mail.get_payload(decode=True).decode())
    assert link, mail.as_string()
    browser = _accept(live, link.group(1), "mia-pass-123")
    assert browser.get(f"{live.base}/").status_code == 200  # signed in by the link
    # The link works once.
    assert httpx.get(link.group(1)).status_code == 404
    listed = {u["email"]: u["status"] for u in admin.get("/api/v1/users").json()}
    assert listed == {"boss@trial.example.com": "active", "mia@trial.example.com": "active"}

    # The third seat, then the fourth is refused: by the API and by the CLI, same words.
    seller = admin.post(
        "/api/v1/users", json={"email": "sam@trial.example.com", "role": "salesperson"}
    )
    assert seller.status_code == 201, seller.text
    fourth = admin.post(
        "/api/v1/users", json={"email": "x@trial.example.com", "role": "salesperson"}
    )
    assert fourth.status_code == 403
    error = fourth.json()["error"]
    assert error["code"] == "plan_limit"
    assert "trial plan" in error["message"] and "3 users" in error["message"]
    said = _cli_fails(
        live.env, "user", "create", "--company", str(company), "--email", "y@trial.example.com",
        "--role", "salesperson",
    )  # fmt: skip
    assert said == f"error: {error['message']}"

    # Mia's key: a tracking route works; a salesperson's role takes it away at once.
    mia_key = _cli(live.env, "key", "create", "--user", str(mia["id"]))["api_key"]
    as_mia = _bearer(live, mia_key)
    lead = as_mia.post("/api/v1/leads", json={"email": "lead@else.example.com"}).json()
    assert as_mia.get(f"/api/v1/leads/{lead['id']}/activity").status_code == 200
    assert as_mia.get("/api/v1/users").status_code == 403  # not a manager of users
    demoted = admin.patch(f"/api/v1/users/{mia['id']}", json={"role": "salesperson"})
    assert demoted.status_code == 200 and demoted.json()["role"] == "salesperson"
    assert as_mia.get(f"/api/v1/leads/{lead['id']}/activity").status_code == 403

    # Deactivated: her key and her session cookie are refused on the very next request.
    gone = admin.patch(f"/api/v1/users/{mia['id']}", json={"active": False})
    assert gone.status_code == 200 and gone.json()["status"] == "deactivated"
    refused = as_mia.get("/api/v1/leads")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    page = browser.get(f"{live.base}/leads", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    # Her seat is free again; taking it means she cannot come back past the limit.
    assert (
        admin.post(
            "/api/v1/users", json={"email": "zoe@trial.example.com", "role": "salesperson"}
        ).status_code
        == 201
    )
    back = admin.patch(f"/api/v1/users/{mia['id']}", json={"active": True})
    assert back.status_code == 403 and back.json()["error"]["code"] == "plan_limit"

    # Nobody deactivates themselves; the last administrator stays one.
    me = admin_user["id"]
    self_off = admin.patch(f"/api/v1/users/{me}", json={"active": False})
    assert self_off.status_code == 409 and "yourself" in self_off.json()["error"]["message"]
    self_demoted = admin.patch(f"/api/v1/users/{me}", json={"role": "marketing_manager"})
    assert self_demoted.status_code == 409
    assert "last administrator" in self_demoted.json()["error"]["message"]

    # A revoked key is refused at once; the administrator's other key still works.
    spare = admin.post("/api/v1/api-keys", json={"name": "CI"})
    assert spare.status_code == 201 and spare.json()["key"].startswith("mb_")
    as_spare = _bearer(live, spare.json()["key"])
    assert as_spare.get("/api/v1/users").status_code == 200
    listed_keys = admin.get("/api/v1/api-keys").json()
    assert [k["name"] for k in listed_keys] == ["CI", None] and "key" not in listed_keys[0]
    assert admin.delete(f"/api/v1/api-keys/{spare.json()['id']}").status_code == 204
    assert as_spare.get("/api/v1/users").status_code == 401
    assert admin.get("/api/v1/users").status_code == 200

    # Another company: none of these users or keys are theirs to see or touch.
    _, other_user = _company(live, "Otherco", "ultimate", "boss@other.example.com")
    other = _bearer(live, other_user["api_key"])
    assert [u["email"] for u in other.get("/api/v1/users").json()] == ["boss@other.example.com"]
    assert other.get(f"/api/v1/users/{mia['id']}").status_code == 404
    assert other.patch(f"/api/v1/users/{me}", json={"active": False}).status_code == 404
    admin_key_id = admin.get("/api/v1/api-keys").json()[-1]["id"]
    assert other.delete(f"/api/v1/api-keys/{admin_key_id}").status_code == 404
    assert admin.get("/api/v1/users").status_code == 200
    taken = other.post(
        "/api/v1/users", json={"email": "sam@trial.example.com", "role": "salesperson"}
    )
    assert taken.status_code == 409  # a login email is one user's, whichever company


def test_leads_past_the_trial_limit(live: Live) -> None:
    _, admin_user = _company(live, "Leadco", "trial", "boss@leads.example.com")
    admin = _bearer(live, admin_user["api_key"])
    assert admin.post("/api/v1/leads", json={"email": "first@leads.example.com"}).status_code == 201
    rows = "\n".join(f"p{i}@leads.example.com" for i in range(1000))
    answer = admin.post(
        "/api/v1/leads/import",
        files={"file": ("leads.csv", f"email\nfirst@leads.example.com\n{rows}\n", "text/csv")},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    # The existing lead is updated; 999 new ones fit; the last new one is line 1002.
    assert (result["imported"], result["updated"]) == (999, 1)
    assert [r["line"] for r in result["rejected"]] == [1002]
    assert "trial plan allows 1000 leads" in result["rejected"][0]["reason"]
    one_more = admin.post("/api/v1/leads", json={"email": "late@leads.example.com"})
    assert one_more.status_code == 403
    assert one_more.json()["error"]["code"] == "plan_limit"
    assert json.loads(one_more.text)["error"]["message"] == result["rejected"][0]["reason"]
