"""The edge's two forms: unsubscribe (/u/) and forward to a friend (/f/).

Both are reached through a signed token in the URL. A form we served carries a signed,
time-stamped nonce bound to that token, so another site cannot post it on a reader's
behalf; the RFC 8058 one-click unsubscribe POST from a mail provider needs no nonce (the
token is the authority, as the RFC intends). Forwards are limited per token.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import time
from collections import deque
from urllib.parse import parse_qs

from email_validator import EmailNotValidError, validate_email
from starlette.types import Receive, Scope, Send

from mailbeacon.edge import pages
from mailbeacon.edge.actions import Actions, Friend
from mailbeacon.edge.hits import HitMaker
from mailbeacon.edge.responses import html
from mailbeacon.recorder import Recorder, RecorderUnavailable
from mailbeacon.tokens import Token

log = logging.getLogger("mailbeacon.edge")

MAX_FORM_BYTES = 16 * 1024
ONE_CLICK = "One-Click"


class FormNonce:
    """`<issued>.<mac>`: HMAC over the token and the time it was issued."""

    def __init__(self, secret: bytes, *, ttl_s: int = 24 * 3600) -> None:
        self._key = hmac.new(secret, b"mailbeacon edge form nonce", hashlib.sha256).digest()
        self.ttl_s = ttl_s

    def _mac(self, token: str, issued: int) -> str:
        mac = hmac.new(self._key, f"{token}|{issued}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:16]).rstrip(b"=").decode()

    def issue(self, token: str, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}.{self._mac(token, issued)}"

    def check(self, token: str, nonce: str, now: float | None = None) -> bool:
        issued_text, _, mac = nonce.partition(".")
        if not issued_text.isdigit() or len(issued_text) > 12:
            return False
        issued = int(issued_text)
        age = (time.time() if now is None else now) - issued
        if not -60 <= age <= self.ttl_s:
            return False
        return hmac.compare_digest(mac, self._mac(token, issued))


class RateLimit:
    """At most `limit` events per key in a sliding window, in this process's memory."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._events: dict[tuple[int, int], deque[float]] = {}

    def take(self, key: tuple[int, int]) -> bool:
        now = time.monotonic()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        if len(self._events) > 10_000:  # forget keys whose window has passed
            cutoff = now - self.window_s
            self._events = {k: v for k, v in self._events.items() if v and v[-1] > cutoff}
        return True

    def give_back(self, key: tuple[int, int]) -> None:
        events = self._events.get(key)
        if events:
            events.pop()


async def read_form(scope: Scope, receive: Receive) -> dict[str, str] | None:
    """The urlencoded body as a dict of first values; None when it is too large."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_FORM_BYTES:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return {}
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    raw = b"".join(chunks)
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if content_type.startswith(b"multipart/form-data"):
        # RFC 8058 allows the one-click POST as multipart; nothing else we accept is.
        one_click = b'name="List-Unsubscribe"' in raw and ONE_CLICK.encode() in raw
        return {"List-Unsubscribe": ONE_CLICK} if one_click else {}
    form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=20)
    return {k: v[0] for k, v in form.items()}


class Forms:
    def __init__(
        self,
        *,
        recorder: Recorder,
        actions: Actions,
        make_hit: HitMaker,
        nonce: FormNonce,
        forward_limit: RateLimit,
    ) -> None:
        self.recorder, self.actions, self.make_hit = recorder, actions, make_hit
        self.nonce, self.forward_limit = nonce, forward_limit

    async def _record(self, scope: Scope, token: Token, kind: str) -> None:
        # If this fails, the action itself is done and durable; the raw hit only logs it.
        with contextlib.suppress(RecorderUnavailable):
            await self.recorder.record(self.make_hit(scope, token, kind, None))

    async def unsubscribe(
        self, scope: Scope, receive: Receive, send: Send, text: str, token: Token
    ) -> None:
        if scope["method"] != "POST":
            await html(send, 200, pages.confirm_unsubscribe(self.nonce.issue(text)))
            return
        form = await read_form(scope, receive)
        if form is None:
            await html(send, 413, pages.TOO_LARGE)
            return
        one_click = form.get("List-Unsubscribe") == ONE_CLICK
        if not one_click and not self.nonce.check(text, form.get("nonce", "")):
            await html(send, 403, pages.FORBIDDEN)
            return
        try:
            await self.actions.unsubscribe(token)
        except Exception:
            log.exception("unsubscribe failed for lead %s", token.lead_id)
            await html(send, 503, pages.UNAVAILABLE, [(b"retry-after", b"30")])
            return
        await self._record(scope, token, "unsubscribe")
        await html(send, 200, pages.UNSUBSCRIBED)

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, text: str, token: Token
    ) -> None:
        if scope["method"] != "POST":
            await html(send, 200, pages.forward_form(self.nonce.issue(text)))
            return
        form = await read_form(scope, receive)
        if form is None:
            await html(send, 413, pages.TOO_LARGE)
            return
        if not self.nonce.check(text, form.get("nonce", "")):
            await html(send, 403, pages.FORBIDDEN)
            return
        email, name = form.get("email", "").strip(), form.get("name", "").strip()[:200]
        # Browsers send a textarea's line ends as CRLF; the note goes into a mail as text.
        note = form.get("note", "").replace("\r\n", "\n").replace("\r", "\n").strip()[:1000]
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            again = pages.forward_form(
                self.nonce.issue(text), email=email, name=name, note=note, error=str(exc)
            )
            await html(send, 400, again)
            return
        key = (token.message_id, token.lead_id)
        limit = self.forward_limit
        try:  # recorded forwards, from every worker; then this process's own in flight
            recent = await self.actions.forwards_since(token, limit.window_s)
        except Exception:
            log.exception("forward limit: recorded forwards could not be counted")
            recent = 0
        if recent >= limit.limit or not limit.take(key):
            await html(send, 429, pages.FORWARD_LIMIT, [(b"retry-after", b"3600")])
            return
        hit = self.make_hit(scope, token, "forward", None)
        try:
            await self.actions.forward(token, Friend(email, name, note, hit.ip))
        except Exception:
            self.forward_limit.give_back(key)
            log.exception("forward failed for message %s", token.message_id)
            await html(send, 503, pages.UNAVAILABLE, [(b"retry-after", b"30")])
            return
        await self._record(scope, token, "forward")
        await html(send, 200, pages.FORWARDED)
