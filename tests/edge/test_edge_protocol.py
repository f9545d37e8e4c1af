"""`EdgeProtocol`, what `serve` runs: raw HTTP on a socket, where its shortcut for pixels
and clicks meets everything it hands to uvicorn (pipelining, keep-alive, hand-over)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from edge_wire import read_answers

from mailbeacon.edge.responses import GIF
from mailbeacon.tokens import Kind

pytestmark = pytest.mark.usefixtures("seeded_sqlite")


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _exchange(base: str, request: bytes, answers: int) -> list[tuple[bytes, dict[str, str], bytes]]:
    with _connect(base) as sock:
        sock.sendall(request)
        return read_answers(sock, answers)


def _get(path: str, *extra: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: edge.test", *extra, "", ""]
    return "\r\n".join(lines).encode()


async def test_pipelined_pixels_are_answered_in_order_after_their_commits(
    quick, seeded_sqlite
) -> None:
    s = seeded_sqlite
    pixel = f"/o/{s.token(Kind.OPEN)}.gif"
    request = b"".join(_get(pixel, f"User-Agent: reader-{n}") for n in range(5))
    answers = await asyncio.to_thread(_exchange, quick.base, request, 5)
    assert [status for status, _, _ in answers] == [b"HTTP/1.1 200 OK"] * 5
    assert all(body == GIF for _, _, body in answers)
    assert [h["user_agent"] for h in await s.hits()] == [f"reader-{n}" for n in range(5)]


async def test_a_pixel_then_a_form_on_one_connection_hands_over_to_uvicorn(
    quick, seeded_sqlite
) -> None:
    s = seeded_sqlite
    pixel, form = f"/o/{s.token(Kind.OPEN)}.gif", f"/u/{s.token(Kind.UNSUBSCRIBE)}"
    # both in one segment: the form's answer must wait for the pixel's commit
    answers = await asyncio.to_thread(_exchange, quick.base, _get(pixel) + _get(form), 2)
    (pixel_status, _, pixel_body), (form_status, form_headers, form_body) = answers
    assert pixel_status == b"HTTP/1.1 200 OK" and pixel_body == GIF
    assert form_status == b"HTTP/1.1 200 OK"
    assert form_headers["content-type"].startswith("text/html") and b"<form" in form_body
    assert len(await s.hits()) == 1


async def test_http_1_0_and_connection_close_get_their_answer_and_a_closed_socket(
    quick, seeded_sqlite
) -> None:
    pixel = f"/o/{seeded_sqlite.token(Kind.OPEN)}.gif"
    for request in (_get(pixel, version="1.0"), _get(pixel, "Connection: close")):
        with _connect(quick.base) as sock:
            sock.sendall(request)
            [(status, headers, body)] = await asyncio.to_thread(read_answers, sock, 1)
            assert status.endswith(b"200 OK") and body == GIF
            assert headers["connection"] == "close"
            assert await asyncio.to_thread(sock.recv, 1) == b""  # closed by the server


async def test_head_has_the_headers_and_no_body(quick, seeded_sqlite) -> None:
    s = seeded_sqlite
    request = _get(f"/o/{s.token(Kind.OPEN)}.gif", method="HEAD") + _get("/o/forged.gif")
    with _connect(quick.base) as sock:
        sock.sendall(request)
        [(status, headers, body), second] = await asyncio.to_thread(
            read_answers, sock, 2, head_first=True
        )
    assert status == b"HTTP/1.1 200 OK" and body == b"" and headers["content-length"] == "43"
    assert second[2] == GIF  # the next answer starts right after the HEAD's headers
    [hit] = await s.hits()
    assert hit["method"] == "HEAD"


async def test_idle_keep_alive_connections_are_closed(quick, seeded_sqlite) -> None:
    pixel = f"/o/{seeded_sqlite.token(Kind.OPEN)}.gif"
    with _connect(quick.base) as sock:
        sock.sendall(_get(pixel))
        await asyncio.to_thread(read_answers, sock, 1)
        started = time.monotonic()
        assert await asyncio.to_thread(sock.recv, 1) == b""  # keep-alive is 1 s here
        assert time.monotonic() - started < 4


async def test_a_click_is_the_same_answer_from_the_database_and_from_the_cache(
    quick, seeded_sqlite
) -> None:
    s = seeded_sqlite
    click = _get(f"/c/{s.token(Kind.CLICK, 1)}")
    first = await asyncio.to_thread(_exchange, quick.base, click, 1)  # reads the link
    second = await asyncio.to_thread(_exchange, quick.base, click, 1)  # cached: no ASGI

    def without_date(answer: tuple[bytes, dict[str, str], bytes]) -> Any:
        status, headers, body = answer
        return status, {k: v for k, v in headers.items() if k != "date"}, body

    assert without_date(first[0]) == without_date(second[0])
    assert first[0][0] == b"HTTP/1.1 302 Found"
    assert first[0][1]["location"] == "https://example.com/pricing?plan=pro"
    assert [h["kind"] for h in await s.hits()] == ["click", "click"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /o/x.gif HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
        b"GET /o/x.gif HTTP/9.9\r\nHost: a\r\n\r\n",
        b"GET /o/x.gif HTTP/1.1\nHost: a\n\n",  # bare LF lines: not ours, not buffered
    ],
)
async def test_malformed_requests_on_hot_paths_get_400(quick, request_bytes: bytes) -> None:
    answers = await asyncio.to_thread(_exchange, quick.base, request_bytes, 1)
    assert answers[0][0].startswith(b"HTTP/1.1 400")


async def test_a_pixel_request_with_a_body_goes_through_uvicorn_and_still_counts(
    quick, seeded_sqlite
) -> None:
    s = seeded_sqlite
    request = _get(f"/o/{s.token(Kind.OPEN)}.gif", "Content-Length: 5")[:-2] + b"\r\nhello"
    answers = await asyncio.to_thread(_exchange, quick.base, request, 1)
    assert answers[0][0] == b"HTTP/1.1 200 OK" and answers[0][2] == GIF
    assert len(await s.hits()) == 1


async def test_a_head_split_across_packets_and_a_huge_one(quick, seeded_sqlite) -> None:
    pixel = _get(f"/o/{seeded_sqlite.token(Kind.OPEN)}.gif")
    with _connect(quick.base) as sock:
        for i in range(0, len(pixel), 7):  # a slow client, a few bytes at a time
            sock.sendall(pixel[i : i + 7])
            await asyncio.sleep(0.001)
        [(status, _, body)] = await asyncio.to_thread(read_answers, sock, 1)
    assert status == b"HTTP/1.1 200 OK" and body == GIF
    huge = pixel[:-2] + b"X-Big: " + b"a" * 100_000
    answers = await asyncio.to_thread(_exchange, quick.base, huge, 1)
    assert answers[0][0].startswith(b"HTTP/1.1 431")
    whole = pixel[:-2] + b"User-Agent: " + b"a" * 100_000 + b"\r\n\r\n"  # complete, too
    answers = await asyncio.to_thread(_exchange, quick.base, whole, 1)
    assert answers[0][0].startswith(b"HTTP/1.1 431")
    assert len(await seeded_sqlite.hits()) == 1


@pytest.mark.parametrize(
    ("lines", "user_agent", "language"),
    [
        (["User-Agent: Mail/1.0", "Accept-Language: de-CH"], "Mail/1.0", "de-CH"),
        (["user-agent:Mail/2.0  ", "ACCEPT-LANGUAGE:\t fr "], "Mail/2.0", "fr"),
        (["X-User-Agent: not this", "Accept: image/*"], None, None),
        (["User-Agent: Outlook (x; y) ü".encode().decode("latin-1")], "Outlook (x; y) ü", None),
    ],
)
async def test_headers_are_read_alike_by_both_protocols(
    live, seeded_sqlite, lines: list[str], user_agent: str | None, language: str | None
) -> None:
    s = seeded_sqlite
    request = _get(f"/o/{s.token(Kind.OPEN)}.gif?utm=x", *lines, "Connection: Keep-Alive")
    request = request.decode().encode("latin-1")
    [(status, _, body)] = await asyncio.to_thread(_exchange, live.base, request, 1)
    assert status == b"HTTP/1.1 200 OK" and body == GIF
    [hit] = await s.hits()
    assert (hit["user_agent"], hit["accept_language"]) == (user_agent, language)


@pytest.mark.parametrize(
    "extra",
    ["Transfer-Encoding: chunked", "Upgrade: websocket", "Expect: 100-continue"],
)
async def test_heads_that_announce_more_go_to_uvicorn(quick, seeded_sqlite, extra: str) -> None:
    """A head the hot path does not answer itself still gets uvicorn's full answer."""
    request = _get(f"/o/{seeded_sqlite.token(Kind.OPEN)}.gif", extra)
    if extra.startswith("Transfer"):
        request += b"0\r\n\r\n"
    answers = await asyncio.to_thread(_exchange, quick.base, request, 1)
    assert answers[0][0] in (b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request")
    if answers[0][0].endswith(b"200 OK"):
        assert answers[0][2] == GIF and len(await seeded_sqlite.hits()) == 1
