"""The decision dynamics fitted from calls: where a real customer decided, what the hazard model
learns from it, and when the fit must fall back to the hand-set prior."""

from __future__ import annotations

import random

import pytest

from grouped_sim.graphs.dynamics import MoveFeatures, move_features, move_stages, outcome_distribution
from grouped_sim.graphs.fitting import CallFacts, decision_move, fit_dynamics, training_rows
from grouped_sim.graphs.manager import LightManager
from grouped_sim.schemas import CustomerAction, CustomerState, Dialogue, Profile, Turn
from grouped_sim.sop_db.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def call(stages: list[str], outcome: str, extra_customer_turns: int = 0) -> Dialogue:
    turns = []
    for stage in stages:
        turns += [Turn(role="salesman", text=f"move {stage}", sop_stage=stage), Turn(role="customer", text="hm", sop_stage=stage)]
    return Dialogue(id=f"d-{random.random()}", domain="broadband", turns=turns, outcome=outcome)


def test_the_decision_is_where_the_customer_decided_not_where_the_call_stopped() -> None:
    agreed = call(["opening", "pitch", "closing_ask", "follow_up", "goodbye"], "agreed")
    assert decision_move(agreed, TAXONOMY) == 3  # the closing ask, not the arrangements after it
    callback = call(["opening", "pitch", "product_question", "follow_up", "follow_up", "goodbye"], "callback")
    assert decision_move(callback, TAXONOMY) == 4  # the first follow-up move
    hung_up = call(["opening", "identity_permission"], "hung_up")
    assert decision_move(hung_up, TAXONOMY) == 2
    refused = call(["opening", "pitch", "closing_ask", "goodbye"], "refused")
    assert decision_move(refused, TAXONOMY) == 3


def test_moves_before_the_decision_continue_and_unknown_outcomes_are_censored() -> None:
    calls = [
        CallFacts(id="a", stages=["opening", "pitch", "closing_ask"], archetype=None, propensity=0.5, outcome="agreed", decision_move=3),
        CallFacts(id="b", stages=["opening", "pitch", "pitch"], archetype=None, propensity=0.5, outcome="unknown", decision_move=3),
    ]
    rows, labels, groups = training_rows(calls, TAXONOMY)
    assert labels == ["continue", "continue", "agreed", "continue", "continue"]
    assert groups == [0, 0, 0, 1, 1]
    assert rows[2] == MoveFeatures(turn=3, stage="closing_ask", archetype=None, propensity=0.5, pushes_in_row=2, objections=0)


def test_move_features_count_pushes_and_objections_from_the_taxonomy() -> None:
    f = move_features(TAXONOMY, ["opening", "price_objection", "trust_objection", "price_objection", "pitch", "closing_ask"], "status-quo", 0.25)
    assert (f.turn, f.pushes_in_row, f.objections) == (6, 2, 2)
    history = [Turn(role="salesman", text="a", sop_stage="opening"), Turn(role="salesman", text="b", sop_stage="opening"), Turn(role="customer", text="c"), Turn(role="salesman", text="d", sop_stage="pitch")]
    assert move_stages(history) == ["opening", "pitch"]  # two salesman turns in a row are one move


def synthetic(n: int, seed: int = 0) -> list[CallFacts]:
    """Buyers agree at the closing ask; resistant customers hang up at the opening."""
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        if rng.random() < 0.5:
            calls.append(CallFacts(id=f"b{i}", stages=["opening", "pitch", "closing_ask"], archetype="price-sensitive", propensity=0.8, outcome="agreed", decision_move=3))
        else:
            calls.append(CallFacts(id=f"r{i}", stages=["opening", "identity_permission"], archetype="resistance-heavy", propensity=0.0, outcome="hung_up", decision_move=2))
    return calls


def test_too_few_calls_keep_the_prior_and_say_why() -> None:
    fitted = fit_dynamics(synthetic(8), TAXONOMY)
    assert fitted.fitted is False and fitted.hazard is None
    assert "8 training calls" in fitted.reason


def test_a_fit_learns_who_decides_what_and_when() -> None:
    fitted = fit_dynamics(synthetic(60), TAXONOMY)
    assert fitted.fitted and sum(fitted.statistics.events.values()) == 60 and set(fitted.statistics.events) == {"agreed", "hung_up"}
    assert fitted.statistics.cv_log_loss < fitted.statistics.cv_null_log_loss
    hazard = fitted.hazard
    buyer_close = hazard.probabilities(move_features(TAXONOMY, ["opening", "pitch", "closing_ask"], "price-sensitive", 0.8))
    resistant_opening = hazard.probabilities(move_features(TAXONOMY, ["opening", "identity_permission"], "resistance-heavy", 0.0))
    assert max(buyer_close, key=buyer_close.get) == "agreed"
    assert max(resistant_opening, key=resistant_opening.get) == "hung_up"
    # each call scored by a hazard fitted without it, as the probe would: the rates hold and it
    # tells who decides what better than the majority guess and the base rate
    check = fitted.statistics.cv_decisions
    assert check.n == 60 and all(r.within for r in check.rates)
    assert check.same_decision.value > check.majority_same and check.scores.beats_base_rate


