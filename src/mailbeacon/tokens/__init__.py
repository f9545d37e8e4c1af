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
import re
from enum import IntEnum
from typing import NamedTuple

TAG_BYTES = 12
MAX_TOKEN_CHARS = 200  # anything longer is garbage; refuse before decoding


class Kind(IntEnum):
    OPEN = 1
    CLICK = 2
    UNSUBSCRIBE = 3
    FORWARD = 4


_KINDS = {int(k): k for k in Kind}


class Token(NamedTuple):
    """What a token stands for. A tuple, not a dataclass: the pixel builds one per request."""

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
        if b < 0x80:
            values.append(n | (b << shift))
            n = shift = 0
            continue
        n |= (b & 0x7F) << shift
        shift += 7
        if shift > 63:
            return None
    if shift or len(values) != count:
        return None
    return values


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_B64_VALUE = {
    c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
# By the length of the last group: the padding binascii needs, and the low bits of the
# last character that carry no data (a canonical encoding leaves them zero).
_PAD = {0: b"", 2: b"==", 3: b"="}
_SLACK = {0: 0, 2: 0x0F, 3: 0x03}


def _unb64(text: str) -> bytes | None:
    """URL-safe base64 without padding, in its one canonical spelling; None for anything
    else (other alphabets, padding, stray characters, non-zero slack bits)."""
    rest = len(text) % 4
    if rest == 1 or _B64URL.fullmatch(text) is None:
        return None
    raw = text.encode("ascii")
    if rest and _B64_VALUE[raw[-1]] & _SLACK[rest]:
        return None
    try:
        return binascii.a2b_base64(raw.translate(_FROM_URLSAFE) + _PAD[rest], strict_mode=True)
    except (binascii.Error, ValueError):
        return None


class _Mac:
    """HMAC-SHA256 keyed once, with the key id already hashed in: RFC 2104 spelled out
    with two pre-keyed hashlib objects, ~3x cheaper per token than `hmac.HMAC.copy()`
    (the pixel verifies a token per request)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: bytes, prefix: bytes) -> None:
        block = hashlib.sha256().block_size
        key = hashlib.sha256(secret).digest() if len(secret) > block else secret
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._inner.update(prefix)
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def tag(self, payload: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(payload)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:TAG_BYTES]


class Signer:
    """Signs with the first key, verifies with any. Keys: ``[(kid, secret), ...]``."""

    def __init__(self, keys: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        for kid, _ in keys:
            if not kid or "." in kid or not kid.isascii():
                raise ValueError(f"key id {kid!r} must be ASCII without '.'")
        self._sign_kid, _ = keys[0]
        self._macs = {kid: _Mac(secret, kid.encode()) for kid, secret in keys}

    def _tag(self, kid: str, payload: bytes) -> bytes:
        return self._macs[kid].tag(payload)

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
        payload = data[:-TAG_BYTES]
        if not hmac.compare_digest(data[-TAG_BYTES:], mac.tag(payload)):
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
