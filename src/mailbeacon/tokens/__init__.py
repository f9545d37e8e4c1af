"""Signed, compact tracking tokens: the ids a pixel or link stands for, verifiable offline.

A token is ``<kid>.<payload><tag>`` in URL-safe base64 (no padding):

- ``payload``: kind, company, message, lead and link index packed as unsigned LEB128
  varints (small ids make short tokens);
- ``tag``: HMAC-SHA256 over ``kid || payload``, cut to 12 bytes (96 bits).

The key id says which secret signed it, so keys rotate: list a new key first in
``MAILBEACON_SECRET_KEYS`` and keep the old one after it until mail signed with it no
longer matters. Verifying needs no database, which is what keeps the pixel cheap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from enum import IntEnum

TAG_BYTES = 12
MAX_TOKEN_CHARS = 200  # anything longer is garbage; refuse before decoding


class Kind(IntEnum):
    OPEN = 1
    CLICK = 2
    UNSUBSCRIBE = 3
    FORWARD = 4


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    company_id: int
    message_id: int
    lead_id: int
    link_index: int = 0


def _varint(n: int, out: bytearray) -> None:
    if n < 0:
        raise ValueError("token fields are non-negative integers")
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def _read_varints(data: bytes, count: int) -> list[int] | None:
    values: list[int] = []
    n = shift = 0
    for b in data:
        n |= (b & 0x7F) << shift
        if b & 0x80:
            shift += 7
            if shift > 63:
                return None
            continue
        values.append(n)
        n = shift = 0
    if shift or len(values) != count:
        return None
    return values


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


class Signer:
    """Signs with the first key, verifies with any. Keys: ``[(kid, secret), ...]``."""

    def __init__(self, keys: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        for kid, _ in keys:
            if not kid or "." in kid or not kid.isascii():
                raise ValueError(f"key id {kid!r} must be ASCII without '.'")
        self._sign_kid, _ = keys[0]
        # Pre-keyed HMAC objects: copy() is cheaper than re-keying per request.
        self._macs = {kid: hmac.new(secret, kid.encode(), hashlib.sha256) for kid, secret in keys}

    def _tag(self, kid: str, payload: bytes) -> bytes:
        mac = self._macs[kid].copy()
        mac.update(payload)
        return mac.digest()[:TAG_BYTES]

    def sign(self, token: Token) -> str:
        payload = bytearray()
        for value in (
            int(token.kind),
            token.company_id,
            token.message_id,
            token.lead_id,
            token.link_index,
        ):
            _varint(value, payload)
        raw = bytes(payload)
        return f"{self._sign_kid}.{_b64(raw + self._tag(self._sign_kid, raw))}"

    def verify(self, text: str) -> Token | None:
        """The token's ids if it is intact and signed by a known key, else None."""
        if len(text) > MAX_TOKEN_CHARS:
            return None
        kid, sep, body = text.partition(".")
        if not sep or kid not in self._macs:
            return None
        data = _unb64(body)
        if data is None or len(data) <= TAG_BYTES:
            return None
        # base64 decoding tolerates some non-canonical spellings; insist on the one we make
        if _b64(data) != body:
            return None
        payload, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(kid, payload)):
            return None
        fields = _read_varints(payload, 5)
        if fields is None:
            return None
        kind, company_id, message_id, lead_id, link_index = fields
        try:
            return Token(Kind(kind), company_id, message_id, lead_id, link_index)
        except ValueError:
            return None
