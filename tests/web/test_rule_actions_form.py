"""The rule form's action fields: each type its own fields, built into the API's shape;
an error inside an action is shown next to its field."""

from __future__ import annotations

import html
import re

import httpx
from dashboard_helpers import Site, login

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def test_actions_from_fields(client: httpx.AsyncClient, site: Site) -> None:
    await login(client, site.email("marketing_manager"), site.password)
    page = await client.get("/rules/new")
    assert page.status_code == 200
    assert 'for="action0_points">Points</label>' in page.text
    assert "JSON" not in page.text
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    base = {"csrf": token, "name": "Warm", "trigger_type": "opened"}
    refused = await client.post(
        "/rules/new",
        data={
            **base,
            "action0_type": "webhook",
            "action0_url": "https://hooks.example/x",
            "action0_secret": "short",
        },
    )
    assert refused.status_code == 200
    assert 'id="action0_secret-error"' in refused.text
    assert 'aria-describedby="action0_secret-error"' in refused.text
    made = await client.post(
        "/rules/new",
        data={
            **base,
            "action0_type": "add_score",
            "action0_points": "7",
            "action0_subject": "ignored: not an add_score field",
            "action1_type": "send_email",
            "action1_subject": "Hi {{first_name}}",
            "action1_html": "<p>Hi</p>",
            "action1_delay_seconds": "3600",
            "action2_type": "notify_owner",
        },
    )
    assert made.status_code == 303, made.text
    rule = html.unescape((await client.get(made.headers["location"])).text)
    assert '"points": 7' in rule and '"delay_seconds": 3600' in rule
    assert "ignored: not an add_score field" not in rule
    assert '"type": "notify_owner"' in rule and "<h1>Warm" in rule
