"""The tracking edge: a raw ASGI app for /o/ (pixel), /c/ (click), /u/ and /f/ (forms).

The pixel and the click are the hot path, readable top to bottom: verify the signed
token (no database), build the hit, await its group commit, send a pre-built answer.
A click reads its destination from the message's stored links (cached), never from the
request. If the hits database is down, a pixel still gets its image, with status 503
(a 200 promises a committed hit), and a click gets a 503 page that forwards the reader
to the link at once (a 302 also promises a committed hit): a reader's link must work
even when we cannot count it.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.types import Receive, Scope, Send

from mailbeacon.edge import pages
from mailbeacon.edge.forms import Forms
from mailbeacon.edge.hits import HitMaker
from mailbeacon.edge.links import LinkSource
from mailbeacon.edge.responses import (
    EMPTY,
    GIF_OK,
    GIF_UNAVAILABLE,
    PNG_OK,
    PNG_UNAVAILABLE,
    html,
    method_not_allowed,
    redirect,
)
from mailbeacon.recorder import Recorder, RecorderUnavailable
from mailbeacon.tokens import MAX_TOKEN_CHARS, Kind, Signer, Token

log = logging.getLogger("mailbeacon.edge")

READ_METHODS = ("GET", "HEAD")
FORM_METHODS = ("GET", "HEAD", "POST")
# Characters a stored URL may keep as they are in a Location header; anything else
# (controls, spaces, non-ASCII) is percent-encoded so no header can be injected.
URL_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


class Edge:
    def __init__(
        self,
        *,
        signer: Signer,
        recorder: Recorder,
        links: LinkSource,
        forms: Forms,
        make_hit: HitMaker,
    ) -> None:
        self.signer, self.recorder, self.links = signer, recorder, links
        self.forms, self.make_hit = forms, make_hit

    def verify(self, text: str, kind: Kind) -> Token | None:
        if len(text) > MAX_TOKEN_CHARS:  # refuse garbage before decoding it
            return None
        token = self.signer.verify(text)
        return token if token is not None and token.kind is kind else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        route, text = path[:3], path[3:]
        if not text or "/" in text:
            await html(send, 404, pages.NOT_FOUND)
        elif route == "/o/":
            await self.pixel(scope, send, text)
        elif route == "/c/":
            await self.click(scope, send, text)
        elif route in ("/u/", "/f/"):
            await self.form(scope, receive, send, route, text)
        else:
            await html(send, 404, pages.NOT_FOUND)

    async def pixel(self, scope: Scope, send: Send, text: str) -> None:
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            await method_not_allowed(send, b"GET, HEAD")
            return
        ext = text[-4:]
        if ext == ".gif":
            ok, lost = GIF_OK, GIF_UNAVAILABLE
        elif ext == ".png":
            ok, lost = PNG_OK, PNG_UNAVAILABLE
        else:
            await html(send, 404, pages.NOT_FOUND)
            return
        answer = ok
        token = self.verify(text[:-4], Kind.OPEN)
        if token is not None:
            # HEAD is recorded too, as method HEAD: enrichment reads it as a scanner signal
            # and the API's hit counts leave it out.
            try:
                await self.recorder.record(self.make_hit(scope, token, "open", None))
            except RecorderUnavailable:
                answer = lost
        await send(answer[0])
        await send(answer[1] if method == "GET" else EMPTY)

    async def click(self, scope: Scope, send: Send, text: str) -> None:
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            await method_not_allowed(send, b"GET, HEAD")
            return
        token = self.verify(text, Kind.CLICK)
        link = None
        if token is not None:
            try:
                link = await self.links(token.company_id, token.message_id, token.link_index)
            except Exception:
                log.exception("click: the message's links could not be read")
                await html(send, 503, pages.UNAVAILABLE, [(b"retry-after", b"5")])
                return
        if token is None or link is None or not link.url.startswith(("http://", "https://")):
            await html(send, 404, pages.NOT_FOUND)
            return
        location = quote(link.url, safe=URL_SAFE)
        try:
            await self.recorder.record(self.make_hit(scope, token, "click", token.link_index))
        except RecorderUnavailable:
            # A 302 promises a committed hit (CONTRACT), so none is sent; the reader still
            # gets where the email said, through a page that forwards at once.
            await html(send, 503, pages.continue_to(location), [(b"retry-after", b"5")])
            return
        if link.kind == "honeypot":  # invisible link only machines follow: no redirect
            await html(send, 200, pages.EMPTY_PAGE)
            return
        await redirect(send, location.encode("ascii"))

    async def form(self, scope: Scope, receive: Receive, send: Send, route: str, text: str) -> None:
        if scope["method"] not in FORM_METHODS:
            await method_not_allowed(send, b"GET, HEAD, POST")
            return
        kind = Kind.UNSUBSCRIBE if route == "/u/" else Kind.FORWARD
        token = self.verify(text, kind)
        if token is None:
            await html(send, 404, pages.NOT_FOUND)
        elif kind is Kind.UNSUBSCRIBE:
            await self.forms.unsubscribe(scope, receive, send, text, token)
        else:
            await self.forms.forward(scope, receive, send, text, token)
