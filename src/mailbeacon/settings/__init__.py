"""The one settings object: everything configurable, read from the environment once.

Every other package receives a `Settings` instead of reading `os.environ` itself, so a
test can build one with exactly the values it wants.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from mailbeacon.settings.secret_keys import (
    KEY_FILE,
    Keys,
    MissingSecretKeys,
    key_file_for,
    parse_keys,
    with_secret_keys,
)

DEFAULT_DATABASE_URL = "sqlite:///var/mailbeacon.db"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(raw: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in raw.split(",") if p.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    base_url: str = "http://127.0.0.1:8000"
    # No default key: empty until `with_secret_keys` fills it, and a Signer refuses none.
    secret_keys: Keys = ()
    smtp_url: str = "smtp://127.0.0.1:8025"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "mailbeacon <no-reply@mailbeacon.localhost>"
    unsubscribe_mailto: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key_path: str | None = None
    trusted_proxies: tuple[Network, ...] = ()
    geoip_db: str | None = None
    # Group commit: a batch is written when it holds this many hits or is this old.
    commit_batch_size: int = 256
    commit_interval_ms: float = 2.0
    # Under `serve` on SQLite: the address of the one hits writer the workers share.
    hits_writer: str | None = None
    # Privacy, server-wide (each company sets its own too; see store.retention):
    # anonymise every company's readers, and the longest any company keeps readers'
    # addresses and user agents (0: no server limit).
    anonymize_ip: bool = False
    hit_retention_days: int = 0
    # How often each edge re-reads which companies anonymise at capture: a change on the
    # settings page reaches the edge within this many seconds.
    privacy_refresh_seconds: float = 5.0
    # Webhooks to private, loopback or link-local addresses are refused unless allowed.
    webhook_allow_private: bool = False
    max_body_bytes: int = 1024 * 1024
    # A request head (line and headers) must arrive whole within this many seconds of
    # its first byte, or the connection is closed: slow heads cannot hold connections.
    head_timeout_seconds: float = 15.0
    var_dir: Path = Path("var")
    # How long a best-hour "hour" is, in seconds: 3600. Tests of durable sending shrink
    # it so a 24-hour window passes in seconds through the same arithmetic.
    schedule_hour_seconds: int = 3600
    # The multi-machine mode (docs/deploy.md): edges hand hits to NATS JetStream and
    # `mailbeacon pipeline` workers divide the stream's partitions between them.
    nats_url: str | None = None
    nats_stream: str = "MAILBEACON_HITS"
    nats_replicas: int = 1  # 3 on a three-server NATS cluster
    # Leads are spread over this many partitions, fixed when the stream is first made.
    partitions: int = 8
    # A dead worker's partitions are taken over within about this many seconds.
    partition_lease_seconds: float = 5.0
    partition_batch: int = 500  # hits per partition transaction
    # The stages `mailbeacon pipeline` runs here (empty: all of them), e.g. only
    # "enrich" on extra workers added for a backlog.
    only_stages: tuple[str, ...] = ()

    @property
    def clustered(self) -> bool:
        return bool(self.nats_url)

    # The pipeline's stages (`mailbeacon.pipeline`). Each knob is also read from
    # MAILBEACON_<NAME IN CAPITALS> by `from_env`. A stage's lease lapses this long after
    # its process stopped renewing it; a process without it asks again every
    # `pipeline_retry_seconds` (or sooner for a short lease), and retries a failing
    # batch as often.
    pipeline_lease_seconds: float = 10.0
    pipeline_retry_seconds: float = 1.0
    enrich_batch_size: int = 1000  # hits read per enrich batch
    enrich_poll_seconds: float = 0.2  # a click's event lands ~1.5-1.7 s after its hit
    rollups_batch_size: int = 2000  # events per rollups batch
    rollups_poll_seconds: float = 0.5
    campaign_sends_poll_seconds: float = 0.5
    lead_imports_poll_seconds: float = 1.0
    erase_sweep_seconds: float = 2.0  # between sweeps (crm.erase_sweep)
    retention_every_seconds: float = 600.0  # between retention passes
    # Automation (rules, scoring, jobs): tests shorten the lease and the webhook backoff.
    automation_batch: int = 2000  # events per consumer transaction
    automation_idle_poll: float = 0.05  # seconds between looks for new events/jobs when idle
    automation_lease_ttl: float = 10.0  # a stopped process's lease lapses after this
    automation_job_batch: int = 500  # local jobs per transaction
    # Emails/webhooks in flight per process; each holds a pooled connection at times.
    automation_remote_concurrency: int = 8
    automation_lock_seconds: float = 120.0  # a remote job's claim; a dead runner's is retaken
    automation_webhook_attempts: int = 5
    automation_webhook_backoff: float = 2.0  # seconds before the 2nd attempt; doubles each time
    automation_webhook_timeout: float = 10.0
    automation_deadline_every: float = 1.0  # seconds between not_opened scans
    automation_deadline_grace: float = 5.0  # wait this long past a deadline for late opens

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


# Numeric knobs read from MAILBEACON_<NAME> as they are named (pipeline stages).
KNOBS = tuple(
    f.name
    for f in fields(Settings)
    if f.name.startswith(
        (
            "pipeline_",
            "enrich_",
            "rollups_",
            "campaign_sends_",
            "lead_imports_",
            "erase_sweep_",
            "retention_",
            "automation_",
        )
    )
)


def _knobs(e: Mapping[str, str]) -> dict[str, object]:
    found: dict[str, object] = {}
    for name in KNOBS:
        raw = e.get(f"MAILBEACON_{name.upper()}", "").strip()
        if raw:
            found[name] = type(getattr(Settings, name))(raw)  # int or float, as the default
    return found


def from_env(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `MAILBEACON_*` variables; keyword overrides win (CLI flags)."""
    e = os.environ if env is None else env
    raw_keys = e.get("MAILBEACON_SECRET_KEYS", "").strip()  # unset: see `with_secret_keys`
    s = Settings(
        database_url=e.get("MAILBEACON_DATABASE_URL", DEFAULT_DATABASE_URL),
        base_url=e.get("MAILBEACON_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        secret_keys=parse_keys(raw_keys) if raw_keys else (),
        smtp_url=e.get("MAILBEACON_SMTP_URL", "smtp://127.0.0.1:8025"),
        smtp_username=e.get("MAILBEACON_SMTP_USERNAME") or None,
        smtp_password=e.get("MAILBEACON_SMTP_PASSWORD") or None,
        smtp_starttls=e.get("MAILBEACON_SMTP_STARTTLS", "") in ("1", "true", "yes"),
        mail_from=e.get("MAILBEACON_MAIL_FROM", Settings.mail_from),
        unsubscribe_mailto=e.get("MAILBEACON_UNSUBSCRIBE_MAILTO") or None,
        dkim_selector=e.get("MAILBEACON_DKIM_SELECTOR") or None,
        dkim_domain=e.get("MAILBEACON_DKIM_DOMAIN") or None,
        dkim_private_key_path=e.get("MAILBEACON_DKIM_KEY") or None,
        trusted_proxies=_networks(e.get("MAILBEACON_TRUSTED_PROXIES", "")),
        geoip_db=e.get("MAILBEACON_GEOIP_DB") or None,
        anonymize_ip=e.get("MAILBEACON_ANONYMIZE_IP", "") in ("1", "true", "yes"),
        hit_retention_days=int(e.get("MAILBEACON_HIT_RETENTION_DAYS", "0")),
        privacy_refresh_seconds=float(
            e.get("MAILBEACON_PRIVACY_REFRESH_SECONDS", Settings.privacy_refresh_seconds)
        ),
        webhook_allow_private=e.get("MAILBEACON_WEBHOOK_ALLOW_PRIVATE", "") in ("1", "true", "yes"),
        var_dir=Path(e.get("MAILBEACON_VAR_DIR", "var")),
        hits_writer=e.get("MAILBEACON_HITS_WRITER") or None,
        commit_batch_size=int(e.get("MAILBEACON_COMMIT_BATCH_SIZE", Settings.commit_batch_size)),
        head_timeout_seconds=float(
            e.get("MAILBEACON_HEAD_TIMEOUT_SECONDS", Settings.head_timeout_seconds)
        ),
        schedule_hour_seconds=int(
            e.get("MAILBEACON_SCHEDULE_HOUR_SECONDS", Settings.schedule_hour_seconds)
        ),
        commit_interval_ms=float(
            e.get("MAILBEACON_COMMIT_INTERVAL_MS", Settings.commit_interval_ms)
        ),
        nats_url=e.get("MAILBEACON_NATS_URL") or None,
        nats_stream=e.get("MAILBEACON_NATS_STREAM", Settings.nats_stream),
        nats_replicas=int(e.get("MAILBEACON_NATS_REPLICAS", Settings.nats_replicas)),
        partitions=int(e.get("MAILBEACON_PARTITIONS", Settings.partitions)),
        partition_lease_seconds=float(
            e.get("MAILBEACON_PARTITION_LEASE_SECONDS", Settings.partition_lease_seconds)
        ),
        partition_batch=int(e.get("MAILBEACON_PARTITION_BATCH", Settings.partition_batch)),
        only_stages=tuple(
            name.strip()
            for name in e.get("MAILBEACON_PIPELINE_STAGES", "").split(",")
            if name.strip()
        ),
        **_knobs(e),  # type: ignore[arg-type]
    )
    return s.with_(**{k: v for k, v in overrides.items() if v is not None}) if overrides else s


__all__ = [
    "DEFAULT_DATABASE_URL",
    "KEY_FILE",
    "MissingSecretKeys",
    "Settings",
    "from_env",
    "key_file_for",
    "with_secret_keys",
]
