"""Content by engagement (issue 16): a block for clickers of "pricing" reaches exactly
the leads who clicked it, through the real server, its real edge and enrich stage and
real SMTP; a scanner that followed every link is no clicker. A block naming a condition
that does not exist is refused when it is saved, by name, wherever templates are saved.
"""

from __future__ import annotations

from typing import Any

import pytest
from automation_harness import Mailbox, Server, World
from test_campaign_verdicts import CHROME, EDGE, OUTLOOK, delivered, fetch, send_campaign, settled

Stage = tuple[World, Server]
READERS = ("alice", "bob", "carol", "dave", "frank")
BLOCK = "Our new prices are in: ask us for a quote."
FOLLOW_UP = (
    "<p>Hello again.</p>"
    '{% if clicked("Pricing") %}<p class="offer">' + BLOCK + "</p>{% endif %}"
    "{% if not_opened_for_days(7) %}<p>We have missed you.</p>{% endif %}"
)


async def test_a_block_for_clickers_of_pricing_reaches_exactly_them(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    box = smtp[0]
    first, leads = await send_campaign(w, READERS)
    assert w.api.post(f"/api/v1/campaigns/{first}/send").status_code == 202
    mail = await delivered(box, READERS)
    # Alice opens and clicks pricing; Bob clicks pricing with images off; Dave reads
    # the docs only; a cloud scanner follows every link of Carol's copy; Frank is silent.
    assert fetch(mail["alice"].pixel, "81.2.69.160", OUTLOOK) == 200
    assert fetch(mail["alice"].links["Pricing"], "81.2.69.161", CHROME) == 302
    assert fetch(mail["bob"].links["Pricing"], "86.150.2.2", EDGE) == 302
    assert fetch(mail["dave"].links["Docs"], "86.150.7.7", EDGE) == 302
    assert fetch(mail["carol"].pixel, "20.42.1.1", CHROME) == 200
    for label in ("Pricing", "Docs", "Blog"):
        assert fetch(mail["carol"].links[label], "20.42.1.1", CHROME) == 302
    await settled(w, first, lambda r: r["clicks_unique"] == 3 and r["bot_clicks"] == 3)

    list_id = w.api.get(f"/api/v1/campaigns/{first}").json()["list_id"]
    body = {"name": "Follow-up", "subject": "More", "html": FOLLOW_UP, "list_id": list_id}
    follow_up = w.api.post("/api/v1/campaigns", json=body)
    assert follow_up.status_code == 201, follow_up.text
    box.received.clear()
    assert w.api.post(f"/api/v1/campaigns/{follow_up.json()['id']}/send").status_code == 202
    await delivered(box, READERS)
    second = {name: _html(box, name) for name in READERS}

    assert {n for n, html in second.items() if BLOCK in html} == {"alice", "bob"}
    # "Not opened for 7 days": no person opened in the last week. Alice opened, Bob and
    # Dave through their clicks; the scanner's open of Carol's copy is no person's.
    missed = {n for n, html in second.items() if "We have missed you." in html}
    assert missed == {"carol", "frank"}
    # The preview answers the same per lead.
    preview = w.api.post(
        f"/api/v1/campaigns/{follow_up.json()['id']}/preview", json={"lead_id": leads["carol"]}
    )
    assert preview.status_code == 200 and BLOCK not in preview.json()["html"]


def _html(box: Mailbox, name: str) -> str:
    mail = box.to(f"{name}@example.com")[0]
    part = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    return str(part.get_payload(decode=True).decode())


BAD = '<p>{% if clikced("pricing") %}x{% endif %}</p>'


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_unknown_condition_is_refused_when_saved(world: Stage) -> None:
    w, _ = world
    lead = await w.lead("ann@example.com")
    lst = w.api.post("/api/v1/lists", json={"name": "L"}).json()
    campaign = {"name": "C", "subject": "S", "html": BAD, "list_id": lst["id"]}
    _refused(w.api.post("/api/v1/campaigns", json=campaign), "html")

    good = w.api.post("/api/v1/campaigns", json=campaign | {"html": "<p>ok</p>"})
    assert good.status_code == 201, good.text
    patched = w.api.patch(
        f"/api/v1/campaigns/{good.json()['id']}", json={"subject": '{{ "x" if clikced("a") }}'}
    )
    _refused(patched, "subject")

    message = {"lead_id": lead, "subject": "S", "html": BAD, "send": False}
    _refused(w.api.post("/api/v1/messages", json=message), "html")

    rule = {
        "name": "r",
        "trigger": {"type": "clicked"},
        "actions": [{"type": "send_email", "subject": "S", "html": BAD}],
    }
    answer = w.api.post("/api/v1/rules", json=rule)
    assert answer.status_code == 422, answer.text
    assert 'unknown condition "clikced"' in answer.json()["error"]["message"]
    # A condition without its value would always be true: refused, saying how to write it.
    answer = w.api.post(
        "/api/v1/campaigns", json=campaign | {"html": "{% if clicked %}x{% endif %}"}
    )
    assert answer.status_code == 422
    assert 'write it as clicked("pricing")' in answer.json()["error"]["message"]


def _refused(answer: Any, field: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("unknown_condition", field)
    assert 'unknown condition "clikced"' in error["message"]
    assert 'clicked("pricing")' in error["message"]  # and what is known
