"""A lead asks "what do you have on me?", then "delete me" (GDPR articles 15 and 17),
against the running server: a real campaign through SMTP, read through the real edge,
judged by the real enrich stage, scored and webhooked by real rules.

The lead has everything first: a list, custom fields, a campaign's mail opened, clicked
and forwarded to a friend, an unsubscribe, a score, rule runs with a done webhook (its
delivery logged) and a follow-up still due, a CSV import whose rejection names them.
The export holds every kind of record. After the erase, every table of the database is
read back and names them nowhere; their old pixel and link still answer, and store
nothing; no rule or webhook fires for them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re

import httpx
import pytest
from automation_harness import Hooks, Mailbox, Server, World, eventually
from erase_scan import row_counts, traces
from test_campaign_verdicts import Copy, fetch

from mailbeacon.crm.export import SECTIONS

Stage = tuple[World, Server]
EMAIL = "erin.vanderquist@example.com"
LAST = "Vanderquist"
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0"
HTML = (
    '<p>Hello {{first_name}}.</p><p><a href="https://acme.test/pricing">Pricing</a> '
    '<a href="https://acme.test/me?who={{email}}">Your page</a></p>'
)
# Tables whose rows an erased lead's hits may touch without storing anything about
# them: a stage's cursor and its lease (positions and times, no one's data).
BOOKKEEPING = {"cursors", "leases"}


def activity(w: World, lead_id: int) -> set[str]:
    return {e["type"] for e in w.api.get(f"/api/v1/leads/{lead_id}/activity").json()}


def forward_to_a_friend(url: str) -> int:
    form = httpx.get(url)
    nonce = re.search(r'name=nonce value="([^"]+)"', form.text)
    assert nonce is not None, form.text
    fields = {"nonce": nonce[1], "email": "bo@example.com", "name": "Bo Berg", "note": "Look"}
    return httpx.post(url, data=fields, headers={"user-agent": THUNDERBIRD}).status_code


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the spine test has both
async def test_a_lead_with_everything_is_exported_then_erased_without_a_trace(
    world: Stage, hooks: Hooks, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    box = smtp[0]
    body = {"email": EMAIL, "first_name": "Erin", "last_name": LAST}
    lead = w.api.post("/api/v1/leads", json=body).json()["id"]
    w.api.patch(f"/api/v1/leads/{lead}", json={"fields": {"company": "Erco"}})
    lst = w.api.post("/api/v1/lists", json={"name": "Spring readers"}).json()
    w.api.post(f"/api/v1/lists/{lst['id']}/leads", json={"lead_ids": [lead]})
    w.rule(
        name="Warm",
        trigger={"type": "opened"},
        actions=[
            {"type": "add_score", "points": 10},
            {"type": "webhook", "url": f"{hooks.url}/ok", "secret": "s3cret-s3cret"},
            # Still due when they are erased: it must never run.
            {"type": "webhook", "url": f"{hooks.url}/ok", "secret": "s3cret-s3cret",
             "delay_seconds": 3600},
        ],
    )  # fmt: skip
    csv = f"email,last_name\n{EMAIL},{LAST}\n{EMAIL},{LAST}\n".encode()
    queued = w.api.post(
        "/api/v1/leads/import?background=true", files={"file": ("leads.csv", csv, "text/csv")}
    ).json()
    await eventually(
        lambda: w.api.get(f"/api/v1/leads/imports/{queued['id']}").json()["status"] == "done",
        what="the import",
    )
    body = {"name": "Spring", "subject": "Hi {{first_name}}", "html": HTML}
    campaign = w.api.post(
        "/api/v1/campaigns", json=body | {"list_id": lst["id"], "forward_link": True}
    ).json()
    assert w.api.post(f"/api/v1/campaigns/{campaign['id']}/send").status_code == 202
    await eventually(lambda: box.to(EMAIL), what="the mail")
    mail = Copy(box.to(EMAIL)[0])

    # They open it, click, forward it to a friend, and unsubscribe.
    assert fetch(mail.pixel, "81.2.69.160", THUNDERBIRD) == 200
    assert fetch(mail.links["Pricing"], "81.2.69.160", THUNDERBIRD) == 302
    assert forward_to_a_friend(mail.links["Forward to a friend"]) == 200
    await eventually(lambda: box.to("bo@example.com"), what="the friend's copy")
    one_click = httpx.post(mail.unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    everything = {"open", "click", "forward", "unsubscribe"}
    await eventually(lambda: activity(w, lead) >= everything, timeout=20, what="the events")
    await eventually(lambda: w.score(lead) == 10, what="the score")
    await eventually(lambda: len(hooks.received) == 1, what="the webhook")

    def report() -> dict[str, int]:
        return w.api.get(f"/api/v1/campaigns/{campaign['id']}/report").json()  # type: ignore[no-any-return]

    await eventually(lambda: report()["clicks_total"] == 1, what="the report")

    # "What do you have on me?": one document, every kind of record in it.
    answer = w.api.get(f"/api/v1/leads/{lead}/export")
    assert answer.status_code == 200
    assert (
        answer.headers["content-disposition"] == f'attachment; filename="lead-{lead}-export.json"'
    )
    doc = answer.json()
    assert [k for k in doc if k in SECTIONS] == list(SECTIONS)
    assert [k for k in SECTIONS if not doc[k]] == []
    assert doc["lead"]["email"] == EMAIL and doc["lead"]["fields"] == {"company": "Erco"}
    assert doc["lead"]["score"] == 10 and doc["unsubscribes"]["status"] == "unsubscribed"
    assert [x["name"] for x in doc["lists"]] == ["Spring readers"]
    [message] = doc["messages"]
    assert message["subject"] == "Hi Erin" and EMAIL in message["headers"]["To"]
    assert {x["url"] for x in message["links"]} >= {
        "https://acme.test/pricing",
        f"https://acme.test/me?who={EMAIL}",
    }
    assert {h["kind"] for h in doc["hits"]} == everything
    assert {e["type"] for e in doc["events"]} >= everything
    assert doc["unsubscribes"]["events"][0]["type"] == "unsubscribe"
    assert doc["campaign_activity"][0]["human_open"] is True
    assert [r["trigger"]["type"] for r in doc["automation_runs"]] == ["open"]
    assert sorted(j["status"] for j in doc["automation_jobs"]) == ["done", "done", "pending"]
    assert [d["ok"] for d in doc["webhook_deliveries"]] == [True]
    assert [(a["action"], a["via"]) for a in doc["audit"]] == [("export", "api")]

    # "Delete me."
    before = await traces(w.db, lead, EMAIL, LAST)
    assert len(before) > 20
    assert w.api.delete(f"/api/v1/leads/{lead}").status_code == 204

    # A stage's batch read before the erase may write after it: the sweep deletes that.
    async def gone() -> bool:
        return await traces(w.db, lead, EMAIL, LAST) == []

    await eventually(gone, timeout=10, what="no trace of the lead")
    audit = w.api.get("/api/v1/audit").json()
    assert [(a["action"], a["lead_id"]) for a in audit] == [("erase", lead), ("export", lead)]
    assert audit[0]["lead_email_sha256"] == hashlib.sha256(EMAIL.encode()).hexdigest()
    assert report()["clicks_total"] == 1  # the anonymous counts stay

    # Their old mail still answers: the image, the link; the link that carried their
    # address is gone; a second unsubscribe and a forward do nothing.
    stored = await row_counts(w.db)
    assert fetch(mail.pixel, "81.2.69.160", THUNDERBIRD) == 200
    pixel = httpx.get(mail.pixel, headers={"user-agent": THUNDERBIRD})
    assert pixel.headers["content-type"] == "image/gif" and pixel.content[:6] == b"GIF89a"
    click = httpx.get(mail.links["Pricing"], headers={"user-agent": THUNDERBIRD})
    assert (click.status_code, click.headers["location"]) == (302, "https://acme.test/pricing")
    assert fetch(mail.links["Your page"], "81.2.69.160", THUNDERBIRD) == 404
    assert httpx.post(mail.unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert forward_to_a_friend(mail.links["Forward to a friend"]) == 503

    # ... and store nothing: enrichment drops those hits, and no row anywhere grew.
    def changed(counts: dict[str, int]) -> dict[str, tuple[int, int]]:
        return {
            t: (stored[t], n) for t, n in counts.items() if t not in BOOKKEEPING and n != stored[t]
        }

    async def settled() -> bool:
        return not changed(await row_counts(w.db))

    with contextlib.suppress(AssertionError):
        await eventually(settled, timeout=20, what="the erased lead's hits to be dropped")
    await asyncio.sleep(1.5)  # rules, webhooks, rollups: time enough to act, were they to
    assert changed(await row_counts(w.db)) == {}
    assert await traces(w.db, lead, EMAIL, LAST) == []
    assert len(hooks.received) == 1  # the delayed webhook never ran
    assert len(box.to("bo@example.com")) == 1  # no second copy to the friend
