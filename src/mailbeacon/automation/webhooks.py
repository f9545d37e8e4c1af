"""Outgoing webhooks: a signed JSON POST, retried with exponential backoff, every attempt
logged in `webhook_deliveries` for the rule's delivery log.

The receiver verifies `X-Mailbeacon-Signature: sha256=<hex HMAC-SHA256(secret, body)>`
over the raw body. The body carries `timestamp` and `delivery_id` too (also sent as
headers), so the signature covers them: a receiver can refuse stale replays and drop a
delivery it already handled (a runner killed after the POST sends it again).

Redirects are not followed: the URL the user saved is the only place data goes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from sqlalchemy import insert

from mailbeacon.automation.actions import Context, Outcome
from mailbeacon.automation.ssrf import private_address
from mailbeacon.store import Database, now
from mailbeacon.store.schema_automation import webhook_deliveries


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (and what our tests do)."""
    return hmac.compare_digest(sign(secret, body), header)


def body_of(job: dict[str, Any], timestamp: int) -> bytes:
    payload = {
        "rule_id": job["rule_id"],
        "lead_id": job["lead_id"],
        "event": job["trigger"],
        "delivery_id": job["id"],
        "timestamp": timestamp,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


async def post(
    http: httpx.AsyncClient, url: str, secret: str, body: bytes, job_id: int, timestamp: int
) -> tuple[int | None, str | None]:
    """One attempt: (status code, error); error is None only for a 2xx answer."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "mailbeacon-webhook/1",
        "X-Mailbeacon-Signature": sign(secret, body),
        "X-Mailbeacon-Timestamp": str(timestamp),
        "X-Mailbeacon-Delivery": str(job_id),
    }
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return None, "timed out"
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}: {e}"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"answered {response.status_code}"


async def _log(
    db: Database, job: dict[str, Any], code: int | None, error: str | None, ms: int, final: bool
) -> None:
    async with db.begin() as conn:
        await conn.execute(
            insert(webhook_deliveries).values(
                job_id=job["id"],
                rule_id=job["rule_id"],
                company_id=job["company_id"],
                attempt=job["attempts"],
                url=job["action"]["url"],
                status_code=code,
                ok=error is None,
                error=error,
                duration_ms=ms,
                final=final,
                at=now(),
            )
        )


async def deliver(ctx: Context, job: dict[str, Any], attempts: int, backoff: float) -> Outcome:
    """Attempt `job["attempts"]` of `attempts`; a failure before the last is retried after
    backoff * 2^(attempt-1) seconds."""
    action = job["action"]
    timestamp = int(time.time())
    body = body_of(job, timestamp)
    if not ctx.settings.webhook_allow_private:
        inside = await private_address(action["url"])
        if inside is not None:
            error = f"refused: the URL leads to a non-public address ({inside})"
            await _log(ctx.db, job, None, error, 0, final=True)
            return Outcome("failed", error)
    started = time.perf_counter()
    code, error = await post(ctx.http, action["url"], action["secret"], body, job["id"], timestamp)
    ms = int((time.perf_counter() - started) * 1000)
    last = job["attempts"] >= attempts
    await _log(ctx.db, job, code, error, ms, final=error is None or last)
    if error is None:
        return Outcome("done", f"delivered ({code}) on attempt {job['attempts']}")
    if last:
        return Outcome("failed", f"gave up after {job['attempts']} attempts: {error}")
    wait = backoff * 2 ** (job["attempts"] - 1)
    return Outcome("pending", f"attempt {job['attempts']} failed: {error}", retry_in=wait)
