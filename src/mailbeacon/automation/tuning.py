"""Knobs of the automation stage, with defaults that suit a production server.

`Settings` may carry any of them as `automation_<name>` (tests shorten the webhook
backoff that way); anything it does not carry keeps the default here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from mailbeacon.settings import Settings


@dataclass(frozen=True)
class Tuning:
    batch: int = 2000  # events per consumer transaction
    idle_poll: float = 0.05  # seconds between looks for new events/jobs when idle
    lease_ttl: float = 10.0  # a stopped process's lease lapses after this
    job_batch: int = 500  # local jobs per transaction
    # Emails/webhooks in flight per process; each holds a pooled connection at times.
    remote_concurrency: int = 8
    lock_seconds: float = 120.0  # a remote job's claim; a dead runner's job is retaken after
    webhook_attempts: int = 5
    webhook_backoff: float = 2.0  # seconds before the 2nd attempt; doubles each time
    webhook_timeout: float = 10.0
    deadline_every: float = 1.0  # seconds between not_opened scans
    deadline_grace: float = 5.0  # wait this long past a deadline for late-written opens

    @classmethod
    def from_settings(cls, settings: Settings) -> Tuning:
        found = {
            f.name: getattr(settings, f"automation_{f.name}")
            for f in fields(cls)
            if hasattr(settings, f"automation_{f.name}")
        }
        return replace(cls(), **found)
