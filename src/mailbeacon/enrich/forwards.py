"""Forwards: is this human open or click the lead, or someone the email was sent on to?

The first human reader of a message is the lead. A later human event from a clearly
different reader is `forwarded`:

- an open from another network (/24, /48) *and* another mail client or another country;
- a click from another network *and* another country: a click opens in a browser, not
  in the mail client, so clients cannot be compared;
- a click or open from one of the reader's own networks is the reader (mail clients
  open links in the browser on the same network);
- proxy opens carry no reader identity: they neither set nor match a reader.

A reader seen again somewhere new with the same client and country (home, then office)
adds that network to theirs; once a network is judged another reader's, later events
from it are forwarded too.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Reader:
    network: str | None
    client: str | None
    country: str | None


@dataclass(slots=True)
class Readers:
    """The readers of one message seen so far (rebuilt from its events after a restart)."""

    lead_networks: set[str] = field(default_factory=set)
    lead_clients: set[str] = field(default_factory=set)
    lead_countries: set[str] = field(default_factory=set)
    other_networks: set[str] = field(default_factory=set)
    seen_lead: bool = False

    def observe(self, reader: Reader, kind: str) -> bool:
        """Record a human open/click; True when it is a forward recipient's."""
        if not self.seen_lead:
            self.seen_lead = True
            self._adopt(reader)
            return False
        if reader.network is None or reader.network in self.lead_networks:
            return False
        if reader.network in self.other_networks:
            return True
        other_country = bool(
            reader.country and self.lead_countries and reader.country not in self.lead_countries
        )
        other_client = bool(
            reader.client and self.lead_clients and reader.client not in self.lead_clients
        )
        forwarded = other_country or (kind == "open" and other_client)
        if forwarded:
            self.other_networks.add(reader.network)
        elif kind == "open":
            self._adopt(reader)
        else:
            self.lead_networks.add(reader.network)
        return forwarded

    def _adopt(self, reader: Reader) -> None:
        if reader.network:
            self.lead_networks.add(reader.network)
        if reader.client:
            self.lead_clients.add(reader.client)
        if reader.country:
            self.lead_countries.add(reader.country)
