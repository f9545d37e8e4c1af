"""Signed session cookies and CSRF tokens, with the same rotating keys as tracking tokens.

A session is `kid.user_id.epoch.issued.nonce.signature`: HMAC-SHA256 over the rest with
the key named by `kid`, so rotating `MAILBEACON_SECRET_KEYS` keeps sessions valid until
the old key is retired. `epoch` is the user's `session_epoch` when the session began;
logging out, deactivation and a new password raise it, and every request compares, so
those end every session of the user at once. The CSRF token of a session is an HMAC of
its nonce; before login a double-submit cookie plays that part.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "mb_session"
LOGIN_CSRF_COOKIE = "mb_login_csrf"
MAX_AGE = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    epoch: int
    issued: int
    nonce: str


def _sign(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def issue(
    keys: tuple[tuple[str, bytes], ...], user_id: int, epoch: int, now: float | None = None
) -> str:
    kid, secret = keys[0]
    body = f"{kid}.{user_id}.{epoch}.{int(now or time.time())}.{secrets.token_hex(16)}"
    return f"{body}.{_sign(secret, body)}"


def verify(
    keys: tuple[tuple[str, bytes], ...], value: str | None, now: float | None = None
) -> Session | None:
    """The session if the cookie is intact, signed by a known key and not expired.

    Whether its epoch is still the user's is for the caller to check (a database read).
    Cookies of the older four-part shape carry no epoch and are refused: log in again.
    """
    if not value:
        return None
    body, _, sig = value.rpartition(".")
    parts = body.split(".")
    if len(parts) != 5:
        return None
    kid, user, epoch, issued, nonce = parts
    secret = dict(keys).get(kid)
    if secret is None or not hmac.compare_digest(sig, _sign(secret, body)):
        return None
    if not (user.isdigit() and epoch.isdigit() and issued.isdigit()):
        return None
    if (now or time.time()) - int(issued) > MAX_AGE:
        return None
    return Session(user_id=int(user), epoch=int(epoch), issued=int(issued), nonce=nonce)


def csrf_token(keys: tuple[tuple[str, bytes], ...], session: Session) -> str:
    return _sign(keys[0][1], f"csrf:{session.nonce}")[:32]


def csrf_ok(keys: tuple[tuple[str, bytes], ...], session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(keys, session), token or "")
