"""Personal data in tracking rows: the one way a reader's address is cut to its network,
and which companies ask for it.

An IP address is personal data. A company that turns on "anonymise at capture" gets
only the reader's /24 (IPv4) or /48 (IPv6): enough for the place, forward detection and
scanner networks, not enough to name a household. The edge applies `anonymize` before
a hit is ever written (edge.privacy keeps the set of such companies, refreshed from
`anonymizing_companies`); enrichment applies it again to events, so a hit captured in
the few seconds before the edge heard of a change still yields an anonymous event.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store.schema import companies

IPV4_PREFIX = 24
IPV6_PREFIX = 48


def reader_block(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The network an address is cut to: its /24 (IPv4) or /48 (IPv6). Enrichment
    compares readers by it (enrich.networks), so it must be what `anonymize` keeps."""
    prefix = IPV4_PREFIX if addr.version == 4 else IPV6_PREFIX
    return ipaddress.ip_network(f"{addr}/{prefix}", strict=False)


def anonymize(ip: str | None) -> str | None:
    """Keep the network, drop the host: a /24 of IPv4, a /48 of IPv6.

    Something that is not an address at all is dropped (None): it cannot be cut, and
    keeping it whole could keep whatever it is.
    """
    if not ip:
        return ip
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return str(reader_block(addr).network_address)


async def anonymizing_companies(conn: AsyncConnection) -> frozenset[int]:
    """The ids of every company that anonymises addresses at capture."""
    rows = await conn.execute(select(companies.c.id).where(companies.c.anonymize_ip.is_(True)))
    return frozenset(int(r.id) for r in rows)
