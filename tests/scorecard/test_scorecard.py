"""The agent scorecard, its gates and the paired comparison, on hand-built calls whose answers are known."""

from __future__ import annotations

import json

import pytest

from grouped_sim.errors import InputError
from grouped_sim.metrics.intervals import MEAN, RATIO, bootstrap_ci, compare_stat
from grouped_sim.report.gates import check, parse_gate
from grouped_sim.report.paired import mcnemar, paired_comparison
from grouped_sim.report.scorecard import Scorecard, pass_hat_k, scorecard
from grouped_sim.schemas import Outcome

from tests.scorecard.calls import CTX, call

FUNNEL = ["opening", "pitch", "closing_ask"]


def run_a():
    return [
        call("a1", "price-sensitive", Outcome.agreed, FUNNEL, objections=[[], ["price"], []], seed=11),
        call("a2", "price-sensitive", Outcome.callback, ["opening", "pitch"], seed=12),
        call("a3", "resistance-heavy", Outcome.hung_up, ["opening", "pitch", "pitch"], moves=["hi", "great deal", "really great deal"], seed=13),
        call("a4", "resistance-heavy", Outcome.refused, ["opening", "price_objection"], objections=[[], ["price"]], seed=14),
        call("a5", "resistance-heavy", Outcome.unknown, ["opening", "needs_discovery", "pitch"], seed=15),
        call("a6", "price-sensitive", Outcome.unknown, ["opening"], seed=16, error={"who": "customer", "type": "X", "message": "model down"}),
    ]


def test_scorecard_figures_on_known_calls() -> None:
    card = scorecard(run_a(), CTX)
    json.dumps(card)
    assert card["calls"] == 5 and card["excluded"] == {"calls": 1, "by_whose_error": {"customer": 1}}
    assert card["conversion"]["sim"] == pytest.approx(1 / 5) and card["conversion_with_callback"]["sim"] == pytest.approx(2 / 5)
    assert card["walk_away"]["sim"] == pytest.approx(2 / 5) and card["cut_off"]["sim"] == pytest.approx(1 / 5)
    assert card["exit_turn"]["sim"] == pytest.approx((3 + 2 + 3 + 2 + 3) / 5)
    lo, hi = card["conversion"]["sim_ci"]
    assert 0.0 <= lo <= 0.2 <= hi <= 1.0
    assert card["by_archetype"]["price-sensitive"]["n"] == 2 and card["by_archetype"]["price-sensitive"]["conversion"]["sim"] == 0.5
    assert set(card["by_tier"]) == {"medium", "hard"}  # tiers derived from buy propensity 0.5 and 0.1
    funnel = card["funnel"]
    assert funnel["stages"] == ["opening", "needs_discovery", "pitch", "price_objection", "closing_ask"]
    assert funnel["reach"]["pitch"]["sim"] == pytest.approx(4 / 5)
    lost = funnel["lost"]
    assert lost["calls"] == 2 and set(lost["by_stage"]) == {"pitch", "price_objection"}
    assert lost["by_stage"]["pitch"]["moves"][0] == {"dialogue_id": "a3", "turn": 3, "outcome": "hung_up", "archetype": "resistance-heavy", "move": "really great deal"}
    price = card["objections"]["price"]
    assert price["raised_calls"] == 2 and price["resolved_calls"] == 1 and price["resolved"]["sim"] == 0.5
    habits = card["habits"]
    assert habits["pushes_in_a_row"]["non_buyers"]["sim"] == pytest.approx((2 + 0) / 2)  # a3 pitched twice in a row
    assert habits["questions"]["buyers"]["sim"] == pytest.approx((3 + 2) / 2)  # every generated move ends in '?'
    assert card["pass_k"] is None  # one trial per customer


def test_reference_figures_carry_the_real_salesman_and_the_gap() -> None:
    card = scorecard(run_a(), CTX, reference=run_a()[:4])
    conv = card["conversion"]
    assert conv["real"] == pytest.approx(0.25) and conv["gap"] == pytest.approx(0.2 - 0.25) and conv["n_real"] == 4
    assert conv["noise_floor"] is not None and conv["beyond_noise"] is False


def test_pass_k_follows_tau_bench() -> None:
    assert pass_hat_k(3, 3, 3) == 1.0 and pass_hat_k(3, 2, 2) == pytest.approx(1 / 3) and pass_hat_k(3, 1, 2) == 0.0
    with pytest.raises(ValueError):
        pass_hat_k(2, 1, 3)
    trials = [
        call(f"x{t}", "price-sensitive", Outcome.agreed, FUNNEL, trial=t, seed=t) for t in range(3)
    ] + [call(f"y{t}", "resistance-heavy", Outcome.agreed if t == 0 else Outcome.refused, FUNNEL, trial=t, seed=t) for t in range(3)]
    block = scorecard(trials, CTX)["pass_k"]
    assert block["k"] == 3 and block["customers"] == 2 and block["trials_per_customer"] == [3]
    assert block["conversion"]["1"]["sim"] == pytest.approx((1 + 1 / 3) / 2, abs=1e-4)
    assert block["conversion"]["3"]["sim"] == pytest.approx(0.5)  # one customer won every time, one not
    assert Scorecard(scorecard(trials, CTX)).pass_k().value == pytest.approx(0.5)


