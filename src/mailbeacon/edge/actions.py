"""What the edge asks the rest of the product to do, as a Protocol the app wires in.

The edge imports only `tokens` and `recorder` (DESIGN.md), so unsubscribing a lead and
sending a friend their own copy are handed to an `Actions` object built in
`mailbeacon.app`, where crm, compose and delivery may be imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailbeacon.tokens import Token


class ActionUnavailable(Exception):
    """The action could not run now (database down, no mail transport): the reader sees
    a "try again" page with status 503."""


@dataclass(frozen=True, slots=True)
class Friend:
    """A forward-to-a-friend request, already validated (email normalised)."""

    email: str
    name: str
    note: str
    ip: str | None  # the forwarding reader's address


class Actions(Protocol):
    async def unsubscribe(self, token: Token) -> None:
        """Mark `token.lead_id` (of `token.company_id`) unsubscribed. Idempotent.
        The edge records the `unsubscribe` hit itself after this returns."""
        ...

    async def forward(self, token: Token, friend: Friend) -> None:
        """Create the friend as a lead of `token.company_id` with `referred_by` the
        reader, and send them their own tracked copy of `token.message_id`.
        The edge records the `forward` hit itself after this returns."""
        ...

    async def forwards_since(self, token: Token, seconds: float) -> int:
        """How many forwards of this email by this reader (`token`'s message and lead)
        were recorded in the last `seconds`, in any process: the hourly limit holds
        across workers and restarts."""
        ...
