"""The pixel and the click answered without an ASGI cycle: the same rules as `Edge`, as
raw HTTP bytes, for `edge.protocol` to write from a callback.

A request qualifies when everything it needs is at hand without I/O: a GET or HEAD of
/o/ or /c/ with no percent-escapes, and for a click, its link in the resolver's cache.
Anything else (a form, a cache miss, an odd path) returns None and takes the ASGI edge,
which is the reference for what every answer must be; tests run both and compare.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import quote

from mailbeacon.edge import pages
from mailbeacon.edge.app import URL_SAFE, Edge
from mailbeacon.edge.responses import GIF, NO_STORE, PAGE_HEADERS, PNG, Headers
from mailbeacon.recorder import Hit, HitsWriter
from mailbeacon.tokens import Kind


class Reply(NamedTuple):
    """An HTTP answer in parts: the date and `connection` headers go in between."""

    status: bytes  # b"HTTP/1.1 200 OK\r\n"
    headers: bytes  # b"name: value\r\n" lines
    body: bytes


def reply(status: bytes, headers: Headers, body: bytes) -> Reply:
    lines = b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers)
    return Reply(b"HTTP/1.1 " + status + b"\r\n", lines, body)


def _image(data: bytes, content_type: bytes, status: bytes) -> Reply:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(data)), *NO_STORE]
    if status.startswith(b"503"):
        headers.append((b"retry-after", b"5"))
    return reply(status, headers, data)


GIF_OK = _image(GIF, b"image/gif", b"200 OK")
PNG_OK = _image(PNG, b"image/png", b"200 OK")
GIF_LOST = _image(GIF, b"image/gif", b"503 Service Unavailable")
PNG_LOST = _image(PNG, b"image/png", b"503 Service Unavailable")
IMAGES = {".gif": (GIF_OK, GIF_LOST), ".png": (PNG_OK, PNG_LOST)}  # answered, not kept
HONEYPOT = reply(
    b"200 OK",
    [*PAGE_HEADERS, (b"content-length", b"%d" % len(pages.EMPTY_PAGE))],
    pages.EMPTY_PAGE,
)
_REDIRECT_TAIL = b"".join(b"%s: %s\r\n" % kv for kv in [(b"content-length", b"0"), *NO_STORE])


def redirect(location: bytes) -> Reply:
    headers = b"location: " + location + b"\r\n" + _REDIRECT_TAIL
    return Reply(b"HTTP/1.1 302 Found\r\n", headers, b"")


def continue_page(location: str) -> Reply:
    page = pages.continue_to(location)
    headers = [*PAGE_HEADERS, (b"content-length", b"%d" % len(page)), (b"retry-after", b"5")]
    return reply(b"503 Service Unavailable", headers, page)


class Answer(NamedTuple):
    """What to write: `ok` once `hit` is committed, `lost` if it is not (or `ok` at once
    when there is no hit to record)."""

    hit: Hit | None
    ok: Reply
    lost: Reply


class Quick:
    def __init__(self, edge: Edge, recorder: HitsWriter) -> None:
        self.edge, self.recorder = edge, recorder
        # `submit(hit, done)`: done(committed) once the hit's commit ended; raises
        # RecorderUnavailable at once when the recorder is down
        self.submit: Callable[[Hit, Callable[[bool], None]], None] = getattr(
            recorder, "submit_then", self._through_future
        )
        self.links = edge.links
        self.make_hit = edge.make_hit
        self.verify = edge.signer.verify  # it refuses over-long text itself
        # a link's 302 and its can't-count page, built once per URL
        self._targets: dict[str, tuple[Reply, Reply]] = {}

    def _through_future(self, hit: Hit, done: Callable[[bool], None]) -> None:
        def settled(fut: asyncio.Future[None]) -> None:
            done(not fut.cancelled() and fut.exception() is None)

        self.recorder.submit(hit).add_done_callback(settled)

    def answer(
        self,
        method: str,
        path: bytes,
        ua: bytes | None,
        lang: bytes | None,
        fwd: bytes | None,
        peer: str | None,
    ) -> Answer | None:
        """The answer to a GET/HEAD of `path` (/o/... or /c/..., no query, no escapes;
        `edge.protocol` has checked its characters), or None: take the ASGI edge."""
        text = path[3:].decode("ascii")
        if path[1] == 0x6F:  # /o/
            images = IMAGES.get(text[-4:])
            if images is None:
                return None
            ok, lost = images
            token = self.verify(text[:-4])
            if token is None or token.kind is not Kind.OPEN:  # the image, nothing recorded
                return Answer(None, ok, ok)
            hit = self.make_hit.hit(ua, lang, fwd, peer, method, token, "open", None)
            return Answer(hit, ok, lost)
        return self._click(method, text, ua, lang, fwd, peer)

    def _click(
        self,
        method: str,
        text: str,
        ua: bytes | None,
        lang: bytes | None,
        fwd: bytes | None,
        peer: str | None,
    ) -> Answer | None:
        token = self.verify(text)
        if token is None or token.kind is not Kind.CLICK:
            return None  # the 404 page is the ASGI edge's business
        link = self.links.peek(token.company_id, token.message_id, token.link_index)
        if link is None or not link.url.startswith(("http://", "https://")):
            return None  # not cached yet, or refused: the ASGI edge reads and answers
        target = self._targets.get(link.url)
        if target is None:
            location = quote(link.url, safe=URL_SAFE)
            target = redirect(location.encode("ascii")), continue_page(location)
            if len(self._targets) > 65536:
                self._targets.clear()
            self._targets[link.url] = target
        ok = HONEYPOT if link.kind == "honeypot" else target[0]
        lost = target[1]
        hit = self.make_hit.hit(ua, lang, fwd, peer, method, token, "click", token.link_index)
        return Answer(hit, ok, lost)
