"""The leads, lists and import pages over ASGI: what each role sees, and that every
form acts through the same crm functions as the API (CSRF checked)."""

from __future__ import annotations

import asyncio
import csv
import io
import re

import httpx
from dashboard_helpers import Site, login

from mailbeacon.crm import import_jobs
from mailbeacon.crm.users import create_api_key
from mailbeacon.store import Database


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def test_marketing_manager_adds_edits_and_deletes_a_lead(
    client: httpx.AsyncClient, site: Site
) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    page = await client.get("/leads")
    assert page.status_code == 200
    assert 'name="engagement"' in page.text and ">Score</th>" in page.text
    csrf = _csrf(page.text)
    form = {"csrf": csrf, "email": "Ada@Example.com", "first_name": "Ada", "last_name": "L"}
    made = await client.post("/leads", data=form | {"timezone": "Europe/Paris"})
    assert made.status_code == 303
    lead_url = made.headers["location"].split("?")[0]
    again = await client.post("/leads", data=form)
    assert again.status_code == 409
    assert "already exists: lead " + lead_url.rsplit("/", 1)[1] in again.text
    shown = await client.get(lead_url)
    assert shown.status_code == 200 and "ada@example.com" in shown.text
    edit = {
        "csrf": csrf,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "timezone": "",
        "new_field": "company",
        "new_value": "Analytical",
    }
    saved = await client.post(lead_url + "/edit", data=edit)
    assert saved.status_code == 303
    shown = await client.get(lead_url)
    assert "Lovelace" in shown.text and "<dt>company</dt><dd>Analytical</dd>" in shown.text
    bad = await client.post(lead_url + "/edit", data=edit | {"email": "not an address"})
    assert bad.status_code == 422 and 'id="edit-email-error"' in bad.text
    # Export: a download of everything held, behind the CSRF token (it is audited).
    assert (await client.post(lead_url + "/export", data={"csrf": "x"})).status_code == 403
    exported = await client.post(lead_url + "/export", data={"csrf": csrf})
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].startswith("attachment; filename=")
    assert exported.json()["lead"]["fields"] == {"company": "Analytical"}
    no_csrf = await client.post(lead_url + "/delete", data={"csrf": "x"})
    assert no_csrf.status_code == 403
    confirm = await client.get(lead_url + "/delete")
    assert "Delete permanently" in confirm.text
    gone = await client.post(lead_url + "/delete", data={"csrf": csrf})
    assert gone.status_code == 303 and gone.headers["location"].startswith("/leads?notice=")
    assert (await client.get(lead_url)).status_code == 404


async def test_salesperson_sees_own_leads_without_tracking_data(
    client: httpx.AsyncClient, site: Site
) -> None:
    await login(client, site.email("salesperson"), site.password)
    page = await client.get("/leads?engagement=opened&min_score=5&sort=-score")
    assert page.status_code == 200
    assert 'name="engagement"' not in page.text and "Score" not in page.text
    assert "score" not in page.text.lower().replace("/static", "")
    exported = await client.get("/leads/export.csv")
    assert exported.status_code == 200
    header = next(csv.reader(io.StringIO(exported.text)))
    assert "score" not in header and "engagement" not in header
    # A lead's export holds tracking data: not for the sales roles.
    refused = await client.post("/leads/1/export", data={"csrf": _csrf(page.text)})
    assert refused.status_code == 403


async def test_a_small_import_shows_its_rejected_lines(
    client: httpx.AsyncClient, site: Site
) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    csrf = _csrf((await client.get("/leads/import")).text)
    data = "email;first_name;company\na@x.example;A;Acme\nnot-an-email;B;\nb@x.example;B;Bee\n;C;\n"
    files = {"file": ("leads.csv", data.encode(), "text/csv")}
    answer = await client.post("/leads/import", data={"csrf": csrf, "list_id": ""}, files=files)
    assert answer.status_code == 200, answer.text
    assert re.search(r'id="imported">2<', answer.text)
    lines = re.findall(r'<tr><td class="num">(\d+)</td>', answer.text)
    assert lines == ["3", "5"]


