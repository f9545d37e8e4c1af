"""Webhooks never reach inside the network they are sent from.

A rule's webhook URL is typed by a customer; unchecked, the server would POST wherever
it says: the cloud metadata service (169.254.169.254), the database, an admin port on
loopback. So before each attempt the host is resolved and every address it resolves to
must be a public one (`private_address`, which also names the culprit in the delivery
log). That check alone can be cheated: a DNS server the attacker runs answers the check
with a public address and the connection, a moment later, with a private one (DNS
rebinding). So the webhook client connects through `PublicOnlyBackend`, which resolves
once, checks those very addresses and connects to one of them: what was checked is what
is reached. TLS still verifies the certificate against the URL's host name.
`MAILBEACON_WEBHOOK_ALLOW_PRIVATE=1` lifts both for installations whose receivers are on
the private network (and for the tests' loopback receiver). Redirects are not followed
(see `stage.py`), so a public host cannot bounce us inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx


async def private_address(url: str) -> str | None:
    """The first non-public address `url`'s host resolves to, or None if all are public.
    A host that does not resolve is reported too (nothing to send to)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return "no host"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        return f"{host} does not resolve ({e})"
    return _first_private(str(info[4][0]) for info in infos)


def _first_private(addresses: Iterable[str]) -> str | None:
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        mapped = getattr(address, "ipv4_mapped", None)
        if not (mapped or address).is_global:
            return str(address)
    return None


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to the public addresses it resolved
    and checked itself (one lookup: nothing to rebind between check and connect)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as e:
            raise httpcore.ConnectError(f"{host} does not resolve ({e})") from e
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        inside = _first_private(addresses)
        if inside is not None:
            raise httpcore.ConnectError(f"refused: {host} leads to a non-public address ({inside})")
        error: Exception = httpcore.ConnectError(f"{host} does not resolve")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as e:  # the next address, as a resolver's list
                error = e
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def public_only_transport() -> httpx.AsyncHTTPTransport:
    """httpx's own transport (connection pool, TLS, error mapping) on `PublicOnlyBackend`.
    httpx 0.28 takes no network backend, so its pool is swapped for one that does; the
    tests prove the swap by a rebinding that would otherwise get through."""
    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=100,  # httpx's default limits
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=PublicOnlyBackend(),
    )
    return transport
