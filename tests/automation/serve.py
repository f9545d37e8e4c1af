"""Run the real app for the automation tests: `python serve.py DB_URL PORT SMTP_URL`.

A separate process so a test can kill -9 it. The settings shorten the automation
stage's waits (webhook backoff, lease, deadline grace) so the stories run in seconds.
"""

from __future__ import annotations

import ctypes
import ipaddress
import signal
import sys
from dataclasses import dataclass

import uvicorn

from mailbeacon.app import create_app
from mailbeacon.settings import Settings

TEST_KEYS = (("t1", b"test-secret-one"), ("t0", b"test-secret-old"))


@dataclass(frozen=True)
class QuickSettings(Settings):
    webhook_allow_private: bool = True  # the receiver is on loopback
    automation_webhook_attempts: int = 3
    automation_webhook_backoff: float = 0.2
    automation_webhook_timeout: float = 2.0
    automation_lease_ttl: float = 1.5
    automation_deadline_every: float = 0.2
    automation_deadline_grace: float = 0.3
    event_webhooks_lease_ttl: float = 1.5
    event_webhooks_backoff_base: float = 0.1  # retries within a second while a receiver is down
    event_webhooks_backoff_cap: float = 0.4
    event_webhooks_timeout: float = 2.0


def die_with_parent() -> None:
    """A test killed mid-story (a timeout, Ctrl-C) must not leave its server running:
    Linux sends us SIGTERM when the process that started us ends."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def main() -> None:
    die_with_parent()
    db_url, port, smtp_url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    settings = QuickSettings(
        database_url=db_url,
        base_url=f"http://127.0.0.1:{port}",
        secret_keys=TEST_KEYS,
        smtp_url=smtp_url,
        # Stories fake readers' addresses with X-Forwarded-For from loopback.
        trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),),
    )
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
