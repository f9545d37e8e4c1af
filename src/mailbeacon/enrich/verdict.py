"""Human or machine: the verdict on one hit, with the reason in words.

- `bot`: honeypot clicks (and the same source's other clicks in that burst), crawlers,
  HTTP libraries, headless browsers, no user agent at all.
- `scanner`: security gateways and link checkers: HEAD probes, several links clicked
  within `BURST_SECONDS`, clicks within `EARLY_CLICK_SECONDS` of delivery, gateway and
  cloud networks, scanners that name themselves.
- `prefetch`: Apple Mail Privacy Protection: Apple's network loading the pixel, whatever
  agent it shows (its prefetcher uses Apple Mail's generic WebKit agent).
- `proxy`: a mailbox provider's image proxy fetching when the reader opens (Gmail,
  Yahoo/AOL). Counts as a human open; place and device are the proxy's, so unknown.
- `human`: everything else. Too strict is as wrong as too loose: a person reading
  through a proxy, on Apple Mail without privacy protection or in webmail stays human.

Pure: the burst and delivery facts are gathered by the pipeline and passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailbeacon.enrich.networks import Network
from mailbeacon.enrich.useragent import Agent

VerdictName = Literal["human", "proxy", "prefetch", "scanner", "bot"]
COUNTS_AS_HUMAN: frozenset[str] = frozenset({"human", "proxy"})

# Scanners open every link of a message at once; a person returns to the mail between
# clicks. Three distinct links inside two seconds is a machine.
BURST_SECONDS = 2.0
BURST_LINKS = 3
# Gateways follow links while the message is being delivered; no one reads that fast.
EARLY_CLICK_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Signals:
    """What the pipeline knows about a hit beyond its agent and address."""

    kind: str  # open|click|unsubscribe|forward
    method: str = "GET"
    link_kind: str | None = None  # link|unsubscribe|honeypot|forward, for clicks
    seconds_since_sent: float | None = None
    burst_links: int = 1  # distinct links this source clicked within BURST_SECONDS
    burst_honeypot: bool = False  # this source clicked the honeypot in that burst


@dataclass(frozen=True, slots=True)
class Verdict:
    name: VerdictName
    reason: str

    @property
    def counts_as_human(self) -> bool:
        return self.name in COUNTS_AS_HUMAN


def _machine(agent: Agent, net: Network | None, s: Signals) -> Verdict | None:
    if s.link_kind == "honeypot":
        return Verdict("bot", "clicked the hidden honeypot link, which no person can see")
    if s.burst_honeypot:
        return Verdict("bot", "the same source clicked the hidden honeypot link in this burst")
    if agent.kind == "bot":
        return Verdict("bot", f"user agent is {agent.why}")
    if s.method == "HEAD":
        return Verdict("scanner", "HEAD probe: link checkers test links without opening them")
    if agent.kind == "scanner":
        return Verdict("scanner", agent.why)
    if s.kind == "click" and s.burst_links >= BURST_LINKS:
        return Verdict(
            "scanner",
            f"{s.burst_links} links clicked within {BURST_SECONDS:g} s from one address",
        )
    if (
        s.kind == "click"
        and s.seconds_since_sent is not None
        and 0 <= s.seconds_since_sent < EARLY_CLICK_SECONDS
    ):
        return Verdict(
            "scanner", f"clicked {s.seconds_since_sent:.0f} s after delivery, before anyone reads"
        )
    if net is not None and net.kind in ("security", "datacenter") and agent.kind != "proxy":
        what = "a mail security gateway" if net.kind == "security" else "a cloud datacenter"
        return Verdict("scanner", f"from {what} network ({net.operator})")
    return None


def judge(agent: Agent, net: Network | None, s: Signals) -> Verdict:
    """The verdict on one hit."""
    machine = _machine(agent, net, s)
    if machine is not None:
        return machine
    if agent.kind == "proxy":
        return Verdict("proxy", f"{agent.client} image proxy fetched it as the reader opened")
    if net is not None and net.kind in ("google_proxy", "yahoo_proxy") and s.kind == "open":
        # The proxy's address with an agent it does not usually send: still the proxy.
        return Verdict(
            "proxy", f"{net.operator} mail proxy network fetched it as the reader opened"
        )
    if net is not None and net.kind == "apple" and s.kind == "open":
        return Verdict(
            "prefetch",
            "Apple Mail Privacy Protection: Apple's network loads images on delivery"
            + (" (generic WebKit agent)" if agent.kind == "apple_webkit" else ""),
        )
    if agent.client:
        return Verdict("human", f"no machine signs: {agent.client}")
    return Verdict("human", "no machine signs")
