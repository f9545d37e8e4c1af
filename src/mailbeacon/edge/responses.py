"""Pre-built ASGI messages: the pixel and the fixed pages cost no allocation per request."""

from __future__ import annotations

import struct
import zlib
from typing import Any

from starlette.types import Send

Headers = list[tuple[bytes, bytes]]

# nginx's empty_gif: a 1x1 transparent GIF, 43 bytes.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x01\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)  # 1x1, 8-bit RGBA
    pixels = zlib.compress(b"\x00\x00\x00\x00\x00")  # filter byte + one transparent pixel
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


PNG = _png_1x1()

NO_STORE: Headers = [
    (b"cache-control", b"no-store, no-cache, must-revalidate, private, max-age=0"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
]
# The pages are ours alone: no framing (clickjacking of the confirm button), no scripts.
PAGE_HEADERS: Headers = [
    (b"content-type", b"text/html; charset=utf-8"),
    *NO_STORE,
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"referrer-policy", b"no-referrer"),
    (b"x-robots-tag", b"noindex"),
]


def start(status: int, headers: Headers) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers}


def body(data: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data}


def image(data: bytes, content_type: bytes, status: int = 200) -> tuple[dict[str, Any], ...]:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(data)).encode()),
        *NO_STORE,
    ]
    if status == 503:
        headers.append((b"retry-after", b"5"))
    return start(status, headers), body(data)


GIF_OK = image(GIF, b"image/gif")
PNG_OK = image(PNG, b"image/png")
# Not recorded (database down): the same image, but never a 200 for a hit we lost.
GIF_UNAVAILABLE = image(GIF, b"image/gif", 503)
PNG_UNAVAILABLE = image(PNG, b"image/png", 503)
EMPTY = body(b"")


async def html(send: Send, status: int, page: bytes, extra: Headers | None = None) -> None:
    headers = [*PAGE_HEADERS, (b"content-length", str(len(page)).encode())]
    if extra:
        headers.extend(extra)
    await send(start(status, headers))
    await send(body(page))


async def redirect(send: Send, location: bytes) -> None:
    await send(start(302, [(b"location", location), (b"content-length", b"0"), *NO_STORE]))
    await send(EMPTY)


async def method_not_allowed(send: Send, allow: bytes) -> None:
    await send(start(405, [(b"allow", allow), (b"content-length", b"0")]))
    await send(EMPTY)
