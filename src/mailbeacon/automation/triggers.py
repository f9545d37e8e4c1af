"""Which events fire which rules: pure functions, no database, table-tested.

An event counts as engagement when a person is behind it: a `human` or `proxy` verdict
(Gmail's proxy fetches when the reader opens), or an open inferred from a human click.
Apple's privacy prefetch, security scanners and bots fire nothing. Engagement by
someone the email was forwarded to is not the lead's own: it fires `forwarded` only.

An unsubscribe is authorised by its signed token, so it is the lead's whoever carried
it: it fires `unsubscribed` whatever its verdict (enrich judges it `human`; events
judged before that rule still count, as they do in reports). RFC 8058 one-click POSTs
come from the mailbox provider's servers, often with no user agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENGAGED_VERDICTS = frozenset({"human", "proxy"})
MACHINE_VERDICTS = frozenset({"prefetch", "scanner", "bot"})
_KIND_OF_TYPE = {"open": "opened", "click": "clicked", "unsubscribe": "unsubscribed"}


@dataclass(frozen=True, slots=True)
class Event:
    """What matching needs of an `events` row."""

    id: int
    type: str
    company_id: int
    lead_id: int
    message_id: int
    campaign_id: int | None
    verdict: str
    inferred: bool = False
    forwarded: bool = False
    url: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Event:
        return cls(
            id=row["id"],
            type=row["type"],
            company_id=row["company_id"],
            lead_id=row["lead_id"],
            message_id=row["message_id"],
            campaign_id=row["campaign_id"],
            verdict=row["verdict"],
            inferred=bool(row["inferred"]),
            forwarded=bool(row["forwarded"]),
            url=row["url"],
        )


@dataclass(frozen=True, slots=True)
class CompiledTrigger:
    """A rule's trigger, flattened for the hot loop."""

    type: str
    campaign_id: int | None = None
    url_contains: str | None = None
    min_opens: int = 1
    within_seconds: int | None = None
    privacy_protected: str = "include"  # not_opened: "exclude" skips prefetch-only leads

    @classmethod
    def of(cls, trigger: Mapping[str, Any]) -> CompiledTrigger:
        return cls(
            type=trigger["type"],
            campaign_id=trigger.get("campaign_id"),
            url_contains=(trigger.get("url_contains") or None),
            min_opens=trigger.get("min_opens") or 1,
            within_seconds=trigger.get("within_seconds"),
            privacy_protected=trigger.get("privacy_protected") or "include",
        )


def is_engagement(ev: Event) -> bool:
    """A person, not a machine: human or proxy, or an open inferred from a human click."""
    if ev.verdict in MACHINE_VERDICTS:
        return False
    return ev.verdict in ENGAGED_VERDICTS or ev.inferred


def trigger_kind(ev: Event) -> str | None:
    """The one trigger type this event can fire, or None if it fires nothing."""
    if ev.type == "unsubscribe":
        return "unsubscribed"
    if not is_engagement(ev):
        return None
    if ev.type == "forward" or ev.forwarded:
        return "forwarded"
    return _KIND_OF_TYPE.get(ev.type)


def matches(trigger: CompiledTrigger, ev: Event) -> bool:
    """Does this event fire this trigger (before counting opens for `min_opens`)?"""
    return trigger_kind(ev) == trigger.type and fits(trigger, ev)


def fits(trigger: CompiledTrigger, ev: Event) -> bool:
    """The trigger's filters (campaign, URL) for an event already of its kind."""
    if trigger.campaign_id is not None and ev.campaign_id != trigger.campaign_id:
        return False
    if trigger.url_contains is not None:
        return ev.url is not None and trigger.url_contains.lower() in ev.url.lower()
    return True


def run_key(repeat: bool, trigger_key: str) -> str:
    """The idempotency key of a firing: once per lead, or once per trigger when repeating."""
    return trigger_key if repeat else "once"
