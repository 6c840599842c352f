"""Proper scores of a simulator's P(agree) against baselines that need no simulator."""

from __future__ import annotations

import pytest

from grouped_sim.metrics.decisions import decision_check, decision_scores, reliability, wilson

AGREED = [True] * 6 + [False] * 14


def test_a_probability_that_knows_the_customer_beats_the_base_rate() -> None:
    sharp = [0.9 if a else 0.1 for a in AGREED]
    scores = decision_scores(sharp, AGREED, base_rate=0.3)
    assert scores.brier.value == pytest.approx(0.01) and scores.brier.value < scores.brier_base_rate.value
    assert scores.beats_base_rate is True and scores.brier_gain.ci[1] < 0
    assert scores.log_loss.value < scores.log_loss_base_rate.value < scores.log_loss_majority.value
    assert scores.majority == "not agreed" and scores.brier_majority.value == pytest.approx(0.3)


def test_the_base_rate_itself_and_a_backwards_simulator_do_not_beat_it() -> None:
    assert decision_scores([0.3] * len(AGREED), AGREED, base_rate=0.3).beats_base_rate is False
    backwards = decision_scores([0.1 if a else 0.9 for a in AGREED], AGREED, base_rate=0.3)
    assert backwards.beats_base_rate is False and backwards.brier_gain.value > 0


def test_reliability_bins_say_what_was_predicted_and_what_happened() -> None:
    bins = reliability([0.05, 0.1, 0.15, 0.9, 0.95], [False, False, True, True, True])
    assert [b.n for b in bins] == [3, 2]
    assert bins[0].observed == pytest.approx(1 / 3, abs=1e-4) and bins[1].observed == 1.0 and bins[1].high == 1.0


def test_wilson_intervals_stay_honest_at_none_and_all() -> None:
    low, high = wilson(0, 40)
    assert low == 0.0 and 0.05 < high < 0.1  # no successes in 40 does not mean a rate of exactly 0
    assert wilson(40, 40)[1] == 1.0 and wilson(40, 40)[0] > 0.9 and wilson(0, 0) is None


def test_rates_outside_the_real_interval_are_flagged_and_one_answer_for_everyone_is_said() -> None:
    real = ["agreed"] * 18 + ["refused"] * 2
    leaning = decision_check([{"agreed": 0.4, "refused": 0.6}] * 20, real, {"agreed": 0.9, "refused": 0.1}, "test")
    agreed = next(r for r in leaning.rates if r.outcome == "agreed")
    assert agreed.within is False and agreed.real == 0.9 and leaning.majority_same == 0.9
    assert leaning.same_decision.value == pytest.approx(0.4 * 0.9 + 0.6 * 0.1)
    unanimous = decision_scores([0.9] * 5, [True] * 5, base_rate=0.8)
    assert unanimous.note and "same way" in unanimous.note
    with pytest.raises(ValueError, match="3 probabilities for 2 customers"):
        decision_scores([0.1, 0.2, 0.3], [True, False], base_rate=0.5)


def test_too_few_customers_against_the_majority_is_said_not_implied() -> None:
    real = ["agreed"] * 39 + ["refused"]
    check = decision_check([{"agreed": 0.99, "refused": 0.01}] * 40, real, {"agreed": 0.99, "refused": 0.01}, "test")
    assert check.minority == 1 and "too few to show" in check.note
    balanced = decision_check([{"agreed": 0.5, "refused": 0.5}] * 20, ["agreed", "refused"] * 10, {"agreed": 0.5, "refused": 0.5}, "test")
    assert balanced.minority == 10 and balanced.note is None
