"""POST /api/v1/webhooks refuses what it can tell at once: URLs inside our network (any
spelling), unknown event types and verdicts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
def api(live_api: tuple[str, str]) -> Any:
    url, key = live_api
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "http://2130706433/hook", "http://169.254.169.254/latest/",
     "http://[::ffff:10.0.0.1]/", "http://10.1.2.3/hook"],
)  # fmt: skip
def test_a_private_address_is_refused_at_once(api: httpx.Client, url: str) -> None:
    answer = api.post("/api/v1/webhooks", json={"url": url, "secret": "x" * 8, "events": ["open"]})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "url" and "non-public address" in error["message"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"events": ["opened"]}, "events"),
        ({"events": []}, "events"),
        ({"verdicts": ["person"]}, "verdicts"),
        ({"url": "ftp://hooks.example.com/"}, "url"),
        ({"secret": "short"}, "secret"),
    ],
)
def test_a_bad_field_is_named(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    full = {"url": "https://hooks.example.com/in", "secret": "x" * 8, "events": ["open"], **body}
    answer = api.post("/api/v1/webhooks", json=full)
    assert answer.status_code == 422
    assert field in (answer.json()["error"].get("field") or answer.json()["error"]["message"])


def test_a_public_receiver_is_subscribed_with_the_human_verdicts(api: httpx.Client) -> None:
    body = {"url": "https://hooks.example.com/in", "secret": "x" * 8, "events": ["click", "click"]}
    answer = api.post("/api/v1/webhooks", json=body)
    assert answer.status_code == 201
    hook = answer.json()
    assert (hook["events"], hook["verdicts"], hook["secret"]) == (
        ["click"], ["human", "proxy"], "********"
    )  # fmt: skip
    assert hook in api.get("/api/v1/webhooks").json()
    assert api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json() == []
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
