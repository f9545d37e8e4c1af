"""Human or machine: the verdict on one hit, with the reason in words.

Signals are weighed in this order (docs/tracking.md tells it to marketers):

1. Decisive machine signs, whatever else the hit shows: the hidden honeypot link (or the
   same source clicking it in the same burst) -> `bot`; an empty agent, an HTTP library,
   a crawler or a headless browser -> `bot`; a HEAD probe, a scanner naming itself, or
   `BURST_LINKS` distinct links within `BURST_SECONDS` -> `scanner`.
2. The reader vouched for: a click from the network and the operating system of a human
   open of the same message, with a mail client's or a browser's agent, is `human`.
3. Machine networks: a mail security gateway or a cloud datacenter -> `scanner`.
4. Mail providers' networks for opens: Gmail/Yahoo image proxies -> `proxy` (counts as
   a human open; place and device are the proxy's), Apple's -> `prefetch` (Mail Privacy
   Protection).
5. Everything else is `human`: a click from the reader's own network with a browser or
   mail-client agent is a person however soon after delivery.

Time since delivery is never a sign by itself: the leads who click within seconds were
waiting for the mail. It is only named in the reason of a hit already judged a machine
on another sign (an empty or library agent, a burst, a datacenter address).

An unsubscribe is authorised by its signed token (the edge records one only after a
valid token unsubscribed the lead), so it is always the lead's: `human`, `relayed` when
a machine carried it (RFC 8058 one-click POSTs come from the mailbox provider's servers).

Pure: the burst, delivery and earlier-open facts are gathered by the pipeline.
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
# Gateways follow links while the message is being delivered. Only a hit that already
# shows another machine sign is called early; timing alone decides nothing.
EARLY_CLICK_SECONDS = 10.0
# The agents people read and click with (Apple Mail's WebKit agent included: the
# address, not the agent, tells Mail Privacy Protection apart).
READER_AGENTS: frozenset[str] = frozenset({"mail", "browser", "apple_webkit"})
UNSUBSCRIBE_REASON = "unsubscribe authorised by its signed token"


@dataclass(frozen=True, slots=True)
class Signals:
    """What the pipeline knows about a hit beyond its agent and address."""

    kind: str  # open|click|unsubscribe|forward
    method: str = "GET"
    link_kind: str | None = None  # link|unsubscribe|honeypot|forward, for clicks
    seconds_since_sent: float | None = None
    burst_links: int = 1  # distinct links this source clicked within BURST_SECONDS
    burst_honeypot: bool = False  # this source clicked the honeypot in that burst
    # The operating systems (None: unknown) of the human opens of this message made
    # from this hit's network (/24, /48): the reader who opened it, clicking now.
    opened_here: tuple[str | None, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    name: VerdictName
    reason: str
    # A machine carried it on the reader's behalf (a one-click unsubscribe): the place,
    # device and OS it shows are the machine's, not the reader's.
    relayed: bool = False

    @property
    def counts_as_human(self) -> bool:
        return self.name in COUNTS_AS_HUMAN


def _early(s: Signals) -> str:
    """', N s after delivery' for an early click, to add to a machine verdict's reason."""
    since = s.seconds_since_sent
    if s.kind == "click" and since is not None and 0 <= since < EARLY_CLICK_SECONDS:
        return f", {since:.0f} s after delivery"
    return ""


def _decisive(agent: Agent, s: Signals) -> Verdict | None:
    """Signs that make a machine whatever else the hit shows (step 1)."""
    if s.link_kind == "honeypot":
        return Verdict("bot", "clicked the hidden honeypot link, which no person can see")
    if s.burst_honeypot:
        return Verdict("bot", "the same source clicked the hidden honeypot link in this burst")
    if agent.kind == "bot":
        return Verdict("bot", f"user agent is {agent.why}{_early(s)}")
    if s.method == "HEAD":
        return Verdict("scanner", "HEAD probe: link checkers test links without opening them")
    if agent.kind == "scanner":
        return Verdict("scanner", agent.why)
    if s.kind == "click" and s.burst_links >= BURST_LINKS:
        return Verdict(
            "scanner",
            f"{s.burst_links} links clicked within {BURST_SECONDS:g} s from one address"
            + _early(s),
        )
    return None


def _machine_network(agent: Agent, net: Network | None, s: Signals) -> Verdict | None:
    """Security gateways and clouds (step 3); a proxy's agent is judged as a proxy."""
    if net is None or net.kind not in ("security", "datacenter") or agent.kind == "proxy":
        return None
    what = "a mail security gateway" if net.kind == "security" else "a cloud datacenter"
    return Verdict("scanner", f"from {what} network ({net.operator}){_early(s)}")


def _vouched(agent: Agent, s: Signals) -> Verdict | None:
    """A click by the reader who opened it from here (step 2)."""
    if s.kind != "click" or agent.kind not in READER_AGENTS or not s.opened_here:
        return None
    if not any(os is None or agent.os is None or os == agent.os for os in s.opened_here):
        return None
    where = f" on {agent.os}" if agent.os else ""
    return Verdict(
        "human",
        f"{agent.client or 'a reader'} click from the address{where} that opened "
        "this message as a person",
    )


def _unsubscribe(agent: Agent, net: Network | None, s: Signals) -> Verdict:
    carrier = _decisive(agent, s) or _machine_network(agent, net, s)
    if carrier is None:
        return Verdict("human", UNSUBSCRIBE_REASON)
    return Verdict(
        "human",
        f"{UNSUBSCRIBE_REASON}, whoever carried it (here a machine: {carrier.reason}; "
        "mailbox providers send one-click unsubscribes from their servers)",
        relayed=True,
    )


def _human(agent: Agent, net: Network | None, s: Signals) -> Verdict:
    who = f": {agent.client}" if agent.client else ""
    if s.kind != "click" or agent.kind not in READER_AGENTS or net is not None:
        return Verdict("human", f"no machine signs{who}")
    reason = f"no machine signs{who} from the reader's own network, one link at a time"
    since = s.seconds_since_sent
    if since is not None and 0 <= since < EARLY_CLICK_SECONDS:
        reason += f"; clicked {since:.0f} s after delivery, which alone proves nothing"
    return Verdict("human", reason)


def judge(agent: Agent, net: Network | None, s: Signals) -> Verdict:
    """The verdict on one hit."""
    if s.kind == "unsubscribe":
        return _unsubscribe(agent, net, s)
    settled = _decisive(agent, s) or _vouched(agent, s) or _machine_network(agent, net, s)
    if settled is not None:
        return settled
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
    return _human(agent, net, s)
