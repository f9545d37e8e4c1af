"""The send-time simulation, small and fast: best-hour mail waits less to be opened."""

from __future__ import annotations

import random

from mailbeacon.delivery import send_time_sim as sim


def test_best_hour_mail_is_opened_sooner_after_delivery() -> None:
    gain = sim.compare(random.Random(16), readers=300)
    assert gain.openers > 100
    assert gain.best_hour_delay_h < 0.75 * gain.at_once_delay_h, gain.line()
    # Readers whose opens show are sent at their own hour; the rest fall back.
    assert 0.2 < gain.own_hour_share < 0.8


def test_a_reader_opens_at_the_first_check_after_delivery() -> None:
    r = sim.reader(random.Random(3))
    first, later = r.checks[0], r.checks[1]
    assert sim.first_check(r, first) == first
    assert sim.first_check(r, first + (later - first) / 2) == later
    assert sim.first_check(r, r.checks[-1] + (later - first)) is None


def test_invisible_readers_leave_no_history() -> None:
    rnd = random.Random(5)
    readers = [sim.reader(rnd, visible_share=0.0) for _ in range(20)]
    assert all(sim.history(rnd, r) == [] for r in readers)
