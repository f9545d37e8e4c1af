"""The one settings object: everything configurable, read from the environment once.

Every other package receives a `Settings` instead of reading `os.environ` itself, so a
test can build one with exactly the values it wants.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace
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
    pipeline_stages: tuple[str, ...] = ()

    @property
    def clustered(self) -> bool:
        return bool(self.nats_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


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
        pipeline_stages=tuple(
            name.strip()
            for name in e.get("MAILBEACON_PIPELINE_STAGES", "").split(",")
            if name.strip()
        ),
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