def test_scorecard_accessors_and_gates() -> None:
    card = Scorecard(scorecard(run_a(), CTX))
    assert card.conversion("price-sensitive").value == 0.5 and card.conversion("medium").n == 2
    assert card.walk_away().value == pytest.approx(0.4) and card.lost_at() == {"pitch": 1, "price_objection": 1}
    assert card.reached("pitch").value == pytest.approx(0.8) and card.habit("talk_ratio", "buyers").n == 2
    assert card.pass_k().value is None
    with pytest.raises(KeyError, match="price-sensitive"):
        card.conversion("nobody")
    conv = card.conversion()
    # lenient (default): fails only when the whole interval is on the wrong side of the bar
    assert check(card, [parse_gate(f"conversion={conv.high + 0.01}", under=True)])[0].startswith("conversion 0.200 [")
    assert check(card, [parse_gate(f"conversion={conv.high - 0.01}", under=True)]) == []
    assert check(card, [parse_gate(f"conversion={conv.high - 0.01}", under=True)], strict=True) != []  # strict: the low end must clear it
    both = [parse_gate("walk_away=0.0", under=False), parse_gate("conversion:price-sensitive=0.0", under=True)]
    assert check(card, both) == []  # walk-away's interval [0.0, 0.8] is not wholly above 0
    assert [r.split()[0] for r in check(card, both, strict=True)] == ["walk_away"]
    for bad, message in (("conversion", "NAME=VALUE"), ("wins=0.2", "unknown figure"), ("cut_off:x=0.1", "only"), ("conversion=abc", "not a number")):
        with pytest.raises(InputError, match=message):
            parse_gate(bad, under=True)
    with pytest.raises(InputError, match="nobody"):
        check(card, [parse_gate("conversion:nobody=0.1", under=True)])


def test_paired_comparison_pairs_by_customer_and_trial() -> None:
    a = run_a()
    b = [
        call("b1", "price-sensitive", Outcome.agreed, FUNNEL, seed=11),
        call("b2", "price-sensitive", Outcome.agreed, FUNNEL, seed=12),  # won (callback -> agreed counts as won on conversion)
        call("b3", "resistance-heavy", Outcome.agreed, FUNNEL, seed=13),
        call("b4", "resistance-heavy", Outcome.refused, ["opening"], seed=14),
        call("b5", "resistance-heavy", Outcome.hung_up, ["opening"], seed=15),
        call("b6", "price-sensitive", Outcome.agreed, FUNNEL, seed=16),
    ]
    paired = paired_comparison(a, b, CTX, names=("A", "B"))
    json.dumps(paired)
    # The two price-sensitive calls are one customer here (same profile): a1/a2/a6 pair with b1/b2/b6 by seed order.
    assert paired["pairs"] == 5 and paired["excluded"] == {"a_not_scored": 1, "b_not_scored": 0} and paired["same_seeds"] is True
    conv = paired["figures"]["conversion"]
    assert conv["a"] == pytest.approx(1 / 5) and conv["b"] == pytest.approx(3 / 5) and conv["diff"] == pytest.approx(2 / 5)
    assert conv["mcnemar"] == {"b_only": 2, "a_only": 0, "p": 0.5}
    assert paired["funnel"]["closing_ask"]["diff"] == pytest.approx((3 - 1) / 5)
    assert {(r["archetype"], r["a_converted"], r["b_converted"], r["trials"]) for r in paired["won"]} == {("price-sensitive", 1, 2, 2), ("resistance-heavy", 0, 1, 3)}
    assert paired["lost"] == [] and paired["won"][0]["calls"][0]["a"]["dialogue_id"].startswith("a")
    assert paired_comparison(a, [call("z", "price-sensitive", Outcome.agreed, FUNNEL).model_copy(update={"domain": "insurance"})], CTX) is None


def test_mcnemar_and_the_vectorised_statistics() -> None:
    many = [({"k": 1}, {"k": 0})] * 9 + [({"k": 0}, {"k": 1})]
    assert mcnemar(many, "k") == {"b_only": 1, "a_only": 9, "p": pytest.approx(0.0215, abs=1e-4)}
    assert mcnemar([], "k")["p"] == 1.0
    values = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]
    ci = bootstrap_ci(values, MEAN)
    assert ci[0] < 0.7 < ci[1] and ci == bootstrap_ci(values, MEAN)
    assert RATIO([[1, 2], [3, 2]]) == 1.0 and RATIO([[0, 0]]) is None
    fig = compare_stat([1] * 20, [0, 1] * 10, MEAN)
    assert fig.gap == 0.5 and fig.beyond_noise is True and fig.sim_ci == [1.0, 1.0]
