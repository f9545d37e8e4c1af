"""Lanes: the event webhook sender's HTTP clients, one small pool per lane.

httpcore's connection pool scans every connection (and polls each socket) for every
request it assigns, so one pool of 200 connections spends most of its time choosing one:
the profile of the first sender showed two thirds of the stage there, at 80 events/s.
Split into lanes of a few connections each, that scan is short again. A lead always
travels in the same lane (`lead_id % lanes`), so its deliveries reuse one warm
keep-alive connection; the sender still waits for each before the next (in order).
Each lane is an ordinary `httpx.AsyncClient` (no redirects, no proxies from the
environment, and the SSRF guard at every connect unless private receivers are allowed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import TracebackType

import httpx

Transport = Callable[[httpx.Limits], httpx.AsyncBaseTransport]  # a lane's, from its limits


class Lanes:
    def __init__(
        self, lanes: int, max_connections: int, transport: Transport, timeout: float
    ) -> None:
        per_lane = max(1, math.ceil(max_connections / max(1, lanes)))
        limits = httpx.Limits(max_connections=per_lane, max_keepalive_connections=per_lane)
        self.clients = [
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False,
                              transport=transport(limits))
            for _ in range(max(1, lanes))
        ]  # fmt: skip

    def of(self, lead_id: int) -> httpx.AsyncClient:
        """The lead's lane."""
        return self.clients[lead_id % len(self.clients)]

    async def __aenter__(self) -> Lanes:
        for c in self.clients:
            await c.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        for c in self.clients:
            await c.aclose()
