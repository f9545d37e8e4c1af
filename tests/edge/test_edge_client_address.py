"""Whose address a hit records: the peer, unless a trusted proxy says otherwise."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx
import pytest
from edge_wire import read_answers

from mailbeacon.edge.client import ClientAddress
from mailbeacon.recorder import anonymize
from mailbeacon.settings import Settings
from mailbeacon.tokens import Kind

PROXIES = ClientAddress([ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.9", b"1.2.3.4", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", b"1.2.3.4", "1.2.3.4"),
        ("10.0.0.5", b"6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the left part is the client's word
        ("10.0.0.5", b"6.6.6.6, 1.2.3.4, 10.1.1.1", "1.2.3.4"),  # skip trusted hops
        ("10.0.0.5", b"10.9.9.9, 10.1.1.1", "10.9.9.9"),  # all proxies: the leftmost
        ("10.0.0.5", b"1.2.3.4, not-an-ip", "10.0.0.5"),  # garbage from the proxy chain
        ("::1", b"2001:db8::7", "2001:db8::7"),
        (None, b"1.2.3.4", None),
    ],
)
def test_client_address(peer, forwarded_for, client) -> None:
    assert PROXIES(peer, forwarded_for) == client


def test_no_trusted_proxies_never_reads_the_header() -> None:
    assert ClientAddress([])("10.0.0.5", b"1.2.3.4") == "10.0.0.5"


@pytest.mark.parametrize(
    ("ip", "kept"),
    [("203.0.113.77", "203.0.113.0"), ("2001:db8:1:2:3::9", "2001:db8:1::"), ("junk", None)],
)
def test_anonymize_keeps_the_network(ip: str, kept: str | None) -> None:
    assert anonymize(ip) == kept


@pytest.fixture
def edge_settings(edge_settings: Settings) -> Settings:
    """The conftest's settings, behind a proxy on loopback, keeping only networks."""
    return edge_settings.with_(
        trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),), anonymize_ip=True
    )


async def test_behind_a_trusted_proxy_the_forwarded_address_is_kept(live, seeded_sqlite) -> None:
    s = seeded_sqlite
    async with httpx.AsyncClient(base_url=live.base) as http:
        await http.get(
            f"/o/{s.token(Kind.OPEN)}.gif", headers={"x-forwarded-for": "6.6.6.6, 198.51.100.23"}
        )
    [hit] = await s.hits()
    assert hit["ip"] == "198.51.100.0"  # the reader's /24: anonymize_ip is on


async def test_forwarded_for_split_over_two_header_lines_is_one_list(live, seeded_sqlite) -> None:
    """RFC 9110: repeated lines of a list header are one list; the hot path's own head
    parsing must read them as uvicorn's parser does."""
    s = seeded_sqlite
    host, port = live.base.removeprefix("http://").split(":")
    request = (
        f"GET /o/{s.token(Kind.OPEN)}.gif HTTP/1.1\r\nHost: edge.test\r\n"
        "X-Forwarded-For: 6.6.6.6\r\nx-forwarded-for:\t198.51.100.23 \r\n\r\n"
    ).encode()

    def exchange() -> None:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(request)
            [(status, _, _)] = read_answers(sock, 1)
            assert status == b"HTTP/1.1 200 OK"

    await asyncio.to_thread(exchange)
    [hit] = await s.hits()
    assert hit["ip"] == "198.51.100.0"
