"""Lanes: the event webhook sender's HTTP connections, split by lead.

A lead always travels in the same lane (`lead_id % lanes`), so its deliveries reuse the
lane's warm keep-alive connections; the sender still waits for each before the next
(in order). Each lane is an `event_http.Lane`: no redirects, no proxies from the
environment, and the SSRF guard at every connect unless private receivers are allowed.
(The first sender used one httpx pool of 200 connections, which scanned and polled
every connection for every request: two thirds of the stage's time at 80 events/s.)
"""

from __future__ import annotations

from types import TracebackType

import httpx

from mailbeacon.automation.event_http import Lane


class Lanes:
    def __init__(self, lanes: int, timeout: float, allow_private: bool) -> None:
        tls = httpx.create_ssl_context()  # certifi's roots, as httpx verifies
        self.lanes = [Lane(timeout, allow_private, tls) for _ in range(max(1, lanes))]

    def of(self, lead_id: int) -> Lane:
        """The lead's lane."""
        return self.lanes[lead_id % len(self.lanes)]

    async def __aenter__(self) -> Lanes:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        for lane in self.lanes:
            lane.close()
