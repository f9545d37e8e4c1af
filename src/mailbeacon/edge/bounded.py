"""uvicorn's httptools protocol with the two limits it lacks: a head's size and its time.

`EdgeProtocol` hands every request that is not a plain pixel or click to uvicorn's
`HttpToolsProtocol`. httptools gathers a header line in memory until it ends, so a
100 MB header line was read whole (a worker grew to 380 MB), and uvicorn sets no time
limit on a head, so 19,600 connections that sent a byte now and then were held open.
Here, before any byte reaches the parser, a head that passes `MAX_HEAD` gets 431 and a
head not complete `head_timeout` seconds after its first byte gets 408; both close the
connection. Bodies are the ASGI app's business (`api.limits.BodyLimit`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 64 * 1024  # the request line and headers; the edge refuses the same
# After a 431 the client may still be sending its head: read and drop it for a moment
# before closing, or the kernel resets the connection and the answer is lost with it.
LINGER_SECONDS = 2.0
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8"
    b"\r\ncontent-length: 33\r\nconnection: close\r\n\r\nRequest header fields too large.\n"
)
HEAD_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8"
    b"\r\ncontent-length: 35\r\nconnection: close\r\n\r\nThe request head came too slowly.\n"
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout = head_timeout
        self.in_head = True  # the next bytes belong to a request head
        self.head_bytes = 0
        self.head_timer: asyncio.TimerHandle | None = None
        self.discarding = False  # refused: what still arrives is dropped

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        if not self.in_head:
            super().data_received(data)
            return
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_timeout, self._too_slow)
        room = MAX_HEAD - self.head_bytes
        if len(data) <= room:
            self.head_bytes += len(data)
            super().data_received(data)
            return
        # More than a head may hold: the parser sees what fits. If that ends the head,
        # the rest is a body or the next request; if not, the head is too large.
        self.head_bytes = MAX_HEAD
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self.in_head:
            self._refuse()
        else:
            self.data_received(data[room:])

    def eof_received(self) -> bool | None:
        if self.discarding:
            self.transport.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    # -- parser callbacks: where a head ends and the next begins ------------------------
    def on_headers_complete(self) -> None:
        self.in_head = False
        self._stop_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head, self.head_bytes = True, 0

    # -- refusals -----------------------------------------------------------------------
    def _idle(self) -> bool:
        """No answer is being written: one of ours cannot interleave with it."""
        return self.cycle is None or self.cycle.response_complete

    def _stop_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _refuse(self) -> None:
        self._stop_timer()
        self.discarding = True
        transport = self.transport
        if self._idle():
            transport.write(HEAD_TOO_LARGE)
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, transport.close)

    def _too_slow(self) -> None:
        self.head_timer = None
        transport = self.transport
        if not self.in_head or transport.is_closing():
            return
        if self._idle():
            transport.write(HEAD_TIMEOUT)
        transport.close()
