"""/api/openapi.json, read by a client generator: the statuses each route answers, the
error body, the key, and the value constraints the API enforces."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


@pytest.fixture(scope="module")
def document(live_api: tuple[str, str]) -> dict[str, Any]:
    answer = httpx.get(f"{live_api[0]}/api/openapi.json", timeout=10)
    assert answer.status_code == 200
    return answer.json()  # type: ignore[no-any-return]


def _statuses(document: dict[str, Any], method: str, path: str) -> list[str]:
    return sorted(document["paths"][path][method]["responses"])


def test_every_route_names_the_errors_it_answers(document: dict[str, Any]) -> None:
    assert _statuses(document, "post", "/api/v1/leads") == [
        "201", "400", "401", "403", "404", "409", "413", "422",
    ]  # fmt: skip
    assert _statuses(document, "get", "/api/v1/leads/{lead_id}") == [
        "200", "401", "403", "404", "413", "422",
    ]  # fmt: skip
    assert _statuses(document, "get", "/api/v1/campaigns") == ["200", "401", "403", "413"]
    assert _statuses(document, "post", "/api/v1/campaigns/{campaign_id}/send") == [
        "202", "401", "403", "404", "409", "413", "422",
    ]  # fmt: skip
    assert _statuses(document, "post", "/api/v1/messages") == [
        "201", "400", "401", "403", "404", "409", "413", "422",
    ]  # fmt: skip
    assert _statuses(document, "delete", "/api/v1/rules/{rule_id}") == [
        "204", "401", "403", "404", "413", "422",
    ]  # fmt: skip
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    assert response["content"] == ERROR, (method, path, status)
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)


def test_the_error_body_and_the_key_are_described(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"]["required"] == ["error"]
    assert schemas["ErrorDetail"]["required"] == ["code", "message"]
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 shape is not ours
    scheme = document["components"]["securitySchemes"]["HTTPBearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_value_constraints_are_stated(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    campaign = schemas["CampaignIn"]["properties"]
    assert campaign["pixel_placement"]["enum"] == ["header", "body", "footer"]
    assert campaign["pixel_format"]["enum"] == ["gif", "png"]
    assert campaign["utm"]["anyOf"][0]["propertyNames"]["enum"] == [
        "source", "medium", "campaign", "content", "term",
    ]  # fmt: skip
    assert (campaign["list_id"]["minimum"], campaign["list_id"]["maximum"]) == (1, 2**53 - 1)
    url = schemas["Webhook"]["properties"]["url"]
    assert (url["format"], url["pattern"]) == ("uri", "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]")
    assert schemas["LeadIn"]["properties"]["email"]["format"] == "email"
    (lead_id,) = document["paths"]["/api/v1/leads/{lead_id}"]["get"]["parameters"]
    assert (lead_id["schema"]["minimum"], lead_id["schema"]["maximum"]) == (1, 2**53 - 1)


def test_a_campaign_outside_the_stated_choices_is_refused(live_api: tuple[str, str]) -> None:
    base, key = live_api
    body = {"name": "n", "subject": "s", "html": "<p>x</p>", "list_id": 1}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
        for field, value in [("pixel_placement", "sidebar"), ("pixel_format", "jpeg")]:
            answer = api.post("/api/v1/campaigns", json={**body, field: value})
            assert answer.status_code == 422
            assert answer.json()["error"]["field"] == field
        answer = api.post("/api/v1/campaigns", json={**body, "list_id": 2**63})
        assert (answer.status_code, answer.json()["error"]["field"]) == (422, "list_id")
        created = api.post("/api/v1/campaigns", json={**body, "pixel_placement": "footer"})
        assert created.status_code == 201 and created.json()["pixel_placement"] == "footer"
