"""When an event webhook delivery is tried again, and when it is given up.

Exponential backoff with jitter: the n-th retry waits `base * 2^(n-1)` seconds, capped,
times a random factor in [1 - jitter, 1]. The jitter spreads a company's thousands of
queued deliveries once its receiver comes back, instead of all of them knocking at the
same second; the lower bound keeps the schedule predictable (a test can state it).
A delivery is tried for `give_up_after` seconds from when it was queued (a day by
default), then marked failed and the lead's next event goes on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Backoff:
    base: float = 10.0  # seconds before the first retry
    cap: float = 600.0  # never wait longer than this between attempts
    jitter: float = 0.5  # up to this share of the wait is taken off at random
    give_up_after: float = 86_400.0  # seconds since queued: then the delivery fails

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after `attempts` failed attempts (1 for the first failure)."""
        wait = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        return wait * (1.0 - self.jitter * rand())

    def gives_up(self, age_seconds: float, next_delay: float) -> bool:
        """Whether a delivery this old would be past its window at its next attempt."""
        return age_seconds + next_delay > self.give_up_after

    def schedule(self, rand: Callable[[], float] = random.random) -> list[float]:
        """Every wait a delivery that always fails goes through (for docs and tests)."""
        waits: list[float] = []
        age, attempts = 0.0, 1
        while not self.gives_up(age, wait := self.delay(attempts, rand)):
            waits.append(wait)
            age += wait
            attempts += 1
        return waits


@dataclass(frozen=True)
class EventWebhookTuning:
    """Knobs of the event webhook stage; `Settings` may carry any as
    `event_webhooks_<name>` (the tests shorten the backoff that way)."""

    batch: int = 2000  # events read per fan-out transaction
    idle_poll: float = 0.05  # seconds between looks for new events/deliveries when idle
    lease_ttl: float = 10.0
    concurrency: int = 256  # leads whose POSTs are in flight at once (across receivers)
    chain: int = 50  # a lead's deliveries sent one after another before recording them
    chain_seconds: float = 1.0  # nor for longer than this (outcomes wait for the chain)
    max_connections: int = 200  # unused: at most `concurrency` connections are busy
    lanes: int = 32  # sets of keep-alive connections a lead is hashed to
    timeout: float = 10.0  # one POST
    flush_every: float = 0.02  # seconds: finished POSTs are recorded together
    backoff_base: float = 10.0
    backoff_cap: float = 600.0
    backoff_jitter: float = 0.5
    give_up_after: float = 86_400.0

    @classmethod
    def from_settings(cls, settings: Any) -> EventWebhookTuning:
        found = {
            f.name: getattr(settings, f"event_webhooks_{f.name}")
            for f in fields(cls)
            if hasattr(settings, f"event_webhooks_{f.name}")
        }
        return replace(cls(), **found)

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.backoff_base, self.backoff_cap, self.backoff_jitter, self.give_up_after)
