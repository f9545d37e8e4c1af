"""The scoring model through the real server (issue 16): a company turns it on, its
readers open and click a real campaign through the edge, enrich judges them, and each
lead's score is the model's points plus its rules'; the lead index sorts by it.
A scanner that opened and clicked everything scores nothing."""

from __future__ import annotations

import httpx
import pytest
from automation_harness import Mailbox, Server, World, eventually
from test_campaign_verdicts import CHROME, EDGE, OUTLOOK, delivered, fetch, send_campaign, settled

Stage = tuple[World, Server]
READERS = ("alice", "bob", "carol")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_scores_follow_the_model_and_the_index_sorts_by_them(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    assert w.api.get("/api/v1/scoring").json()["enabled"] is False  # off until turned on
    model = {"enabled": True, "open_points": 2, "click_points": 5, "half_life_days": 30}
    changed = w.api.patch("/api/v1/scoring", json=model)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**model, "forward_points": 10, "unsubscribe_points": -20}
    assert w.api.get("/api/v1/scoring").json() == changed.json()
    bad = w.api.patch("/api/v1/scoring", json={"half_life_days": -1})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "half_life_days"
    with httpx.Client(
        base_url=w.api.base_url, headers={"Authorization": f"Bearer {w.sales_key}"}
    ) as sales:
        assert sales.get("/api/v1/scoring").status_code == 403
        assert sales.patch("/api/v1/scoring", json={"open_points": 100}).status_code == 403

    campaign_id, leads = await send_campaign(w, READERS)
    w.rule(
        trigger={"type": "clicked", "url_contains": "pricing"},
        actions=[{"type": "add_score", "points": 10}],
    )
    assert w.api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    mail = await delivered(smtp[0], READERS)
    # Alice opens twice (the first open of a message scores) and clicks two links.
    assert fetch(mail["alice"].pixel, "81.2.69.160", OUTLOOK) == 200
    assert fetch(mail["alice"].pixel, "81.2.69.160", OUTLOOK) == 200
    assert fetch(mail["alice"].links["Pricing"], "81.2.69.161", CHROME) == 302
    assert fetch(mail["alice"].links["Docs"], "81.2.69.161", CHROME) == 302
    # Bob clicks pricing with images off: his open is inferred from the click.
    assert fetch(mail["bob"].links["Pricing"], "86.150.2.2", EDGE) == 302
    # A cloud scanner opens Carol's copy and follows every link.
    assert fetch(mail["carol"].pixel, "20.42.1.1", CHROME) == 200
    for label in ("Pricing", "Docs", "Blog"):
        assert fetch(mail["carol"].links[label], "20.42.1.1", CHROME) == 302
    await settled(w, campaign_id, lambda r: r["clicks_total"] == 3 and r["bot_clicks"] == 3)

    expected = {"alice": 2 + 5 + 5 + 10, "bob": 2 + 5 + 10, "carol": 0}
    await eventually(
        lambda: {n: w.score(lead) for n, lead in leads.items()} == expected,
        timeout=20,
        what=f"scores {expected}",
    )
    index = w.api.get("/api/v1/leads", params={"sort": "-score"}).json()
    order = [lead["id"] for lead in index if lead["id"] in leads.values()]
    assert order == [leads["alice"], leads["bob"], leads["carol"]]
    assert [lead["score"] for lead in index][:2] == [22, 17]
