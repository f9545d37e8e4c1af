"""The HTTP protocol `mailbeacon serve` gives uvicorn: pixels and clicks answered in
place, everything else handed to uvicorn's own httptools protocol.

Profiling `serve` under wrk showed most of a pixel's CPU going to the machinery around
it (uvicorn's per-request scope and timers, an ASGI task, two `send` awaits, two socket
writes), not to the edge's work; a bare uvloop protocol answers ~160k req/s here. So a
connection starts here. A request head of the one plain shape a mail client sends for
a pixel or a link (`HOT_HEAD`: GET or HEAD of /o/ or /c/, a token path, HTTP/1.x,
well-formed header lines, no body) is matched by one regular expression, the headers
the hit needs are picked out of it, and if `edge.quick` can answer without I/O, the hit
goes to the recorder and the answer is written in one `transport.write` from the
commit's callback. (httptools' per-header Python callbacks cost more than the whole
match.) The first request that is anything else (the API, the dashboard, a form, a
body, a click whose link is not cached yet, any head of another shape, a malformed one)
hands the connection, from that request's first byte on, to uvicorn's
`HttpToolsProtocol` (with the head size and time limits of `edge.bounded`) and the ASGI
app, as uvicorn itself hands a connection over for a WebSocket upgrade; uvicorn parses
it in full and answers or refuses it. A head that starts like a hot one but has not
ended waits here, for at most the same head timeout (the idle sweep closes it).

The rules do not change: an answer is written only after its hit's group commit, and
answers to pipelined requests leave in the order the requests came.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections import deque
from typing import Any

from mailbeacon.edge.app import Edge
from mailbeacon.edge.bounded import HEAD_TOO_LARGE, MAX_HEAD, BoundedHttpToolsProtocol
from mailbeacon.edge.quick import Answer, Quick, Reply
from mailbeacon.recorder import RecorderUnavailable

log = logging.getLogger("mailbeacon.edge")

HOT = (b"GET /o/", b"GET /c/", b"HEAD /o/", b"HEAD /c/")
# The one shape of head answered here: GET or HEAD of /o/ or /c/ with a plain token path
# (an optional query), HTTP/1.0 or 1.1, well-formed header lines. Anything else, however
# legal (escapes, an absolute URL, obs-fold, odd bytes), is uvicorn's to parse and answer.
HOT_HEAD = re.compile(
    rb"(GET|HEAD) (/[oc]/[A-Za-z0-9._~-]+)(?:\?[!-~]*)? HTTP/1\.([01])"
    rb"(\r\n(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r\n)*)\r\n"
)
UNHOT_HEADER = re.compile(rb"\n(?:content-length|transfer-encoding|expect|upgrade):")
METHODS = {b"GET": "GET", b"HEAD": "HEAD"}
HEAD_END = re.compile(rb"\n\r?\n")  # a complete head, in CRLF or bare LF lines
SHORTEST_HOT = min(len(p) for p in HOT)
CLOSE = b"connection: close\r\n"
DEFAULT_HEAD_TIMEOUT = 15.0


def find_edge(app: Any) -> Edge | None:
    """The `Edge` inside the served app (`mailbeacon.app.Dispatch` or a test wrapper)."""
    for _ in range(4):
        if isinstance(app, Edge):
            return app
        app = getattr(app, "edge", None) or getattr(app, "app", None)
    return None


_quick_for: weakref.WeakKeyDictionary[Any, Quick | None] = weakref.WeakKeyDictionary()


def quick_for(app: Any) -> Quick | None:
    """The served app's quick answers (built once per app), or None if it has no edge."""
    try:
        return _quick_for[app]
    except KeyError:
        pass
    edge = find_edge(app)
    quick = None
    if edge is not None and hasattr(edge.recorder, "submit"):
        quick = Quick(edge, edge.recorder)  # type: ignore[arg-type]
    _quick_for[app] = quick
    return quick


_head_timeout_for: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def head_timeout_for(app: Any) -> float:
    """The served app's `Settings.head_timeout_seconds` (found once per app): on the
    services of the FastAPI app inside `mailbeacon.app.Dispatch` or a test wrapper."""
    try:
        return _head_timeout_for[app]
    except KeyError:
        pass
    timeout, inner = DEFAULT_HEAD_TIMEOUT, app
    for _ in range(4):
        services = getattr(getattr(inner, "state", None), "services", None)
        settings = getattr(services, "settings", None)
        if settings is not None:
            timeout = float(settings.head_timeout_seconds)
            break
        inner = getattr(inner, "rest", None) or getattr(inner, "app", None)
    _head_timeout_for[app] = timeout
    return timeout


