"""The forward and repeat-open rules on their own, and agents from arbitrary text."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.enrich.forwards import Reader, Readers
from mailbeacon.enrich.networks import network_of
from mailbeacon.enrich.repeats import FOLD_SECONDS, RepeatOpens
from mailbeacon.enrich.useragent import classify
from mailbeacon.enrich.verdict import Signals, judge

LEAD = Reader("81.2.69.0/24", "Outlook", "GB")

# (label, later reader, kind, forwarded?)
FORWARD_CASES = [
    ("same network, browser click", Reader("81.2.69.0/24", "Chrome", "GB"), "click", False),
    ("same network, other client", Reader("81.2.69.0/24", "Apple Mail", "GB"), "open", False),
    ("other network, same client", Reader("86.1.2.0/24", "Outlook", "GB"), "open", False),
    ("other network and client", Reader("86.1.2.0/24", "Thunderbird", "GB"), "open", True),
    ("other network and country", Reader("8.8.8.0/24", "Outlook", "US"), "open", True),
    ("click elsewhere, same country", Reader("86.1.2.0/24", "Chrome", "GB"), "click", False),
    ("click from another country", Reader("8.8.8.0/24", "Chrome", "US"), "click", True),
    ("no address", Reader(None, "Thunderbird", "US"), "open", False),
]


@pytest.mark.parametrize(("label", "reader", "kind", "forwarded"), FORWARD_CASES)
def test_forward_rule(label: str, reader: Reader, kind: str, forwarded: bool) -> None:
    readers = Readers()
    assert readers.observe(LEAD, "open") is False  # the first human reader is the lead
    assert readers.observe(reader, kind) is forwarded


def test_a_forward_recipient_stays_one() -> None:
    readers = Readers()
    readers.observe(LEAD, "open")
    assert readers.observe(Reader("8.8.8.0/24", "Thunderbird", "US"), "open")
    assert readers.observe(Reader("8.8.8.0/24", "Chrome", "GB"), "click")


def test_a_reader_who_moves_keeps_being_the_reader() -> None:
    readers = Readers()
    readers.observe(LEAD, "open")
    assert not readers.observe(Reader("86.1.2.0/24", "Outlook", "GB"), "open")  # at home
    assert not readers.observe(Reader("86.1.2.0/24", "Chrome", "GB"), "click")


T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


@pytest.mark.parametrize(
    ("verdict", "seconds", "folds"),
    [
        ("proxy", 5, True),
        ("prefetch", FOLD_SECONDS - 1, True),
        ("proxy", FOLD_SECONDS, False),
        ("human", 5, False),  # a person opening twice opened twice
    ],
)
def test_repeat_open_rule(verdict: str, seconds: float, folds: bool) -> None:
    repeats = RepeatOpens()
    source = ("66.249.84.12", "Gmail")
    assert not repeats.folds(source, T0, verdict)
    assert repeats.folds(source, T0 + dt.timedelta(seconds=seconds), verdict) is folds


def test_another_source_never_folds() -> None:
    repeats = RepeatOpens()
    assert not repeats.folds(("66.249.84.12", "Gmail"), T0, "proxy")
    assert not repeats.folds(("66.249.84.13", "Gmail"), T0, "proxy")


@settings(deadline=None)  # the first call loads ua-parser's rules
@given(st.text(max_size=300), st.sampled_from(["open", "click"]))
def test_any_agent_gets_a_verdict_with_a_reason(ua: str, kind: str) -> None:
    verdict = judge(classify(ua), network_of("81.2.69.160"), Signals(kind))
    assert verdict.name in ("human", "proxy", "prefetch", "scanner", "bot")
    assert verdict.reason
