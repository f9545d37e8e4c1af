"""Known networks: mail proxies, Apple's privacy prefetchers, security gateways, clouds.

A short, hand-kept table (from the operators' published ranges) rather than an ASN
database: it only has to recognise the handful of networks that change a verdict.
Lookups are cached by address string; the table is a sorted list of integer ranges per
address family, searched with bisect.
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from mailbeacon.store.privacy import reader_block

NetKind = Literal["google_proxy", "yahoo_proxy", "apple", "security", "datacenter"]

# (cidr, kind, operator). Ranges overlap only between clouds and the others.
_TABLE: tuple[tuple[str, NetKind, str], ...] = (
    # Gmail's image proxy fetches from Google's ranges.
    ("66.102.0.0/20", "google_proxy", "Google"),
    ("66.249.80.0/20", "google_proxy", "Google"),
    ("74.125.0.0/16", "google_proxy", "Google"),
    ("64.233.160.0/19", "google_proxy", "Google"),
    ("72.14.192.0/18", "google_proxy", "Google"),
    ("209.85.128.0/17", "google_proxy", "Google"),
    ("2a00:1450::/32", "google_proxy", "Google"),
    ("2607:f8b0::/32", "google_proxy", "Google"),
    # Yahoo and AOL mail image proxies.
    ("98.136.0.0/14", "yahoo_proxy", "Yahoo"),
    ("74.6.0.0/16", "yahoo_proxy", "Yahoo"),
    ("66.196.64.0/18", "yahoo_proxy", "Yahoo"),
    ("87.248.96.0/19", "yahoo_proxy", "Yahoo"),
    ("106.10.0.0/16", "yahoo_proxy", "Yahoo"),
    ("2001:4998::/32", "yahoo_proxy", "Yahoo"),
    # Apple: Mail Privacy Protection prefetches from Apple's own network.
    ("17.0.0.0/8", "apple", "Apple"),
    ("2620:149::/32", "apple", "Apple"),
    ("2a01:b740::/32", "apple", "Apple"),
    # Security gateways that follow links before people do.
    ("40.92.0.0/15", "security", "Microsoft Exchange Online Protection"),
    ("40.107.0.0/16", "security", "Microsoft Exchange Online Protection"),
    ("52.100.0.0/14", "security", "Microsoft Exchange Online Protection"),
    ("104.47.0.0/17", "security", "Microsoft Exchange Online Protection"),
    ("148.163.128.0/19", "security", "Proofpoint"),
    ("67.231.144.0/20", "security", "Proofpoint"),
    ("205.139.110.0/24", "security", "Mimecast"),
    ("207.211.30.0/24", "security", "Mimecast"),
    ("91.220.42.0/24", "security", "Mimecast"),
    ("64.235.144.0/20", "security", "Barracuda"),
    ("209.222.80.0/21", "security", "Barracuda"),
    ("216.71.128.0/19", "security", "Cisco IronPort"),
    # Clouds: people do not read mail from here, link checkers do.
    ("3.0.0.0/9", "datacenter", "Amazon AWS"),
    ("18.128.0.0/9", "datacenter", "Amazon AWS"),
    ("34.0.0.0/9", "datacenter", "Google Cloud"),
    ("35.184.0.0/13", "datacenter", "Google Cloud"),
    ("13.64.0.0/11", "datacenter", "Microsoft Azure"),
    ("20.0.0.0/8", "datacenter", "Microsoft Azure"),
    ("40.64.0.0/10", "datacenter", "Microsoft Azure"),
    ("52.96.0.0/12", "datacenter", "Microsoft Azure"),
    ("104.40.0.0/13", "datacenter", "Microsoft Azure"),
    ("138.68.0.0/16", "datacenter", "DigitalOcean"),
    ("159.65.0.0/16", "datacenter", "DigitalOcean"),
    ("167.99.0.0/16", "datacenter", "DigitalOcean"),
    ("5.9.0.0/16", "datacenter", "Hetzner"),
    ("88.198.0.0/16", "datacenter", "Hetzner"),
    ("51.68.0.0/16", "datacenter", "OVH"),
    ("2600:1f00::/24", "datacenter", "Amazon AWS"),
)


@dataclass(frozen=True, slots=True)
class Network:
    kind: NetKind
    operator: str


_Index = dict[int, tuple[list[int], list[tuple[int, Network]]]]


def _build(clouds: bool) -> _Index:
    rows: dict[int, list[tuple[int, int, Network]]] = {4: [], 6: []}
    for cidr, kind, operator in _TABLE:
        if (kind == "datacenter") != clouds:
            continue
        net = ipaddress.ip_network(cidr)
        rows[net.version].append(
            (int(net.network_address), int(net.broadcast_address), Network(kind, operator))
        )
    index: _Index = {}
    for version, entries in rows.items():
        # Within one group no ranges overlap, so sorting by start is enough for bisect.
        entries.sort(key=lambda e: e[0])
        index[version] = ([e[0] for e in entries], [(e[1], e[2]) for e in entries])
    return index


# Specific operators first: a security gateway's range may sit inside a cloud's.
_INDEXES = (_build(clouds=False), _build(clouds=True))


def parse_ip(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address, or None for a missing or malformed one (hits are untrusted input)."""
    if not ip:
        return None
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Address:
    """All an address tells us, worked out once per distinct address."""

    known: Network | None  # a network from the table, if any
    block: str  # the reader's /24 or /48, for forward detection
    is_global: bool  # private, loopback, link-local... have no place


def _known(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Network | None:
    value = int(addr)
    for index in _INDEXES:
        starts, ends = index[addr.version]
        i = bisect.bisect_right(starts, value) - 1
        if i >= 0 and value <= ends[i][0]:
            return ends[i][1]
    return None


@lru_cache(maxsize=262144)
def address(ip: str | None) -> Address | None:
    """What the address is (cached by address string: readers and proxies repeat)."""
    addr = parse_ip(ip)
    if addr is None:
        return None
    # A reader's network: the /24 (IPv4) or /48 (IPv6). Forward detection compares these
    # rather than whole addresses: a home's or an office's address moves within its
    # block, and anonymised addresses keep it (the same cut as `anonymize`).
    block = str(reader_block(addr))
    return Address(_known(addr), block, addr.is_global)


def network_of(ip: str | None) -> Network | None:
    """The known network an address belongs to, or None."""
    a = address(ip)
    return a.known if a else None


def reader_network(ip: str | None) -> str | None:
    """A reader's network block (see `address`), or None."""
    a = address(ip)
    return a.block if a else None