def _could_be_hot(head: bytes) -> bool:
    """Whether the start of a request (maybe not all of it yet) may be a hot one."""
    if len(head) >= SHORTEST_HOT:
        return head.startswith(HOT)
    return any(p.startswith(head) for p in HOT)


class _Slot:
    """One answer owed on a connection, in request order; called when its commit ends."""

    __slots__ = ("answer", "conn", "data", "head", "keep_alive")

    def __init__(self, conn: EdgeProtocol, answer: Answer, head: bool, keep_alive: bool) -> None:
        self.conn, self.answer, self.head, self.keep_alive = conn, answer, head, keep_alive
        self.data: bytes | None = None  # the bytes to write, once known

    def __call__(self, committed: bool) -> None:
        self.data = _bytes(self.answer.ok if committed else self.answer.lost, self)
        self.conn._flush()


# Whole answers by (reply, keep-alive, HEAD), for the current date line: uvicorn replaces
# its default headers once a second, and most answers are the same few byte strings.
_answers: dict[tuple[Reply, bool, bool], bytes] = {}
_defaults: list[object] = [None]


def _bytes(reply: Reply, slot: _Slot) -> bytes:
    defaults = slot.conn.server_state.default_headers  # the date (and server, if set)
    if _defaults[0] is not defaults:
        _defaults[0] = defaults
        _answers.clear()
    key = (reply, slot.keep_alive, slot.head)
    data = _answers.get(key)
    if data is None:
        lines = b"".join(b"%s: %s\r\n" % kv for kv in defaults)  # type: ignore[attr-defined]
        tail = b"\r\n" if slot.keep_alive else CLOSE + b"\r\n"
        data = reply.status + lines + reply.headers + tail + (b"" if slot.head else reply.body)
        if len(_answers) < 4096:  # redirects are per link: keep the cache small
            _answers[key] = data
    return data


def _header(lines: bytes, lower: bytes, name: bytes) -> bytes | None:
    """The value of the last `name` line ("\\nname:", lower case) in a head's lines."""
    at = lower.rfind(name)
    if at < 0:
        return None
    at += len(name)
    return lines[at : lines.index(b"\r", at)].strip(b" \t")


def _forwarded_for(lines: bytes, lower: bytes) -> bytes | None:
    """Every X-Forwarded-For value, joined with commas as one list."""
    values, at = [], lower.find(b"\nx-forwarded-for:")
    while at >= 0:
        at += len(b"\nx-forwarded-for:")
        values.append(lines[at : lines.index(b"\r", at)].strip(b" \t"))
        at = lower.find(b"\nx-forwarded-for:", at)
    return b",".join(values) if values else None