def test_the_outcome_distribution_adds_early_endings_and_the_end_of_script_split() -> None:
    moves = [{"continue": 0.5, "hung_up": 0.5}, {"continue": 0.2, "agreed": 0.6, "refused": 0.2}]
    shares = outcome_distribution(moves)
    # half hang up at move 1; of the half still there, 0.6 / 0.2 agree / refuse at move 2, and the 0.2
    # who would go on decide as the enders of move 2 do (3 to 1)
    assert shares["hung_up"] == pytest.approx(0.5) and shares["agreed"] == pytest.approx(0.5 * (0.6 + 0.2 * 0.75))
    assert shares["refused"] == pytest.approx(0.5 * (0.2 + 0.2 * 0.25)) and sum(shares.values()) == pytest.approx(1.0)


def test_the_light_manager_decides_from_the_fitted_odds() -> None:
    fitted = fit_dynamics(synthetic(60), TAXONOMY)
    manager = LightManager(store=None, fitted=fitted)
    profile = Profile(summary="keen buyer", archetype="price-sensitive")
    state = manager.initial_state(profile)
    assert state.patience == 1.0
    odds = manager.outcome_odds(profile, [Turn(role="salesman", text="x")], "closing_ask", [])
    agreed = sum(manager.fitted_decision(odds, state, state, random.Random(seed).random())[1] is CustomerAction.agree for seed in range(200))
    assert agreed / 200 > 0.5
    action, source = manager.final_decision(profile=profile, history=[Turn(role="salesman", text="x", sop_stage="closing_ask")], state=CustomerState(), chains=[], seed=1)
    assert action in set(CustomerAction) and source.by == "hazard (end of script)" and abs(sum(source.odds.values()) - 1) < 1e-3


def same_scripts_different_words(n: int, words_tell: bool, seed: int = 0) -> list[CallFacts]:
    """Every customer hears the same script and shares archetype and neighbours; half agree at the
    closing ask and half refuse there. Where `words_tell`, what they said before it gives them away
    ("sounds good" vs "no, not interested"); otherwise both say the same."""
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        agrees = rng.random() < 0.5
        said = ("ok, sounds good.", "go on then.") if agrees else ("no, not interested.", "no thanks.")
        answers = list(said if words_tell else ("ok.", "right.")) + [""]
        calls.append(CallFacts(id=f"c{i}", stages=["opening", "pitch", "closing_ask"], archetype=None, propensity=0.5, outcome="agreed" if agrees else "refused", decision_move=3, answers=answers))
    return calls


def test_the_hazard_reads_what_the_customer_said_only_where_it_tells_out_of_fold() -> None:
    """Issue 23: a fitted customer decides from what it has said, where a corpus shows that words
    foretell decisions; where they do not, the plain hazard is kept and the fit says so."""
    telling = fit_dynamics(same_scripts_different_words(60, words_tell=True), TAXONOMY)
    stats = telling.statistics
    assert telling.hazard.reads_replies and stats.cv_log_loss_reading < stats.cv_log_loss_plain
    keen = telling.hazard.probabilities(move_features(TAXONOMY, ["opening", "pitch", "closing_ask"], None, 0.5, ["ok, sounds good.", "go on then."]))
    cold = telling.hazard.probabilities(move_features(TAXONOMY, ["opening", "pitch", "closing_ask"], None, 0.5, ["no, not interested.", "no thanks."]))
    assert keen["agreed"] > 0.8 and cold["refused"] > 0.8
    assert stats.cv_decisions.same_decision.value > stats.cv_decisions.majority_same

    silent = fit_dynamics(same_scripts_different_words(60, words_tell=False), TAXONOMY)
    assert not silent.hazard.reads_replies
    assert len(silent.hazard.coef[0]) == len(silent.hazard.feature_names()) < len(telling.hazard.feature_names())


def test_a_dynamics_file_from_before_reading_replies_still_loads() -> None:
    from grouped_sim.graphs.dynamics import HazardModel

    old = {"classes": ["agreed", "continue"], "stages": ["pitch"], "archetypes": [], "coef": [[0.1, 0.2, 0.3, 0.4, 0.5]], "intercept": [0.0]}
    hazard = HazardModel.model_validate(old)
    assert not hazard.reads_replies and sum(hazard.probabilities(move_features(TAXONOMY, ["pitch"], None, 0.5, ["no."])).values()) == pytest.approx(1.0)
