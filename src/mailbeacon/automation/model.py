"""The shape of a rule, as CONTRACT.md fixes it, validated with pydantic.

The API validates request bodies with these models, so a bad rule is refused with a 422
naming the field (``trigger.within_seconds``, ``actions.0.url``); the pipeline reads rules
back through the same models, so it only ever sees rules that passed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from mailbeacon.compose.merge import template_conditions

TriggerType = Literal["opened", "clicked", "forwarded", "unsubscribed", "not_opened"]
YEAR = 366 * 86400
# What GET answers instead of a webhook secret; sent back unchanged, it keeps the secret.
SECRET_MASK = "********"
# Ids are 64-bit in the database and a bigger one would fail in the driver; the bound is
# the largest integer JSON clients hold exactly, which the OpenAPI document (floats) can
# state exactly too.
MAX_ID = 2**53 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Trigger(_Strict):
    type: TriggerType
    campaign_id: int | None = Field(None, ge=1, le=MAX_ID)
    url_contains: str | None = Field(None, min_length=1, max_length=2000)
    min_opens: int | None = Field(None, ge=1, le=10_000)
    within_seconds: int | None = Field(None, ge=1, le=YEAR, validate_default=True)
    # not_opened only: "exclude" leaves out leads whose only signs are Apple's privacy
    # prefetches (they may well have read it); absent means "include", today's behaviour.
    privacy_protected: Literal["include", "exclude"] | None = None

    @field_validator("url_contains")
    @classmethod
    def _only_clicked(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _only_for(v, info, "clicked", "url_contains")

    @field_validator("min_opens")
    @classmethod
    def _only_opened(cls, v: int | None, info: ValidationInfo) -> int | None:
        return _only_for(v, info, "opened", "min_opens")

    @field_validator("within_seconds")
    @classmethod
    def _deadline(cls, v: int | None, info: ValidationInfo) -> int | None:
        if info.data.get("type") == "not_opened" and v is None:
            raise ValueError("a not_opened trigger needs within_seconds (e.g. 259200: 3 days)")
        return _only_for(v, info, "not_opened", "within_seconds")

    @field_validator("privacy_protected")
    @classmethod
    def _only_not_opened(cls, v: str | None, info: ValidationInfo) -> str | None:
        return _only_for(v, info, "not_opened", "privacy_protected")


def _only_for(value: Any, info: ValidationInfo, trigger: str, name: str) -> Any:
    if value is not None and info.data.get("type") != trigger:
        raise ValueError(f"{name} applies to {trigger} triggers only")
    return value


class _Action(_Strict):
    # Any action may wait; CONTRACT names it for send_email, where it matters most.
    delay_seconds: int = Field(0, ge=0, le=YEAR)


class AddScore(_Action):
    type: Literal["add_score"]
    points: int = Field(ge=-1_000_000, le=1_000_000)


class AddToList(_Action):
    type: Literal["add_to_list"]
    list_id: int = Field(ge=1, le=MAX_ID)


class RemoveFromList(_Action):
    type: Literal["remove_from_list"]
    list_id: int = Field(ge=1, le=MAX_ID)


class SendEmail(_Action):
    type: Literal["send_email"]
    subject: str = Field(min_length=1, max_length=998)
    html: str = Field(min_length=1, max_length=1_000_000)
    text: str | None = Field(None, max_length=1_000_000)

    @field_validator("subject", "html", "text")
    @classmethod
    def _known_conditions(cls, v: str | None) -> str | None:
        # A block by engagement naming an unknown condition is refused when the rule is
        # saved, not when it fires (`compose.blocks`).
        template_conditions([v])
        return v


class Webhook(_Action):
    type: Literal["webhook"]
    # Documented as what it must be: an absolute http(s) URL (the validator decides).
    url: str = Field(
        min_length=1,
        max_length=2000,
        json_schema_extra={"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]"},
    )
    secret: str = Field(min_length=8, max_length=200)

    @field_validator("url")
    @classmethod
    def _http_only(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http:// or https:// URL")
        return v


class NotifyOwner(_Action):
    type: Literal["notify_owner"]
    note: str | None = Field(None, max_length=2000)  # added to the owner's email


class AssignOwner(_Action):
    """Route the lead to a salesperson (e.g. whoever covers pricing-page clickers)."""

    type: Literal["assign_owner"]
    user_id: int = Field(ge=1, le=MAX_ID)


Action = Annotated[
    AddScore | AddToList | RemoveFromList | SendEmail | Webhook | NotifyOwner | AssignOwner,
    Field(discriminator="type"),
]
# Actions that only change our own tables run inside the transaction that marks their
# job done: exactly once, with nothing outside the database to go wrong.
LOCAL_ACTIONS = frozenset({"add_score", "add_to_list", "remove_from_list", "assign_owner"})


class RuleIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    repeat: bool = False
    trigger: Trigger
    actions: list[Action] = Field(min_length=1, max_length=20)


class RulePatch(_Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    enabled: bool | None = None
    repeat: bool | None = None
    trigger: Trigger | None = None
    actions: list[Action] | None = Field(None, min_length=1, max_length=20)


def dump_actions(actions: list[Any]) -> list[dict[str, Any]]:
    return [a.model_dump(exclude_none=True) for a in actions]
