"""The sender's own HTTP/1.1 lanes against real sockets: keep-alive, the answer's
framings, a kept connection the server closed, timeouts, and the SSRF guard."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from mailbeacon.automation.event_http import Lane
from mailbeacon.automation.event_lanes import Lanes

Reply = Callable[[int], bytes | None]  # the n-th request (from 0) -> raw answer, or None


class Server:
    """A raw HTTP/1.1 server answering each request with `reply(n)`; counts connections
    and keeps the bodies it read."""

    def __init__(self, reply: Reply, close_after_answer: bool = False) -> None:
        self.reply, self.close_after = reply, close_after_answer
        self.connections, self.bodies = 0, []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = next(int(line.split(":")[1]) for line in head.split("\r\n")
                              if line.lower().startswith("content-length"))  # fmt: skip
                self.bodies.append(await reader.readexactly(length))
                answer = self.reply(len(self.bodies) - 1)
                if answer is None:
                    await asyncio.sleep(30)  # never answers
                if answer == b"":
                    break  # closes as the request arrives, as an idle timeout does
                writer.write(answer or b"")
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future]]:
    servers: list[asyncio.Server] = []

    async def start(server: Server) -> str:
        s = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(s)
        return f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}/hook?x=1"

    yield start
    for s in servers:
        s.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"


async def test_one_kept_connection_carries_many_posts_whatever_the_framing(serve) -> None:
    server = Server(lambda n: [OK, CHUNKED, b"HTTP/1.1 100 Continue\r\n\r\n" + OK][n % 3])
    url = await serve(server)
    lane = Lane(5, allow_private=True, tls=httpx.create_ssl_context())
    codes = [(await lane.post(url, content=b"{%d}" % i, headers={})).status_code for i in range(6)]
    assert codes == [200, 201, 200, 200, 201, 200]
    assert server.connections == 1 and server.bodies[4] == b"{4}"
    assert (await lane.post(url + "/ä", content=b"x", headers={})).status_code == 200
    lane.close()


async def test_a_kept_connection_the_server_closed_is_replaced_without_losing_the_post(
    serve,
) -> None:
    server = Server(lambda n: OK, close_after_answer=True)  # closes without saying so
    url = await serve(server)
    lane = Lane(5, allow_private=True, tls=httpx.create_ssl_context())
    for i in range(3):
        await asyncio.sleep(0.05)  # the close reaches us, or not: both must work
        assert (await lane.post(url, content=b"%d" % i, headers={})).status_code == 200
    assert server.bodies == [b"0", b"1", b"2"] and server.connections == 3
    lane.close()


async def test_a_kept_connection_closed_as_the_request_arrives_is_retried_once(serve) -> None:
    server = Server(lambda n: b"" if n == 1 else OK)
    url = await serve(server)
    lane = Lane(5, allow_private=True, tls=httpx.create_ssl_context())
    for i in range(2):
        assert (await lane.post(url, content=b"%d" % i, headers={})).status_code == 200
    assert server.bodies == [b"0", b"1", b"1"] and server.connections == 2
    lane.close()


async def test_http_1_0_and_connection_close_answers_are_not_kept(serve) -> None:
    answers = [b"HTTP/1.0 204 No Content\r\n\r\n", b"HTTP/1.1 500 Oops\r\nConnection: close\r\n"
               b"Content-Length: 0\r\n\r\n"]  # fmt: skip
    server = Server(lambda n: answers[n % 2], close_after_answer=True)
    url = await serve(server)
    lane = Lane(5, allow_private=True, tls=httpx.create_ssl_context())
    codes = [(await lane.post(url, content=b"x", headers={})).status_code for _ in range(4)]
    assert codes == [204, 500, 204, 500] and lane.idle.get(("http", "127.0.0.1", int(
        url.split(":")[2].split("/")[0]))) in (None, [])  # fmt: skip


async def test_a_receiver_that_never_answers_times_out(serve) -> None:
    url = await serve(Server(lambda n: None))
    lane = Lane(0.3, allow_private=True, tls=httpx.create_ssl_context())
    with pytest.raises(httpx.TimeoutException):
        await lane.post(url, content=b"x", headers={})


async def test_non_public_addresses_are_refused_at_connect_unless_allowed(serve) -> None:
    server = Server(lambda n: OK)
    url = await serve(server)
    async with Lanes(4, timeout=5, allow_private=False) as lanes:
        with pytest.raises(httpx.ConnectError, match=r"refused: 127\.0\.0\.1 .*non-public"):
            await lanes.of(7).post(url, content=b"x", headers={})
        with pytest.raises(httpx.ConnectError, match=r"refused: localhost .*non-public"):
            await lanes.of(7).post(url.replace("127.0.0.1", "localhost"), content=b"x", headers={})
    assert server.connections == 0
    async with Lanes(4, timeout=5, allow_private=True) as lanes:
        assert (await lanes.of(7).post(url, content=b"x", headers={})).status_code == 200


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl, as a receiver's admin makes one)."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = str(folder / "key.pem"), str(folder / "cert.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
         cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_verifies_the_receiver_certificate(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    server = Server(lambda n: OK)
    tls_server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_server.load_cert_chain(cert, key)
    s = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls_server)
    url = f"https://127.0.0.1:{s.sockets[0].getsockname()[1]}/hook"
    try:
        trusting = Lane(5, allow_private=True, tls=ssl.create_default_context(cafile=cert))
        for _ in range(2):
            assert (await trusting.post(url, content=b"x", headers={})).status_code == 200
        assert server.connections == 1
        trusting.close()
        stranger = Lane(5, allow_private=True, tls=httpx.create_ssl_context())
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.post(url, content=b"x", headers={})
    finally:
        s.close()
