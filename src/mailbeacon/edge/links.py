"""The click edge's view of a message's stored links (implemented by `store.links`)."""

from __future__ import annotations

from typing import Protocol


class Link(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def kind(self) -> str: ...  # link|unsubscribe|honeypot|forward


class LinkSource(Protocol):
    async def __call__(self, company_id: int, message_id: int, link_index: int) -> Link | None:
        """The link `link_index` of the message as it was sent, or None."""
        ...

    def peek(self, company_id: int, message_id: int, link_index: int) -> Link | None:
        """The link if it is at hand without I/O, else None (then await the call)."""
        ...
