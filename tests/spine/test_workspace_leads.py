"""A marketing manager works their leads through the API: imports a CSV, searches and
pages, filters by engagement, exports, edits and erases; sales roles see no tracking."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from spine_helpers import Account, Accounts
from sqlalchemy import insert

from mailbeacon.store import Database, now
from mailbeacon.store.schema import events, messages


async def upload(
    api: httpx.AsyncClient, who: Account, text: str | bytes, list_id: int | None = None
) -> httpx.Response:
    data = {"list_id": str(list_id)} if list_id is not None else {}
    body = text.encode() if isinstance(text, str) else text
    return await api.post(
        "/api/v1/leads/import",
        files={"file": ("leads.csv", body, "text/csv")},
        data=data,
        headers=who.auth,
    )


async def page(api: httpx.AsyncClient, who: Account, url: str) -> tuple[list[dict], str | None]:
    r = await api.get(url, headers=who.auth)
    assert r.status_code == 200, r.text
    link = r.headers.get("link")
    return r.json(), link[1 : link.index(">")] if link else None


async def test_import_reports_bad_lines_and_updates_existing_leads(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    admin = await accounts.user(await accounts.company("ultimate"))
    old = await api.post(
        "/api/v1/leads",
        json={"email": "ann@example.com", "first_name": "Annie", "last_name": "Old"},
        headers=admin.auth,
    )
    lst = (await api.post("/api/v1/lists", json={"name": "Spring"}, headers=admin.auth)).json()
    # BOM, semicolons, a quoted field with the separator and a line break in it.
    text = (
        "\ufeffEmail;First_Name;last_name;timezone;Company Name\r\n"
        'ANN@Example.com;Ann;;Europe/Paris;"Acme; Inc"\r\n'
        "not-an-address;Bob;B;;Bobco\r\n"
        "carl@example.com;Carl;C;Mars/Olympus;Carlco\r\n"
        '"dee@example.com";"Dee";"Line\nBreak";;Deeco\r\n'
        "eve@example.com;Eve;E;UTC\r\n"
        "\r\n"
        "fay@example.com;Fay;F;UTC;Faybank\r\n"
        "ann@example.com;Dup;D;;X\r\n"
    )
    r = await upload(api, admin, text, lst["id"])
    assert r.status_code == 200, r.text
    assert r.json() == {
        "imported": 1,
        "updated": 1,
        "rejected": [
            {"line": 3, "reason": "email: An email address must have an @-sign."},
            {
                "line": 4,
                "reason": "timezone 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Paris)",
            },
            {"line": 5, "reason": "last_name contains a line break or control character"},
            {"line": 6, "reason": "4 fields where the header has 5"},
            {"line": 9, "reason": "ann@example.com is on line 2 already"},
        ],
    }
    ann = (await api.get(f"/api/v1/leads/{old.json()['id']}", headers=admin.auth)).json()
    # a non-empty cell overwrites, an empty one keeps the lead's value
    assert (ann["first_name"], ann["last_name"], ann["timezone"]) == ("Ann", "Old", "Europe/Paris")
    assert ann["fields"] == {"company_name": "Acme; Inc"}
    members = (await api.get(f"/api/v1/lists/{lst['id']}/leads", headers=admin.auth)).json()
    assert [m["email"] for m in members] == ["ann@example.com", "fay@example.com"]

    # the same file again: nothing new, nothing doubled
    again = (await upload(api, admin, text, lst["id"])).json()
    assert (again["imported"], again["updated"], len(again["rejected"])) == (0, 2, 5)


async def test_import_sets_tracking_where_a_cell_says_so(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    admin = await accounts.user(await accounts.company("ultimate"))
    quiet = await api.post(
        "/api/v1/leads", json={"email": "quiet@example.com", "tracking": False}, headers=admin.auth
    )
    loud = await api.post("/api/v1/leads", json={"email": "loud@example.com"}, headers=admin.auth)
    text = (
        "email,Tracking\n"
        "quiet@example.com,\n"  # empty: keeps false
        "loud@example.com,No\n"
        "new@example.com,\n"  # new: tracked
        "off@example.com,false\n"
        "odd@example.com,maybe\n"
    )
    r = await upload(api, admin, text)
    assert r.status_code == 200, r.text
    assert r.json()["rejected"] == [
        {"line": 6, "reason": "tracking is 'maybe': write true or false (yes/no, 1/0)"}
    ]
    got = {}
    for email in ("quiet", "loud", "new", "off"):
        found = await api.get(f"/api/v1/leads?email={email}@example.com", headers=admin.auth)
        [lead] = found.json()
        got[email] = lead["tracking"]
        assert "tracking" not in (lead["fields"] or {})  # a lead's own column, not custom
    assert got == {"quiet": False, "loud": False, "new": True, "off": False}
    assert quiet.json()["id"] and loud.json()["tracking"] is True


@pytest.mark.parametrize("role", ["sales_manager", "salesperson"])
async def test_a_sales_role_imports_over_their_own_leads_only(
    role: str, api: httpx.AsyncClient, accounts: Accounts
) -> None:
    company = await accounts.company("ultimate")
    admin = await accounts.user(company)
    seller = await accounts.user(company, role)
    for who, email in ((admin, "boss@example.com"), (seller, "mine@example.com")):
        made = await api.post("/api/v1/leads", json={"email": email}, headers=who.auth)
        assert made.status_code == 201, made.text
    lst = (await api.post("/api/v1/lists", json={"name": "Mine"}, headers=seller.auth)).json()
    text = "email,first_name\nMINE@example.com,Me\nboss@example.com,Not\nnew@example.com,New\n"
    r = await upload(api, seller, text, lst["id"])
    assert r.json() == {
        "imported": 1,
        "updated": 1,
        "rejected": [{"line": 3, "reason": "boss@example.com is a lead of another user"}],
    }
    members = (await api.get(f"/api/v1/lists/{lst['id']}/leads", headers=admin.auth)).json()
    assert sorted(m["email"] for m in members) == ["mine@example.com", "new@example.com"]
    boss = (await api.get("/api/v1/leads?email=boss@example.com", headers=admin.auth)).json()
    assert boss[0]["first_name"] is None  # untouched


async def test_a_file_without_an_email_column_is_refused_whole(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    admin = await accounts.user(await accounts.company("ultimate"))
    r = await upload(api, admin, "name,company\nAnn,Acme\n")
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "the header row (line 1) has no email column"
    r = await upload(api, admin, b"email\n\xff\xfe@x.com\n")
    assert r.status_code == 422
    assert "not UTF-8" in r.json()["error"]["message"]
    r = await upload(api, admin, "email\na@example.com\n", list_id=999999)
    assert r.status_code == 404


async def test_search_pages_by_keyset_with_a_link_header(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    admin = await accounts.user(await accounts.company("ultimate"))
    rows = "".join(f"lead{i}@example.com,Name{i},Smith\n" for i in range(7))
    rows += "zed@example.com,Ada,Lovelace\n"
    assert (await upload(api, admin, "email,first_name,last_name\n" + rows)).json()["imported"] == 8

    seen: list[str] = []
    url: str | None = "/api/v1/leads?sort=email&limit=3"
    pages = 0
    while url:
        body, url = await page(api, admin, url)
        seen += [r["email"] for r in body]
        pages += 1
    assert pages == 3
    assert seen == [f"lead{i}@example.com" for i in range(7)] + ["zed@example.com"]

    desc, _ = await page(api, admin, "/api/v1/leads?sort=-email&limit=2")
    assert [r["email"] for r in desc] == ["zed@example.com", "lead6@example.com"]
    found, more = await page(api, admin, "/api/v1/leads?q=LOVELACE")
    assert ([r["email"] for r in found], more) == (["zed@example.com"], None)
    found, _ = await page(api, admin, "/api/v1/leads?q=ada%20love")
    assert [r["email"] for r in found] == ["zed@example.com"]
    found, _ = await page(api, admin, "/api/v1/leads?email=LEAD3@Example.com")
    assert [r["email"] for r in found] == ["lead3@example.com"]
    found, _ = await page(api, admin, "/api/v1/leads?q=100%25")  # a literal %, not a wildcard
    assert found == []

    by_score, _ = await page(api, admin, "/api/v1/leads?sort=-score&limit=1")
    assert by_score[0]["score"] == 0
    bad = await api.get("/api/v1/leads?sort=email&cursor=abc", headers=admin.auth)
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "cursor")
    assert (await api.get("/api/v1/leads?limit=501", headers=admin.auth)).status_code == 422
    assert (await api.get("/api/v1/leads?sort=name", headers=admin.auth)).status_code == 422


async def _mail(db: Database, company: int, lead: int, *evs: dict[str, Any]) -> None:
    """A sent message to `lead` and the events enrichment would have written for it."""
    async with db.begin() as conn:
        message = (
            await conn.execute(
                insert(messages)
                .values(
                    company_id=company,
                    lead_id=lead,
                    subject="S",
                    html="<p>x</p>",
                    status="sent",
                    created_at=now(),
                    sent_at=now(),
                )
                .returning(messages.c.id)
            )
        ).scalar_one()
        for ev in evs:
            await conn.execute(
                insert(events).values(
                    {
                        "company_id": company,
                        "message_id": message,
                        "lead_id": lead,
                        "at": now(),
                        "reason": "test",
                        "inferred": False,
                        "forwarded": False,
                    }
                    | ev
                )
            )


async def test_engagement_filters_and_the_sales_roles(
    api: httpx.AsyncClient, accounts: Accounts, db: Database
) -> None:
    company = await accounts.company("ultimate")
    admin = await accounts.user(company)
    seller = await accounts.user(company, "salesperson")
    ids = {}
    for name in ("opener", "clicker", "apple", "silent", "bot", "quits", "never"):
        r = await api.post(
            "/api/v1/leads", json={"email": f"{name}@example.com"}, headers=admin.auth
        )
        ids[name] = r.json()["id"]
    mine = await api.post(
        "/api/v1/leads",
        json={"email": "mine@example.com", "first_name": "=HYPERLINK(1)"},
        headers=seller.auth,
    )
    await _mail(db, company, ids["opener"], {"type": "open", "verdict": "human"})
    await _mail(
        db,
        company,
        ids["clicker"],
        {"type": "click", "verdict": "human"},
        {"type": "open", "verdict": "human", "inferred": True},
    )
    await _mail(db, company, ids["apple"], {"type": "open", "verdict": "prefetch"})
    await _mail(db, company, ids["silent"])
    await _mail(db, company, ids["bot"], {"type": "click", "verdict": "scanner"})
    await _mail(db, company, ids["quits"], {"type": "unsubscribe", "verdict": "human"})
    async with db.begin() as conn:
        from mailbeacon.crm.leads import set_lead_status

        await set_lead_status(conn, company, ids["quits"], "unsubscribed")

    async def emails(engagement: str) -> list[str]:
        body, _ = await page(api, admin, f"/api/v1/leads?sort=email&engagement={engagement}")
        return [r["email"].split("@")[0] for r in body]

    assert await emails("opened") == ["clicker", "opener"]
    assert await emails("clicked") == ["clicker"]
    assert await emails("privacy_protected") == ["apple"]
    assert await emails("never_opened") == ["bot", "quits", "silent"]
    assert await emails("unsubscribed") == ["quits"]
    assert await emails("bounced") == []
    body, _ = await page(api, admin, "/api/v1/leads?sort=email")
    assert {r["email"].split("@")[0]: r["engagement"] for r in body} == {
        "apple": "privacy_protected",
        "bot": "never_opened",
        "clicker": "clicked",
        "mine": None,
        "never": None,
        "opener": "opened",
        "quits": "unsubscribed",
        "silent": "never_opened",
    }

    # The salesperson: only their own lead, and no score or engagement anywhere.
    body, _ = await page(api, seller, "/api/v1/leads")
    assert [r["id"] for r in body] == [mine.json()["id"]]
    assert "score" not in body[0] and "engagement" not in body[0]
    for query in ("engagement=opened", "min_score=1", "sort=-score"):
        r = await api.get(f"/api/v1/leads?{query}", headers=seller.auth)
        assert r.status_code == 403, query
    r = await api.get("/api/v1/leads?format=csv", headers=seller.auth)
    assert r.text.splitlines() == [
        "email,first_name,last_name,timezone",
        "mine@example.com,'=HYPERLINK(1),,",  # a formula is kept as text
    ]

    r = await api.get("/api/v1/leads?format=csv&sort=email&engagement=opened", headers=admin.auth)
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert list(csv.reader(io.StringIO(r.text))) == [
        ["email", "first_name", "last_name", "timezone", "score", "engagement"],
        ["clicker@example.com", "", "", "", "0", "clicked"],
        ["opener@example.com", "", "", "", "0", "opened"],
    ]


async def test_csv_export_has_custom_field_columns_and_every_row(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    admin = await accounts.user(await accounts.company("ultimate"))
    rows = "".join(f"l{i:04d}@example.com,Co{i},\n" for i in range(1200))
    text = "email,company,plan\n" + rows + "vip@example.com,,gold\n"
    assert (await upload(api, admin, text)).json()["imported"] == 1201
    r = await api.get("/api/v1/leads?format=csv&sort=email&limit=5", headers=admin.auth)
    got = list(csv.reader(io.StringIO(r.text)))
    assert got[0] == [
        "email",
        "first_name",
        "last_name",
        "timezone",
        "company",
        "plan",
        "score",
        "engagement",
    ]
    assert len(got) == 1 + 1201  # the whole view, not one page
    assert got[1] == ["l0000@example.com", "", "", "", "Co0", "", "0", ""]
    assert got[-1] == ["vip@example.com", "", "", "", "", "gold", "0", ""]


async def test_patch_a_lead_and_duplicates_name_the_existing_lead(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    admin = await accounts.user(await accounts.company("ultimate"))
    a = (
        await api.post("/api/v1/leads", json={"email": "a@example.com"}, headers=admin.auth)
    ).json()
    b = (
        await api.post("/api/v1/leads", json={"email": "b@example.com"}, headers=admin.auth)
    ).json()
    r = await api.post("/api/v1/leads", json={"email": "A@Example.com"}, headers=admin.auth)
    assert r.status_code == 409
    assert (
        r.json()["error"]["message"]
        == f"a lead with email a@example.com already exists: lead {a['id']}"
    )

    url = f"/api/v1/leads/{b['id']}"
    r = await api.patch(
        url,
        json={
            "first_name": "Bea",
            "timezone": "Asia/Tokyo",
            "fields": {"company": "Acme", "tier": "1"},
        },
        headers=admin.auth,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["first_name"], r.json()["timezone"]) == ("Bea", "Asia/Tokyo")
    assert r.json()["fields"] == {"company": "Acme", "tier": "1"}
    r = await api.patch(url, json={"fields": {"tier": None, "city": "Oslo"}}, headers=admin.auth)
    assert r.json()["fields"] == {"company": "Acme", "city": "Oslo"}
    r = await api.patch(url, json={"email": "A@example.com"}, headers=admin.auth)
    assert r.status_code == 409
    assert r.json()["error"]["message"].endswith(f"lead {a['id']}")
    r = await api.patch(url, json={"timezone": "Nowhere/City"}, headers=admin.auth)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "timezone")
    r = await api.patch(url, json={"fields": {"Bad Name": "x"}}, headers=admin.auth)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "fields")
    r = await api.patch(url, json={"email": "b2@example.com"}, headers=admin.auth)
    assert r.json()["email"] == "b2@example.com"
    other = await accounts.user(await accounts.company("ultimate", "Other"))
    assert (await api.patch(url, json={"first_name": "X"}, headers=other.auth)).status_code == 404


async def test_lists_with_counts_rename_and_remove_a_member(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    admin = await accounts.user(await accounts.company("ultimate"))
    one = (await api.post("/api/v1/lists", json={"name": "One"}, headers=admin.auth)).json()
    two = (await api.post("/api/v1/lists", json={"name": "Two"}, headers=admin.auth)).json()
    await upload(api, admin, "email\na@example.com\nb@example.com\n", one["id"])
    lead_b = (await page(api, admin, "/api/v1/leads?email=b@example.com"))[0][0]["id"]
    r = await api.get("/api/v1/lists", headers=admin.auth)
    assert [(x["name"], x["lead_count"]) for x in r.json()] == [("One", 2), ("Two", 0)]

    r = await api.patch(f"/api/v1/lists/{two['id']}", json={"name": " Second "}, headers=admin.auth)
    assert (r.status_code, r.json()["name"]) == (200, "Second")
    r = await api.delete(f"/api/v1/lists/{one['id']}/leads/{lead_b}", headers=admin.auth)
    assert r.status_code == 204
    r = await api.delete(f"/api/v1/lists/{one['id']}/leads/{lead_b}", headers=admin.auth)
    assert r.status_code == 404
    r = await api.get("/api/v1/lists", headers=admin.auth)
    assert [(x["name"], x["lead_count"]) for x in r.json()] == [("One", 1), ("Second", 0)]
    listed, _ = await page(api, admin, f"/api/v1/leads?list_id={one['id']}")
    assert [x["email"] for x in listed] == ["a@example.com"]
    other = await accounts.user(await accounts.company("ultimate", "Other"))
    assert (await api.get("/api/v1/lists", headers=other.auth)).json() == []
    r = await api.patch(f"/api/v1/lists/{one['id']}", json={"name": "Mine"}, headers=other.auth)
    assert r.status_code == 404


async def test_an_import_in_many_chunks_counts_every_row_once(
    api: httpx.AsyncClient, accounts: Accounts, db: Database
) -> None:
    """Small chunks (PostgreSQL writes two at once): the progress only grows and ends at
    the total, and the counts, the list and the rejected lines come out as one chunk."""
    from mailbeacon.crm.imports import import_leads
    from mailbeacon.crm.users import get_principal

    company = await accounts.company("ultimate")
    seller = await accounts.user(company, "sales_manager")
    admin = await accounts.user(company)
    await api.post("/api/v1/leads", json={"email": "taken7@example.com"}, headers=admin.auth)
    await upload(api, seller, "email\n" + "".join(f"p{i}@example.com\n" for i in range(0, 300, 3)))
    lst = (await api.post("/api/v1/lists", json={"name": "Big"}, headers=seller.auth)).json()
    text = "email,first_name\n" + "".join(f"p{i}@example.com,P{i}\n" for i in range(300))
    text += "taken7@example.com,No\nbroken,No\n"
    seen: list[tuple[int, int]] = []
    async with db.connect() as conn:
        who = await get_principal(conn, seller.user_id)
    assert who is not None
    result = await import_leads(
        db, who, text.encode(), list_id=lst["id"], progress=lambda d, t: seen.append((d, t)),
        chunk_size=23,
    )  # fmt: skip
    assert (result.imported, result.updated) == (200, 100)
    assert result.rejected == [
        {"line": 302, "reason": "taken7@example.com is a lead of another user"},
        {"line": 303, "reason": result.rejected[1]["reason"]},
    ]
    assert seen[0] == (0, 301) and seen[-1] == (301, 301)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 15
    members = await api.get(f"/api/v1/lists/{lst['id']}/leads?limit=500", headers=admin.auth)
    assert len(members.json()) == 300
