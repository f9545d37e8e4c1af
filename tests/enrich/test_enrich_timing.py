"""Timing alone never makes a verdict: the judge's rule for early clicks, table by table.

The leads who click within seconds of delivery were waiting for the mail; a click from
the reader's own network with a browser or mail-client agent, one link at a time and not
the honeypot, is a person however soon it comes. Time since delivery is only named
beside another machine sign.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.enrich.networks import network_of
from mailbeacon.enrich.useragent import classify
from mailbeacon.enrich.verdict import Signals, judge

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"
HOME, AZURE, EOP = "81.2.69.160", "20.42.1.1", "104.47.30.1"


def click(seconds: float, **kw: object) -> Signals:
    return Signals("click", seconds_since_sent=seconds, **kw)  # type: ignore[arg-type]


# (label, agent, address, signals, verdict, reason)
CASES: list[tuple[str, str | None, str, Signals, str, str]] = [
    (
        "own network, browser, 2 s",
        CHROME_WIN,
        HOME,
        click(2.0),
        "human",
        "no machine signs: Chrome from the reader's own network, one link at a time; "
        "clicked 2 s after delivery, which alone proves nothing",
    ),
    (
        "own network, mail client, 0 s",
        OUTLOOK,
        HOME,
        click(0.2),
        "human",
        "no machine signs: Outlook from the reader's own network, one link at a time; "
        "clicked 0 s after delivery, which alone proves nothing",
    ),
    (
        "own network, later",
        SAFARI_IOS,
        HOME,
        click(600.0),
        "human",
        "no machine signs: Mobile Safari from the reader's own network, one link at a time",
    ),
    (
        "two links in a row is not a burst",
        CHROME_WIN,
        HOME,
        click(1.0, burst_links=2),
        "human",
        "no machine signs: Chrome from the reader's own network, one link at a time; "
        "clicked 1 s after delivery, which alone proves nothing",
    ),
    (
        "the reader who opened clicks",
        CHROME_WIN,
        HOME,
        click(4.0, opened_here=("Windows",)),
        "human",
        "Chrome click from the address on Windows that opened this message as a person",
    ),
    (
        "cloud, early: the address decides, timing is named",
        CHROME_WIN,
        AZURE,
        click(3.0),
        "scanner",
        "from a cloud datacenter network (Microsoft Azure), 3 s after delivery",
    ),
    (
        "cloud, late",
        CHROME_WIN,
        AZURE,
        click(900.0),
        "scanner",
        "from a cloud datacenter network (Microsoft Azure)",
    ),
    (
        "security gateway, early",
        CHROME_WIN,
        EOP,
        click(1.0),
        "scanner",
        "from a mail security gateway network (Microsoft Exchange Online Protection), "
        "1 s after delivery",
    ),
    (
        "library agent, early",
        "python-requests/2.31.0",
        HOME,
        click(1.0),
        "bot",
        "user agent is an HTTP library (Python), 1 s after delivery",
    ),
    (
        "no agent, early",
        None,
        HOME,
        click(2.0),
        "bot",
        "user agent is no user agent: people's mail clients send one, 2 s after delivery",
    ),
    (
        "burst, early",
        CHROME_WIN,
        HOME,
        click(1.0, burst_links=3),
        "scanner",
        "3 links clicked within 2 s from one address, 1 s after delivery",
    ),
    (
        "honeypot from the reader's network",
        CHROME_WIN,
        HOME,
        click(1.0, link_kind="honeypot", opened_here=("Windows",)),
        "bot",
        "clicked the hidden honeypot link, which no person can see",
    ),
    (
        "the opener's address in a burst",
        CHROME_WIN,
        HOME,
        click(1.0, burst_links=4, opened_here=("Windows",)),
        "scanner",
        "4 links clicked within 2 s from one address, 1 s after delivery",
    ),
    (
        "the opener vouches even from a cloud",
        CHROME_WIN,
        AZURE,
        click(2.0, opened_here=("Windows",)),
        "human",
        "Chrome click from the address on Windows that opened this message as a person",
    ),
    (
        "another system on the opener's cloud address",
        SAFARI_IOS,
        AZURE,
        click(2.0, opened_here=("Windows",)),
        "scanner",
        "from a cloud datacenter network (Microsoft Azure), 2 s after delivery",
    ),
    (
        "a library on the opener's address",
        "curl/8.4.0",
        HOME,
        click(200.0, opened_here=("Windows",)),
        "bot",
        "user agent is an HTTP library (curl)",
    ),
    (
        "one-click unsubscribe from a cloud, no agent",
        None,
        AZURE,
        Signals("unsubscribe", method="POST", seconds_since_sent=5.0),
        "human",
        "unsubscribe authorised by its signed token, whoever carried it (here a machine: "
        "user agent is no user agent: people's mail clients send one; mailbox providers "
        "send one-click unsubscribes from their servers)",
    ),
    (
        "unsubscribe by the reader",
        CHROME_WIN,
        HOME,
        Signals("unsubscribe", method="POST"),
        "human",
        "unsubscribe authorised by its signed token",
    ),
]


@pytest.mark.parametrize(
    ("label", "ua", "ip", "signals", "verdict", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_timing_rule(
    label: str, ua: str | None, ip: str, signals: Signals, verdict: str, reason: str
) -> None:
    judged = judge(classify(ua), network_of(ip), signals)
    assert (judged.name, judged.reason) == (verdict, reason)


def test_only_an_unsubscribe_carried_by_a_machine_is_relayed() -> None:
    carried = judge(classify(None), network_of(AZURE), Signals("unsubscribe", method="POST"))
    own = judge(classify(CHROME_WIN), network_of(HOME), Signals("unsubscribe", method="POST"))
    assert (carried.relayed, own.relayed) == (True, False)


AGENTS = [None, CHROME_WIN, SAFARI_IOS, OUTLOOK, "curl/8.4.0", "Mozilla/5.0", "Barracuda"]
ADDRESSES = [HOME, AZURE, EOP, "17.58.101.4", "66.249.84.12", "2a02:c7c:1234::5"]


@settings(deadline=None, max_examples=300)
@given(
    ua=st.one_of(st.sampled_from(AGENTS), st.text(max_size=80)),
    ip=st.sampled_from(ADDRESSES),
    kind=st.sampled_from(["open", "click", "unsubscribe"]),
    seconds=st.floats(min_value=0, max_value=100_000),
    burst=st.integers(min_value=1, max_value=5),
    honeypot=st.booleans(),
    opened_here=st.sampled_from([(), ("Windows",), ("iOS",), (None,)]),
)
def test_time_since_delivery_never_changes_a_verdict(
    ua: str | None,
    ip: str,
    kind: str,
    seconds: float,
    burst: int,
    honeypot: bool,
    opened_here: tuple[str | None, ...],
) -> None:
    agent, net = classify(ua), network_of(ip)
    base = Signals(kind, burst_links=burst, burst_honeypot=honeypot, opened_here=opened_here)
    timed = Signals(
        kind,
        seconds_since_sent=seconds,
        burst_links=burst,
        burst_honeypot=honeypot,
        opened_here=opened_here,
    )
    assert judge(agent, net, timed).name == judge(agent, net, base).name