class EdgeProtocol(asyncio.Protocol):
    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config, self.server_state, self.app_state = config, server_state, app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.quick = quick_for(config.loaded_app)
        self.head_timeout = head_timeout_for(config.loaded_app)
        self.transport: asyncio.Transport | None = None
        self.client: str | None = None
        self.proxied = self.quick is not None and self.quick.make_hit.proxied
        self.buffer = b""  # the start of a request head not complete yet
        self.buffer_since = 0.0  # when the head in `buffer` began
        self.slots: deque[_Slot] = deque()
        self.waiting_handoff: bytes | None = None  # for uvicorn, once the slots are out
        self.closing = False
        self.last_active = self.loop.time()

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server_state.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) else None
        _idle_sweep(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.closing = True

    def pause_writing(self) -> None:  # a reader that does not read: stop reading too
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and self.waiting_handoff is None:
            self.transport.resume_reading()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: finish what is owed, then close."""
        self.closing = True
        if not self.slots and self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        carried = self.buffer
        if carried:
            data, self.buffer = carried + data, b""
        if self.quick is None:
            self._hand_over(data)
            return
        start, size = 0, len(data)
        while start < size:
            head = HOT_HEAD.match(data, start)
            if head is None:  # not a plain pixel or click head, or not complete yet
                rest = data[start:] if start else data
                if HEAD_END.search(rest) is not None or not _could_be_hot(rest):
                    self._hand_over(rest)  # uvicorn parses it (and refuses it if it is bad)
                elif len(rest) > MAX_HEAD:
                    self._refuse(HEAD_TOO_LARGE)
                else:
                    if start or not carried:  # a head that begins in these bytes
                        self.buffer_since = self.last_active
                    self.buffer = rest
                return
            if head.end() - start > MAX_HEAD:
                self._refuse(HEAD_TOO_LARGE)
                return
            if not self._request(head):
                self._hand_over(data[start:])
                return
            if self.transport is None or self.transport.is_closing():
                return
            start = head.end()

    # -- one hot request ----------------------------------------------------------------
    def _request(self, head: re.Match[bytes]) -> bool:
        """Answer one request; False if it is not ours after all (uvicorn's then)."""
        method, path, minor, lines = head.group(1, 2, 3, 4)
        lower = lines.lower()
        if UNHOT_HEADER.search(lower) is not None:
            return False  # a body or a protocol switch: uvicorn's business
        ua = _header(lines, lower, b"\nuser-agent:")
        lang = _header(lines, lower, b"\naccept-language:")
        fwd = _forwarded_for(lines, lower) if self.proxied else None
        method = METHODS[method]
        answer = self.quick.answer(method, path, ua, lang, fwd, self.client)  # type: ignore[union-attr]
        if answer is None:
            return False
        self.server_state.total_requests += 1
        keep_alive = minor == b"1"
        if keep_alive and b"\nconnection:" in lower:
            keep_alive = b"close" not in _header(lines, lower, b"\nconnection:").lower()  # type: ignore[union-attr]
        slot = _Slot(self, answer, method == "HEAD", keep_alive)
        self.slots.append(slot)
        if answer.hit is None:
            slot.data = _bytes(answer.ok, slot)
        else:
            try:
                self.quick.submit(answer.hit, slot)  # type: ignore[union-attr]
            except RecorderUnavailable:
                slot.data = _bytes(answer.lost, slot)
        if slot.data is not None:
            self._flush()
        return True

    # -- answers --------------------------------------------------------------------------
    def _flush(self) -> None:
        """Write every answer that is ready, in request order."""
        slots, transport = self.slots, self.transport
        while slots and slots[0].data is not None:
            slot = slots.popleft()
            if transport is None or transport.is_closing():
                continue  # the reader left; the hit is committed all the same
            transport.write(slot.data)  # type: ignore[arg-type]
            if not slot.keep_alive:
                slots.clear()
                transport.close()
                return
        if slots:
            return
        if self.closing and transport is not None:
            transport.close()
        elif self.waiting_handoff is not None:
            data, self.waiting_handoff = self.waiting_handoff, None
            self._hand_over(data)

    def _refuse(self, answer: bytes) -> None:
        transport = self.transport
        self.slots.clear()
        if transport is not None and not transport.is_closing():
            transport.write(answer)
            transport.close()

    # -- everything else: uvicorn -----------------------------------------------------
    def _hand_over(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.slots:  # answers still owed here go first
            self.waiting_handoff = data
            transport.pause_reading()
            return
        self.server_state.connections.discard(self)
        protocol = BoundedHttpToolsProtocol(
            config=self.config,
            server_state=self.server_state,
            app_state=self.app_state,
            _loop=self.loop,
            head_timeout=self.head_timeout,
        )
        protocol.connection_made(transport)
        transport.set_protocol(protocol)
        transport.resume_reading()
        if data:
            protocol.data_received(data)


# Idle keep-alive connections (nothing owed, no request for uvicorn's `timeout_keep_alive`)
# and heads waiting in the buffer past the head timeout are closed by one sweep per
# second per process, not by a timer armed per request.
_open: weakref.WeakSet[EdgeProtocol] = weakref.WeakSet()
_sweeping: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _idle_sweep(conn: EdgeProtocol) -> None:
    _open.add(conn)
    loop = conn.loop
    if loop not in _sweeping:
        _sweeping.add(loop)
        loop.call_later(1.0, _sweep, loop)


def _sweep(loop: asyncio.AbstractEventLoop) -> None:
    now = loop.time()
    for conn in list(_open):
        transport = conn.transport
        if conn.loop is not loop:
            continue
        if transport is None or transport.is_closing() or transport.get_protocol() is not conn:
            _open.discard(conn)
        elif not conn.slots and now - conn.last_active > conn.config.timeout_keep_alive:
            transport.close()
            _open.discard(conn)
        elif conn.buffer and now - conn.buffer_since > conn.head_timeout:
            transport.close()  # a head that trickles in (slowloris)
            _open.discard(conn)
    loop.call_later(1.0, _sweep, loop)
