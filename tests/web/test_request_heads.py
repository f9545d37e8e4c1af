"""Request heads on the dashboard and API, as `serve` takes them (`EdgeProtocol` handing
over to uvicorn): over 64 KB is 431 on every route, and a head that trickles in is
closed after the head timeout (1 s here)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

HEAD_TIMEOUT = 1.0  # the `served` fixture's
# How heads are read does not depend on the database engine.
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (a reset after the answer counts as closed)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _status(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


def _stream_huge_head(base: str, path: str) -> bytes:
    """A header line that never ends, sent for as long as the server reads it (up to
    100 MB), while the answer is read beside it."""
    with _connect(base) as sock:
        stop = threading.Event()

        def send() -> None:
            chunk = b"a" * 65536
            try:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nX-Big: ".encode())
                for _ in range(1600):
                    if stop.is_set():
                        return
                    sock.sendall(chunk)
            except OSError:
                return  # the server closed: what it answered is what counts

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            return _read_all(sock)
        finally:
            stop.set()
            sender.join(timeout=10)


@pytest.mark.parametrize("path", ["/login", "/api/v1/leads", "/campaigns/1"])
async def test_a_header_line_that_never_ends_gets_431_on_every_route(
    served: str, path: str
) -> None:
    answer = await asyncio.to_thread(_stream_huge_head, served, path)
    assert _status(answer) == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert answer.endswith(b"\r\n\r\nRequest header fields too large.\n")


def _exchange(base: str, *requests: bytes) -> list[bytes]:
    """Each request on one connection, the answer read (up to the connection's close
    or a complete answer) before the next is sent."""
    answers = []
    with _connect(base) as sock:
        for request in requests:
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data or not _complete(data):
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            answers.append(data)
    return answers


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def _get(path: str, *headers: bytes) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + b"".join(headers) + b"\r\n"


async def test_every_head_is_measured_not_only_the_first_and_not_the_body(served: str) -> None:
    big = b"Cookie: " + b"c" * 70_000 + b"\r\n"
    small_then_big = await asyncio.to_thread(
        _exchange, served, _get("/login"), _get("/api/v1/leads", big)
    )
    assert _status(small_then_big[0]) == b"HTTP/1.1 200 OK"
    assert _status(small_then_big[1]) == b"HTTP/1.1 431 Request Header Fields Too Large"
    # A whole head just over the limit, ended properly, is refused too.
    [whole] = await asyncio.to_thread(_exchange, served, _get("/login", big))
    assert _status(whole) == b"HTTP/1.1 431 Request Header Fields Too Large"
    # A body of 200 KB under a small head is not a head: the form's own answer (403, the
    # login form's CSRF cookie is missing), then the next request on the connection.
    body = b"email=a%40b.example&password=" + b"p" * 200_000
    post = (
        b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded"
        b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answers = await asyncio.to_thread(_exchange, served, post, _get("/login"))
    assert [_status(a) for a in answers] == [b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 200 OK"]


def _trickle(base: str, start: bytes, seconds: float) -> tuple[float, bytes]:
    """Send `start`, then one more header byte every 0.1 s for up to `seconds`; the time
    until the server closed the connection and what it sent."""
    with _connect(base) as sock:
        began = time.monotonic()
        sock.sendall(start)
        sock.settimeout(0.1)
        data = b""
        while time.monotonic() - began < seconds:
            try:
                sock.sendall(b"x")
            except OSError:
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return time.monotonic() - began, data


@pytest.mark.parametrize(
    "start",
    [
        b"GET /login HTTP/1.1\r\nHost: t\r\nX-Slow: ",  # goes to uvicorn at once
        b"POST /api/v1/leads HTTP/1.1\r\nX-Slow: ",
        b"GET /o/",  # could be a pixel: waits in EdgeProtocol for the rest of its head
    ],
)
async def test_a_head_that_trickles_in_is_closed_after_the_head_timeout(
    served: str, start: bytes
) -> None:
    took, data = await asyncio.to_thread(_trickle, served, start, 10.0)
    # Within the timeout and the once-a-second sweep, far sooner than the 10 s here
    # (uvicorn's own keep-alive timeout, 5 s, never fires while bytes keep coming).
    assert HEAD_TIMEOUT <= took < HEAD_TIMEOUT + 2.5, took
    if start.startswith(b"GET /o/"):
        assert data == b""  # the edge's sweep just closes it
    else:
        assert _status(data) == b"HTTP/1.1 408 Request Timeout"


def _slow_but_whole(base: str) -> bytes:
    request = _get("/login")
    with _connect(base) as sock:
        for i in range(0, len(request), 8):  # the whole head over about half a second
            sock.sendall(request[i : i + 8])
            time.sleep(0.5 / (len(request) / 8))
        return _exchange_on(sock)


def _exchange_on(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not _complete(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


async def test_a_head_that_comes_slowly_but_within_the_timeout_is_answered(served: str) -> None:
    answer = await asyncio.to_thread(_slow_but_whole, served)
    assert _status(answer) == b"HTTP/1.1 200 OK"
