"""A small HTTP/1.1 client for event webhook POSTs: keep-alive connections, nothing else.

httpx spends about a millisecond of CPU on each request (its models, h11, anyio, the
pool's bookkeeping); the sender needs thousands a second from one process. These POSTs
need little of what it offers: a short body out, a status line and headers back, no
redirects, cookies, proxies, compression or HTTP/2. So a lane writes the request bytes
itself on an asyncio stream and reads the answer (Content-Length, chunked, or until the
server closes), keeping the connection for the next request unless the server closes it.

The SSRF guard is the same as `ssrf.PublicOnlyBackend`'s: resolve once, refuse if any
address is not public, connect to one of those checked addresses (TLS verifies the URL's
host name). Failures are raised as httpx's exception types, so the sender's error texts
(``refused: ...``, ``timed out``) are the ones the delivery log always showed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx

from mailbeacon.automation.ssrf import _first_private

_IDLE_FOR = 4.0  # seconds a kept connection may idle (servers close theirs at ~5 s)
_MAX_HEAD = 64 * 1024  # the receiver's status line and headers
_URL_SAFE = "/?#[]@!$&'()*+,;=:%-._~"  # reserved and already-escaped characters stay
_MAX_BODY = 1024 * 1024  # read at most this of an answer's body, else close the connection


Origin = tuple[str, str, int]  # scheme, host, port


@dataclass(slots=True)
class Answer:
    status_code: int


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used_at: float

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Lane:
    """Keep-alive connections to each receiver, for the leads hashed to this lane."""

    def __init__(self, timeout: float, allow_private: bool, tls: ssl.SSLContext) -> None:
        self.timeout, self.allow_private, self.tls = timeout, allow_private, tls
        self.idle: dict[Origin, list[_Connection]] = {}

    def close(self) -> None:
        for pool in self.idle.values():
            for conn in pool:
                conn.close()
        self.idle.clear()

    async def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Answer:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise httpx.UnsupportedProtocol(f"not an http(s) URL: {url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        origin = (parts.scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        target = quote(target, safe=_URL_SAFE)  # a non-ASCII path as httpx sends it
        host = parts.netloc.rpartition("@")[2].encode("idna").decode("ascii")
        lines = [f"POST {target} HTTP/1.1", f"Host: {host}",
                 f"Content-Length: {len(content)}"]  # fmt: skip
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(origin, request)
        except TimeoutError as e:
            raise httpx.ReadTimeout("timed out") from e

    async def _exchange(self, origin: Origin, request: bytes) -> Answer:
        kept = self._kept(origin)
        if kept is not None:
            try:
                return await self._over(kept, origin, request)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # the server closed it while idle: once more on a new connection
        return await self._over(await self._connect(origin), origin, request)

    def _kept(self, origin: Origin) -> _Connection | None:
        pool = self.idle.get(origin)
        while pool:
            conn = pool.pop()
            if time.monotonic() - conn.used_at < _IDLE_FOR and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    async def _over(self, conn: _Connection, origin: Origin, request: bytes) -> Answer:
        try:
            conn.writer.write(request)
            await conn.writer.drain()
            status, keep = await _read_answer(conn.reader)
        except BaseException:
            conn.close()
            raise
        if keep:
            conn.used_at = time.monotonic()
            self.idle.setdefault(origin, []).append(conn)
        else:
            conn.close()
        return Answer(status)

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise httpx.ConnectError(f"{host} does not resolve ({e})") from e
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not self.allow_private and (inside := _first_private(addresses)) is not None:
            raise httpx.ConnectError(f"refused: {host} leads to a non-public address ({inside})")
        tls = {"ssl": self.tls, "server_hostname": host} if scheme == "https" else {}
        error: Exception = httpx.ConnectError(f"{host} does not resolve")
        for address in addresses:  # the next address on failure, as a resolver's list
            try:
                reader, writer = await asyncio.open_connection(
                    address, port, limit=_MAX_HEAD, **tls
                )
            except (OSError, ssl.SSLError) as e:
                error = httpx.ConnectError(f"{type(e).__name__}: {e}")
                continue
            return _Connection(reader, writer, time.monotonic())
        raise error


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of the answer, read to its end, and whether the connection may be kept."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as e:
            raise httpx.RemoteProtocolError("the answer's headers are too long") from e
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        try:
            status = int(rest[:3])
        except ValueError:
            raise httpx.RemoteProtocolError(f"not an HTTP answer: {status_line[:80]!r}") from None
        fields: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        if 100 <= status < 200:
            continue  # an interim answer (100 Continue): the real one follows
        break
    connection = fields.get("connection", "")
    keep = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if "chunked" in fields.get("transfer-encoding", ""):
        read = 0
        while (size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
            read += size
            if read > _MAX_BODY:
                return status, False
            await reader.readexactly(size + 2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
    elif "content-length" in fields:
        length = int(fields["content-length"])
        if length > _MAX_BODY:
            return status, False
        await reader.readexactly(length)
    elif status not in (204, 304):
        return status, False  # the body runs until the server closes: not worth reading
    return status, keep
