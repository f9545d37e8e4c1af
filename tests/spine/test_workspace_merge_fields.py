"""Custom fields in subjects and bodies: filled per lead, a default when a lead has
none, and a template naming a field no lead has is refused with its name."""

from __future__ import annotations

import httpx
from spine_helpers import Accounts

from mailbeacon.compose.merge import fields_for, render, unknown_fields
from mailbeacon.compose.model import Recipient


def test_built_in_names_win_and_defaults_cover_empty_values() -> None:
    lead = Recipient(1, "ann@example.com", "", None, {"email": "spoof", "company": "Acme"})
    fields = fields_for(lead)
    assert render("{{email}} at {{company}}", fields, html=False) == "ann@example.com at Acme"
    template = (
        '{{ first_name | default("there") }}/{{ plan | default("free") }}/{{ company|d("x") }}'
    )
    assert render(template, fields, html=False) == "there/free/Acme"
    assert render('{{ first_name | default("x", false) }}', fields, html=False) == ""


def test_unknown_fields_are_read_from_the_template() -> None:
    assert unknown_fields(["{{ compnay }} {% if vip %}{{ first_name }}{% endif %}"], ["vip"]) == [
        "compnay"
    ]
    assert unknown_fields(["{% for i in range(2) %}{{ i }}{% endfor %}", None], []) == []
    assert unknown_fields(["{{ unsubscribe_url }} {{ forward_url }} {{ email }}"], []) == []


async def test_campaigns_and_messages_use_custom_fields(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    admin = await accounts.user(await accounts.company("ultimate"))
    lst = (await api.post("/api/v1/lists", json={"name": "L"}, headers=admin.auth)).json()
    campaign = {"name": "C", "subject": "News for {{ company }}", "html": "<p>x</p>"}
    r = await api.post(
        "/api/v1/campaigns", json=campaign | {"list_id": lst["id"]}, headers=admin.auth
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert (error["code"], error["field"]) == ("unknown_merge_field", "subject")
    assert error["message"].startswith("subject uses unknown merge field(s): company.")
    # An unknown filter (the composer once hinted `{{first_name|there}}`) is the author's
    # mistake, named with its field: a 422, never a 500.
    bad = campaign | {"subject": "Hi {{first_name|there}}", "list_id": lst["id"]}
    r = await api.post("/api/v1/campaigns", json=bad, headers=admin.auth)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "subject"
    assert "No filter named 'there'" in r.json()["error"]["message"]

    csv = "email,first_name,Company\nann@example.com,Ann,Acme\nbob@example.com,,\n"
    r = await api.post(
        "/api/v1/leads/import",
        files={"file": ("l.csv", csv.encode(), "text/csv")},
        data={"list_id": str(lst["id"])},
        headers=admin.auth,
    )
    assert r.json()["imported"] == 2
    r = await api.post(
        "/api/v1/campaigns", json=campaign | {"list_id": lst["id"]}, headers=admin.auth
    )
    assert r.status_code == 201, r.text
    html = "<p>{{ compnay }}</p>"
    r = await api.post(
        "/api/v1/campaigns",
        json=campaign | {"html": html, "list_id": lst["id"]},
        headers=admin.auth,
    )
    assert (r.status_code, r.json()["error"]["field"]) == (422, "html")
    assert "compnay" in r.json()["error"]["message"]
    assert "Known: the built-in email" in r.json()["error"]["message"]

    leads = (await api.get("/api/v1/leads?sort=email", headers=admin.auth)).json()
    subject = 'Hi {{ first_name | default("there") }} at {{ company | default("your team") }}'
    got = []
    for lead in leads:
        r = await api.post(
            "/api/v1/messages",
            json={
                "lead_id": lead["id"],
                "subject": subject,
                "html": "<p>{{company}}</p>",
                "send": False,
            },
            headers=admin.auth,
        )
        assert r.status_code == 201, r.text
        got.append((r.json()["subject"], "<p>Acme</p>" in r.json()["html"]))
    assert got == [("Hi Ann at Acme", True), ("Hi there at your team", False)]
    r = await api.post(
        "/api/v1/messages",
        json={"lead_id": leads[0]["id"], "subject": "{{ nope }}", "html": "x", "send": False},
        headers=admin.auth,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_merge_field")