async def test_a_large_import_is_queued_and_its_status_polled(
    client: httpx.AsyncClient, site: Site
) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    csrf = _csrf((await client.get("/leads/import")).text)
    rows = "".join(f"big{i}@x.example,Big,{i}\n" for i in range(6000))
    files = {"file": ("big.csv", ("email,first_name,last_name\n" + rows).encode(), "text/csv")}
    answer = await client.post("/leads/import", data={"csrf": csrf}, files=files)
    assert answer.status_code == 303
    job_url = answer.headers["location"]
    page = await client.get(job_url)
    assert "<progress" in page.text and 'for="import-progress"' in page.text
    assert (await client.get(job_url + "/status")).json()["status"] == "queued"
    db = Database(site.settings.database_url)
    try:
        job = await import_jobs._claim(db)
        assert job is not None
        await import_jobs.run_job(db, job)
    finally:
        await db.dispose()
    status = (await client.get(job_url + "/status")).json()
    assert (status["status"], status["processed_rows"], status["total_rows"]) == (
        "done",
        6000,
        6000,
    )
    assert status["imported"] == 6000
    done = await client.get(job_url)
    assert re.search(r'id="imported">6000<', done.text)


async def test_lists_create_rename_and_remove_a_member(
    client: httpx.AsyncClient, site: Site
) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    csrf = _csrf((await client.get("/lists")).text)
    made = await client.post("/lists", data={"csrf": csrf, "name": "Webinar"})
    assert made.status_code == 303
    page = (await client.get("/lists")).text
    list_id = int(re.findall(r'href="/lists/(\d+)">Webinar<', page)[0])
    empty = await client.post("/lists", data={"csrf": csrf, "name": "  "})
    assert empty.status_code == 422 and 'id="list-name-error"' in empty.text
    lead_ids = list(site.world.leads.values())[:3]
    add = {"csrf": csrf, "list_id": str(list_id), "lead_ids": [str(i) for i in lead_ids]}
    added = await client.post("/leads/add-to-list", data=add)
    assert added.status_code == 303 and "Added+3+to+Webinar" in added.headers["location"]
    members = (await client.get(f"/lists/{list_id}")).text
    assert members.count("/remove/") == 3 and ">Opens</th>" in members
    removed = await client.post(f"/lists/{list_id}/remove/{lead_ids[0]}", data={"csrf": csrf})
    assert removed.status_code == 303
    assert (await client.get(f"/lists/{list_id}")).text.count("/remove/") == 2
    renamed = await client.post(
        f"/lists/{list_id}/rename", data={"csrf": csrf, "name": "Webinar 2"}
    )
    assert renamed.status_code == 303
    assert '>Webinar 2</a></td>\n    <td class="num">2</td>' in (await client.get("/lists")).text


async def test_the_api_queues_a_background_import_and_reports_it(
    client: httpx.AsyncClient, site: Site
) -> None:
    db = Database(site.settings.database_url)
    try:
        async with db.begin() as conn:
            key = await create_api_key(conn, site.world.users["marketing_manager"])
        auth = {"Authorization": f"Bearer {key}"}
        data = b"email,team\nq1@x.example,red\nbad\nq2@x.example,blue\n"
        files = {"file": ("q.csv", data, "text/csv")}
        queued = await client.post(
            "/api/v1/leads/import?background=true", files=files, headers=auth
        )
        assert queued.status_code == 202
        job_id = queued.json()["id"]
        assert queued.json() == {"id": job_id, "status": "queued"}
        job = await import_jobs._claim(db)
        assert job is not None and job["id"] == job_id
        await import_jobs.run_job(db, job)
        answer = await client.get(f"/api/v1/leads/imports/{job_id}", headers=auth)
        got = answer.json()
        assert (got["status"], got["imported"], got["updated"], got["processed_rows"]) == (
            "done",
            2,
            0,
            2,
        )
        assert got["rejected"] == [{"line": 3, "reason": got["rejected"][0]["reason"]}]
        assert "content" not in got
        missing = await client.get(f"/api/v1/leads/imports/{job_id + 1}", headers=auth)
        assert missing.status_code == 404
    finally:
        await db.dispose()


async def test_an_import_cut_short_runs_again_when_the_stage_restarts(
    client: httpx.AsyncClient, site: Site
) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    csrf = _csrf((await client.get("/leads/import")).text)
    rows = "".join(f"again{i}@x.example\n" for i in range(5001))
    files = {"file": ("again.csv", ("email\n" + rows).encode(), "text/csv")}
    job_url = (await client.post("/leads/import", data={"csrf": csrf}, files=files)).headers[
        "location"
    ]
    db = Database(site.settings.database_url)
    try:
        assert await import_jobs._claim(db) is not None  # then the process dies
        assert (await client.get(job_url + "/status")).json()["status"] == "running"
        stop = asyncio.Event()
        stage = asyncio.create_task(import_jobs.run_forever(db, site.settings, stop))
        for _ in range(200):
            status = (await client.get(job_url + "/status")).json()
            if status["status"] == "done":
                break
            await asyncio.sleep(0.05)
        stop.set()
        await stage
    finally:
        await db.dispose()
    assert (status["status"], status["imported"], status["processed_rows"]) == (
        "done",
        5001,
        5001,
    )
