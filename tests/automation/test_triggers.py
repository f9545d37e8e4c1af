"""Which events fire which triggers: the pure matching, table by table."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mailbeacon.automation.model import RuleIn
from mailbeacon.automation.triggers import CompiledTrigger, Event, matches, run_key, trigger_kind


def ev(type_: str = "open", verdict: str = "human", **kw: object) -> Event:
    base: dict[str, object] = {
        "id": 1,
        "type": type_,
        "company_id": 1,
        "lead_id": 7,
        "message_id": 3,
        "campaign_id": 5,
        "verdict": verdict,
    }
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (ev("open", "human"), "opened"),
        (ev("open", "proxy"), "opened"),  # Gmail's proxy fetches when the reader opens
        (ev("open", "prefetch"), None),  # Apple Mail Privacy Protection
        (ev("open", "scanner"), None),
        (ev("open", "bot"), None),
        (ev("open", "human", inferred=True), "opened"),
        (ev("open", "bot", inferred=True), None),
        (ev("click", "human"), "clicked"),
        (ev("click", "scanner"), None),  # link checkers click everything
        (ev("unsubscribe", "human"), "unsubscribed"),
        # authorised by its token: the lead's, whoever carried it (RFC 8058 one-click)
        (ev("unsubscribe", "bot"), "unsubscribed"),
        (ev("unsubscribe", "scanner"), "unsubscribed"),
        (ev("forward", "human"), "forwarded"),
        (ev("open", "human", forwarded=True), "forwarded"),  # a forward's reader
        (ev("click", "proxy", forwarded=True), "forwarded"),
        (ev("open", "prefetch", forwarded=True), None),
    ],
)
def test_trigger_kind(event: Event, kind: str | None) -> None:
    assert trigger_kind(event) == kind


@pytest.mark.parametrize(
    ("trigger", "event", "fires"),
    [
        ({"type": "opened"}, ev(), True),
        ({"type": "opened", "campaign_id": 5}, ev(), True),
        ({"type": "opened", "campaign_id": 6}, ev(), False),
        ({"type": "opened"}, ev(campaign_id=None), True),
        ({"type": "opened", "campaign_id": 5}, ev(campaign_id=None), False),
        ({"type": "opened"}, ev("click"), False),
        ({"type": "opened"}, ev(forwarded=True), False),  # forwarded fires only forwarded
        ({"type": "clicked"}, ev("click", url="https://a.test/x"), True),
        (
            {"type": "clicked", "url_contains": "pricing"},
            ev("click", url="https://a.test/Pricing"),
            True,
        ),
        (
            {"type": "clicked", "url_contains": "pricing"},
            ev("click", url="https://a.test/blog"),
            False,
        ),
        ({"type": "clicked", "url_contains": "pricing"}, ev("click", url=None), False),
        ({"type": "clicked"}, ev("click", "bot", url="https://a.test/x"), False),
        ({"type": "forwarded"}, ev("forward"), True),
        ({"type": "forwarded"}, ev("open", forwarded=True), True),
        ({"type": "forwarded", "campaign_id": 6}, ev("forward"), False),
        ({"type": "unsubscribed"}, ev("unsubscribe"), True),
        ({"type": "unsubscribed"}, ev("unsubscribe", "scanner"), True),
        ({"type": "unsubscribed", "campaign_id": 6}, ev("unsubscribe", "bot"), False),
        ({"type": "not_opened", "within_seconds": 60}, ev(), False),  # deadlines, not events
    ],
)
def test_matches(trigger: dict[str, object], event: Event, fires: bool) -> None:
    assert matches(CompiledTrigger.of(trigger), event) is fires


def test_a_rule_fires_once_per_lead_unless_it_repeats() -> None:
    assert run_key(False, "event:1") == run_key(False, "event:2") == "once"
    assert run_key(True, "event:1") != run_key(True, "event:2")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trigger": {"type": "opened", "url_contains": "x"}}, "url_contains"),
        ({"trigger": {"type": "clicked", "min_opens": 2}}, "min_opens"),
        ({"trigger": {"type": "not_opened"}}, "within_seconds"),
        ({"trigger": {"type": "opened", "within_seconds": 5}}, "within_seconds"),
        ({"trigger": {"type": "replied"}}, "type"),
        ({"actions": [{"type": "webhook", "url": "ftp://x.test/", "secret": "12345678"}]}, "url"),
        (
            {"actions": [{"type": "webhook", "url": "file:///etc/passwd", "secret": "12345678"}]},
            "url",
        ),
        ({"actions": [{"type": "add_score"}]}, "points"),
        ({"actions": [{"type": "launch_rocket"}]}, "actions"),
        ({"actions": []}, "actions"),
        (
            {"actions": [{"type": "send_email", "subject": "s", "html": "h", "delay_seconds": -1}]},
            "delay_seconds",
        ),
    ],
)
def test_bad_rules_name_the_field(body: dict[str, object], field: str) -> None:
    rule = {
        "name": "r",
        "trigger": {"type": "opened"},
        "actions": [{"type": "add_score", "points": 1}],
    }
    rule.update(body)
    with pytest.raises(ValidationError) as info:
        RuleIn.model_validate(rule)
    assert field in str(info.value.errors()[0]["loc"])
