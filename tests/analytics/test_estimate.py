"""The estimated true open rate from counts: the arithmetic, table by table."""

from __future__ import annotations

from mailbeacon.analytics.estimate import Counts, counts_from_groups, estimate_open_rate


def test_groups_become_counts_and_leads_without_a_row_are_unseen() -> None:
    groups = [
        (True, False, False, 40),  # visible openers who did not click
        (True, True, True, 10),  # visible and clicked (a prefetch as well: still visible)
        (False, False, True, 30),  # privacy-protected
        (False, True, True, 3),  # prefetched, then clicked: an inferred opener
        (False, True, False, 2),  # images off, clicked
        (False, False, False, 5),  # a scanner's open only
    ]
    c = counts_from_groups(100, groups)
    assert c == Counts(
        sent=100,
        visible=50,
        visible_clicked=10,
        prefetched=33,
        prefetched_clicked=3,
        unseen=17,
        unseen_clicked=2,
    )
    assert c.privacy_protected == 30
    assert c.observed == 55  # the report's human_opens_unique


def test_every_open_visible_gives_the_observed_rate_exactly() -> None:
    est = estimate_open_rate(Counts(sent=10, visible=4, visible_clicked=1))
    # 6 recipients left are unseen: the estimate still has to say how many of them opened
    assert est.low >= 0.4 and est.high <= 1.0
    all_seen = estimate_open_rate(Counts(sent=4, visible=4, visible_clicked=1))
    assert (all_seen.rate, all_seen.low, all_seen.high, all_seen.reliable) == (1.0, 1.0, 1.0, True)


def test_hidden_clickers_over_the_propensity_reveal_hidden_openers() -> None:
    # 1 visible opener in 5 clicks; 40 of 1000 privacy-protected clicked -> about 200 opened
    c = Counts(
        sent=2000,
        visible=500,
        visible_clicked=100,
        prefetched=1000,
        prefetched_clicked=40,
        unseen=500,
        unseen_clicked=10,
    )
    est = estimate_open_rate(c)
    point = (500 + 40 / 0.2 + 10 / 0.2) / 2000  # 0.375
    assert abs(est.rate - point) < 0.01
    assert est.low < point < est.high
    assert c.observed / c.sent < est.low  # well above what is seen (0.275)
    assert est.reliable and est.click_propensity == 0.2
    assert est == estimate_open_rate(c)  # fixed seed: the same counts, the same numbers


def test_few_clicks_make_it_unreliable_and_say_why() -> None:
    est = estimate_open_rate(Counts(sent=200, visible=30, visible_clicked=3, prefetched=170))
    assert est.reliable is False
    assert est.reason.startswith("only 3 reader(s) with visible opens clicked")
    assert est.low >= 30 / 200  # never below what is seen


def test_a_wide_interval_is_unreliable_even_with_enough_clicks() -> None:
    # 12 of 100 visible openers clicked: the propensity is known to about +-30%, and 1000
    # privacy-protected readers' 30 clicks stretch that into a wide range of openers
    c = Counts(sent=1100, visible=100, visible_clicked=12, prefetched=1000, prefetched_clicked=30)
    est = estimate_open_rate(c)
    assert est.high - est.low > 0.2 and est.reliable is False
    assert est.reason.startswith("the 90% interval spans 26 points")


def test_nothing_sent() -> None:
    est = estimate_open_rate(Counts(sent=0))
    assert (est.rate, est.low, est.high, est.reliable) == (0.0, 0.0, 0.0, False)


def test_the_explanation_states_the_assumption() -> None:
    est = estimate_open_rate(Counts(sent=100, visible=50, visible_clicked=20, unseen=50))
    x = est.explanation()
    assert x["assumption"] == "readers click as often whatever mail app they use"
    assert x["level"] == 0.9 and set(x) >= {"method", "reliable", "reason"}
