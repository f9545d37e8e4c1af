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


_KINDS = {int(k): k for k in Kind}


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


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    """URL-safe base64 without padding; None for anything else (strict: no stray bytes)."""
    try:
        raw = (text + "=" * (-len(text) % 4)).encode("ascii")
    except UnicodeEncodeError:
        return None
    if b"+" in raw or b"/" in raw:
        return None
    try:
        return binascii.a2b_base64(raw.translate(_FROM_URLSAFE), strict_mode=True)
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
        mac = self._macs.get(kid) if sep else None
        if mac is None:
            return None
        data = _unb64(body)
        if data is None or len(data) <= TAG_BYTES:
            return None
        # base64 decoding tolerates some non-canonical spellings; insist on the one we make
        if _b64(data) != body:
            return None
        payload = data[:-TAG_BYTES]
        mac = mac.copy()
        mac.update(payload)
        if not hmac.compare_digest(data[-TAG_BYTES:], mac.digest()[:TAG_BYTES]):
            return None
        if len(payload) == 5 and max(payload) < 0x80:  # every id below 128: one byte each
            kind, company_id, message_id, lead_id, link_index = payload
        else:
            fields = _read_varints(payload, 5)
            if fields is None:
                return None
            kind, company_id, message_id, lead_id, link_index = fields
        k = _KINDS.get(kind)
        if k is None:
            return None
        return Token(k, company_id, message_id, lead_id, link_index)
