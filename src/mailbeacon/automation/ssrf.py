"""Webhooks never reach inside the network they are sent from.

A rule's webhook URL is typed by a customer; unchecked, the server would POST wherever
it says: the cloud metadata service (169.254.169.254), the database, an admin port on
loopback. So before each attempt the host is resolved and every address it resolves to
must be a public one. `MAILBEACON_WEBHOOK_ALLOW_PRIVATE=1` lifts this for installations
whose receivers are on the private network (and for the tests' loopback receiver).
Redirects are not followed (see `stage.py`), so a public host cannot bounce us inside.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


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
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        mapped = getattr(address, "ipv4_mapped", None)
        if not (mapped or address).is_global:
            return str(address)
    return None
