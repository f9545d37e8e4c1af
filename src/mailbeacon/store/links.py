"""The links a sent message carried, looked up by (message, link index) for the click edge.

A click may only ever redirect to a row of `message_links`; this is the one reader of
that table on the hot path. Rows never change once a message is sent, so an LRU in front
of the database makes a repeat click cost no query at all. They can only go: erasing a
lead deletes a link whose URL carried their address (`crm.erase`), so an entry is
trusted for `ttl` seconds, and the link stops answering in every process within that.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import select

from mailbeacon.store.db import Database
from mailbeacon.store.schema import message_links


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    kind: str  # link|unsubscribe|honeypot|forward


class LinkResolver:
    """`await resolver(company_id, message_id, link_index)` -> the stored link or None."""

    def __init__(self, db: Database, *, maxsize: int = 65536, ttl: float = 300.0) -> None:
        self.db = db
        self.maxsize = maxsize
        self.ttl = ttl
        self._cache: OrderedDict[tuple[int, int, int], tuple[Link, float]] = OrderedDict()

    async def __call__(self, company_id: int, message_id: int, link_index: int) -> Link | None:
        link = self.peek(company_id, message_id, link_index)
        if link is not None:
            return link
        key = (company_id, message_id, link_index)
        link = await self._load(company_id, message_id, link_index)
        # Misses are not cached: they need a valid signature, so nobody can flood them, and
        # a row written after a first miss must still be found.
        if link is not None:
            self._cache[key] = (link, time.monotonic() + self.ttl)
            if len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return link

    def peek(self, company_id: int, message_id: int, link_index: int) -> Link | None:
        """The link if it is cached, else None (the caller then awaits the full lookup)."""
        key = (company_id, message_id, link_index)
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry[1] < time.monotonic():  # stale: read again, it may have been erased
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry[0]

    async def _load(self, company_id: int, message_id: int, link_index: int) -> Link | None:
        query = select(message_links.c.url, message_links.c.kind).where(
            message_links.c.message_id == message_id,
            message_links.c.link_index == link_index,
            message_links.c.company_id == company_id,
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else Link(url=row.url, kind=row.kind)
