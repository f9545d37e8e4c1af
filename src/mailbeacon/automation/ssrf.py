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

An IPv6 address can carry an IPv4 one (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible
::a.b.c.d, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32), and
a gateway on the way may deliver it there: such an address is public only if the IPv4
address it carries is too (`ipaddress` calls most of these forms global). IPv4 also has
spellings a resolver accepts without DNS (2130706433, 0x7f.1, 017700000001, 127.1):
`literal_private` reads them as the resolver does, so the API can refuse a rule whose
URL names a private address at once, before any delivery is attempted.
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


def literal_private(url: str) -> str | None:
    """The non-public address `url`'s host names if it is an address literal, in any
    spelling the resolver takes without DNS (dotted, decimal, octal, hex, IPv6); None
    for a public literal or a host name (names are checked when the webhook is sent)."""
    host = urlsplit(url).hostname
    if not host:
        return "no host"
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return None  # a name: not an address
    return _first_private(str(info[4][0]) for info in infos)


# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use) and the IPv4-compatible block.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_COMPATIBLE = ipaddress.IPv6Network("::/96")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global, not multicast, and, for an IPv6 address carrying an IPv4 one, that IPv4
    address public too."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:  # the IPv4 address sits where the operator chose
            return False
        carried = _carried_ipv4(address)
        return carried is None or is_public(carried)
    return True


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client, which the relay delivers to
    if address in _NAT64 or address in _COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _first_private(addresses: Iterable[str]) -> str | None:
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not is_public(address):
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


def public_only_transport(limits: httpx.Limits | None = None) -> httpx.AsyncHTTPTransport:
    """httpx's own transport (connection pool, TLS, error mapping) on `PublicOnlyBackend`.
    httpx 0.28 takes no network backend, so its pool is swapped for one that does; the
    tests prove the swap by a rebinding that would otherwise get through."""
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,  # httpx's default limits unless given
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry or 5.0,
        network_backend=PublicOnlyBackend(),
    )
    return transport
