"""SMTP transport (aiosmtplib): one message out, retried when the server says "later".

4xx replies and dropped connections are temporary: retried a few times with
exponential backoff. 5xx replies are permanent: raised at once as `PermanentFailure`,
with `bounced` set for "no such mailbox" (enhanced status 5.1.1) so the lead is
suppressed from then on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from mailbeacon.settings import Settings


class DeliveryError(Exception):
    """The message could not be delivered; `str()` is the server's reason."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryFailure(DeliveryError):
    """Still failing with 4xx or connection errors after every retry."""


class PermanentFailure(DeliveryError):
    """A 5xx: retrying will not help."""

    @property
    def bounced(self) -> bool:
        # RFC 3463 5.1.1: bad destination mailbox address, a hard bounce.
        return "5.1.1" in str(self)


class Transport(Protocol):
    async def send(self, sender: str, recipients: list[str], raw: bytes) -> None: ...


@dataclass(frozen=True)
class Endpoint:
    hostname: str
    port: int
    use_tls: bool
    username: str | None
    password: str | None


def endpoint(settings: Settings) -> Endpoint:
    """`smtp://host:port` (or `smtps://` for implicit TLS); user:password in the URL
    are used when the settings carry none."""
    url = urlsplit(settings.smtp_url)
    if url.scheme not in ("smtp", "smtps") or not url.hostname:
        raise ValueError(f"MAILBEACON_SMTP_URL must be smtp://host:port, got {settings.smtp_url!r}")
    use_tls = url.scheme == "smtps"
    return Endpoint(
        hostname=url.hostname,
        port=url.port or (465 if use_tls else 25),
        use_tls=use_tls,
        username=settings.smtp_username or (unquote(url.username) if url.username else None),
        password=settings.smtp_password or (unquote(url.password) if url.password else None),
    )


def _classify(exc: Exception) -> DeliveryError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return _classify(first)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reason = f"{exc.code} {exc.message}"
        if 500 <= exc.code < 600:
            return PermanentFailure(reason, exc.code)
        return TemporaryFailure(reason, exc.code)
    return TemporaryFailure(f"{type(exc).__name__}: {exc}")


class SmtpTransport:
    """Sends raw bytes (already DKIM-signed) so nothing re-serialises them on the way."""

    def __init__(
        self,
        settings: Settings,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        self.endpoint = endpoint(settings)
        self.starttls = settings.smtp_starttls
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.timeout = timeout

    async def _once(self, sender: str, recipients: list[str], raw: bytes) -> None:
        ep = self.endpoint
        await aiosmtplib.send(
            raw,
            sender=sender,
            recipients=recipients,
            hostname=ep.hostname,
            port=ep.port,
            username=ep.username,
            password=ep.password,
            use_tls=ep.use_tls,
            # False, not None: never upgrade opportunistically unless asked to.
            start_tls=self.starttls if not ep.use_tls else False,
            timeout=self.timeout,
        )

    async def send(self, sender: str, recipients: list[str], raw: bytes) -> None:
        """Deliver or raise `PermanentFailure` / `TemporaryFailure`."""
        for attempt in range(self.attempts):
            try:
                await self._once(sender, recipients, raw)
                return
            except (aiosmtplib.SMTPException, OSError) as exc:
                failure = _classify(exc)
                if isinstance(failure, PermanentFailure) or attempt == self.attempts - 1:
                    raise failure from exc
            await asyncio.sleep(self.backoff * 2**attempt)
