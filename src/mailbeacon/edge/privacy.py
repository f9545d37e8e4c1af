"""Which companies anonymise readers' addresses at capture, as the edge knows it.

The edge reads no database per hit, so it holds the set of such companies in memory
and `keep_fresh` re-reads it every `privacy_refresh_seconds` (5 s by default) with a
loader the app passes in. A company that turns anonymising on is honoured by every
edge within that delay; the hits captured in between keep the full address in `hits`
(enrichment still cuts it on the event). The set is loaded once before the edge
answers its first hit, and a failed refresh keeps the last set known.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("mailbeacon.edge")

Loader = Callable[[], Awaitable[frozenset[int]]]


class Anonymizing:
    """The companies whose readers' addresses are cut before a hit is written.
    `everyone` is the server-wide MAILBEACON_ANONYMIZE_IP."""

    def __init__(self, everyone: bool = False, companies: frozenset[int] = frozenset()) -> None:
        self.everyone = everyone
        self.companies = companies

    def __call__(self, company_id: int) -> bool:
        return self.everyone or company_id in self.companies

    async def refresh(self, load: Loader) -> None:
        self.companies = await load()

    async def keep_fresh(self, load: Loader, every: float, stop: asyncio.Event) -> None:
        """Re-read the set every `every` seconds until `stop` is set."""
        failing = False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
            if stop.is_set():
                return
            try:
                await self.refresh(load)
            except Exception:  # a database hiccup: keep the last set, try again later
                if not failing:  # once per outage, not every few seconds
                    log.warning("could not refresh the anonymising companies; keeping the last set")
                failing = True
            else:
                if failing:
                    log.info("anonymising companies refreshed again")
                failing = False
