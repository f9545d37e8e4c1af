"""The reader's address: the TCP peer, or `X-Forwarded-For` behind a trusted proxy.

Only when the peer is one of `MAILBEACON_TRUSTED_PROXIES` is the header believed, and
then its rightmost address that is not itself a trusted proxy: everything to the left of
that was written by the client and can be forged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientAddress:
    def __init__(self, trusted: Iterable[Network]) -> None:
        self.trusted = tuple(trusted)
        self._peer_trusted: dict[str, bool] = {}  # peers are few; remember the verdict

    def _is_trusted(self, ip: Address) -> bool:
        return any(ip in net for net in self.trusted)

    def peer_is_trusted(self, peer: str) -> bool:
        known = self._peer_trusted.get(peer)
        if known is None:
            try:
                known = self._is_trusted(ipaddress.ip_address(peer))
            except ValueError:
                known = False
            if len(self._peer_trusted) > 4096:
                self._peer_trusted.clear()
            self._peer_trusted[peer] = known
        return known

    def __call__(self, peer: str | None, forwarded_for: bytes | None) -> str | None:
        if not self.trusted or peer is None or not forwarded_for:
            return peer
        if not self.peer_is_trusted(peer):
            return peer
        leftmost: str | None = None
        for part in reversed(forwarded_for.decode("latin-1").split(",")):
            try:
                ip = ipaddress.ip_address(part.strip())
            except ValueError:
                # The proxy chain wrote garbage: nothing left of it can be trusted.
                return leftmost or peer
            if not self._is_trusted(ip):
                return str(ip)
            leftmost = str(ip)
        return leftmost or peer
