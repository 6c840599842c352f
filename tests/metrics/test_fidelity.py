"""Fidelity to a reference corpus: outcomes, disengagement, lengths, role inversion, SalesSim traits."""

from __future__ import annotations

import pytest

from grouped_sim.metrics.fidelity import (
    compare_lengths,
    compare_outcomes,
    criteria_count,
    decision_state,
    disengagement,
    disengagement_deficit,
    first_turn_disclosure,
    outcome_mix,
    realism,
    role_inversion,
    sentence_completeness,
    split_sentences,
    tfidf_redundancy,
    walk_away_rate,
)
from grouped_sim.schemas import Outcome


def test_outcome_mix_walk_away_and_gaps(dialogue_factory):
    sim = [dialogue_factory(["x"], id=str(i), outcome=o) for i, o in enumerate([Outcome.agreed, Outcome.hung_up, Outcome.refused, Outcome.unknown])]
    ref = [dialogue_factory(["x"], id=f"r{i}", outcome=Outcome.hung_up) for i in range(2)]
    mix = outcome_mix(sim)
    assert mix == {"agreed": 0.25, "refused": 0.25, "hung_up": 0.25, "callback": 0.0, "unknown": 0.25}
    assert walk_away_rate(sim) == 0.5
    cmp = compare_outcomes(sim, ref)
    assert cmp["walk_away_gap"] == pytest.approx(-0.5)  # simulated customers walk away half as often
    assert cmp["mix_gap"]["hung_up"] == pytest.approx(-0.75)
    assert cmp["total_variation"] == pytest.approx(0.75)


def test_outcomes_of_an_empty_run_or_missing_reference(dialogue_factory):
    assert outcome_mix([]) is None
    assert walk_away_rate([]) is None
    cmp = compare_outcomes([dialogue_factory(["x"])], [])
    assert cmp == {"walk_away_gap": None, "mix_gap": None, "total_variation": None}


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("no thanks, bye", "resistance"),
        ("no. how much is it?", "resistance"),  # resistance is read first
        ("how much is it?", "deliberation"),
        ("ok fine, sign me up", "commitment"),
        ("yeah I run a pizza shop", "neutral"),
    ],
)
def test_decision_state_instrument(text, state):
    assert decision_state(text) == state


def test_disengagement_deficit_for_non_buyers(dialogue_factory):
    sim = [dialogue_factory(["how much is it?", "maybe", "no", "right"], id="s", outcome=Outcome.refused)]
    ref = [dialogue_factory(["no", "not interested"], id="r", outcome=Outcome.hung_up)]
    profile = disengagement(sim)["non_buyers"]
    assert profile["shares"] == {"resistance": 0.25, "neutral": 0.25, "deliberation": 0.5, "commitment": 0.0}
    assert profile["mean_depth"] == pytest.approx((2 + 2 + 0 + 1) / 4)
    deficit = disengagement_deficit(sim, ref)
    assert deficit["non_buyers"] == {
        "resistance_gap": pytest.approx(-0.75),
        "deliberation_gap": pytest.approx(0.5),
        "depth_bias": pytest.approx(1.25),
    }
    assert deficit["buyers"] is None  # nobody bought on either side: no figure rather than zero
    assert disengagement([])["non_buyers"] is None


def test_length_distribution_against_reference(dialogue_factory):
    sim = [dialogue_factory(["a", "a b c"], id="s")]  # lengths 1, 3
    ref = [dialogue_factory(["a b", "a b", "a b"], id="r")]  # lengths 2, 2, 2
    cmp = compare_lengths(sim, ref)
    assert cmp["mean_gap"] == pytest.approx(0.0)
    assert cmp["median_gap"] == pytest.approx(0.0)
    assert cmp["wasserstein"] == pytest.approx(1.0)  # every unit of mass moves one word
    assert compare_lengths(sim, []) == {"mean_gap": None, "median_gap": None, "wasserstein": None}


def test_a_customer_who_says_it_is_the_caller_counts_as_role_inversion() -> None:
    from grouped_sim.schemas import Dialogue, Turn

    turns = [Turn(role="salesman", text="Hi, it's Alex calling from Corriwave."), Turn(role="customer", text="Yes, this is Alex."),
             Turn(role="salesman", text="Have you got a minute?"), Turn(role="customer", text="No, Alex, I'm busy.")]
    turns[3].meta["rejected"] = ["caller's identity: this is Alex | Yes, this is Alex."]
    inverted = role_inversion([Dialogue(id="d", domain="broadband", turns=turns)])
    assert inverted["heuristic_rate"] == 0.5 and inverted["guard_rejected_per_turn"] == 0.5


def test_role_inversion_prefilter_and_judge(dialogue_factory):
    d = dialogue_factory(["We offer a great plan for restaurants", "no thanks"])
    d.turns[3].meta["rejected"] = ["seller: our platform | Our platform ...", "empty | "]
    heuristic = role_inversion([d])
    assert heuristic["heuristic_rate"] == 0.5
    assert heuristic["guard_rejected_per_turn"] == 0.5  # one seller-like draft over two turns
    assert heuristic["judged_rate"] is None

    asked: list[str] = []

    def confirms(context: str, reply: str) -> bool:
        asked.append(reply)
        assert context.startswith("Salesman:")
        return True

    assert role_inversion([d], judge=confirms)["judged_rate"] == 0.5
    assert asked == ["We offer a great plan for restaurants"]  # only the flagged reply costs a judge call
    asked.clear()
    role_inversion([d], judge=confirms, judge_all=True)
    assert len(asked) == 2

    failed = role_inversion([d], judge=lambda c, r: None)
    assert failed["judged_turns"] == 1 and failed["judged_rate"] == 0.0  # the unanswered reply is left out
    assert role_inversion([])["heuristic_rate"] is None


def test_first_turn_disclosure_counts_kinds_of_criteria(dialogue_factory):
    text = "too expensive, and I'm already with another provider. my contract ends next week"
    assert criteria_count(text) == 4  # price, current provider, contract, timing
    d1 = dialogue_factory([text, "fine"], id="1")
    d2 = dialogue_factory(["hello?"], id="2")
    assert first_turn_disclosure([d1, d2]) == pytest.approx(2.0)
    assert first_turn_disclosure([]) is None


def test_sentence_completeness(dialogue_factory):
    assert split_sentences("I am not interested in this offer. no.") == ["I am not interested in this offer.", "no."]
    formal_then_fragment = dialogue_factory(["I am not interested in this offer. no."], id="1")  # 1 of 2
    filler = dialogue_factory(["Yeah we are fine thanks."], id="2")  # opens with a filler: 0 of 1
    assert sentence_completeness([formal_then_fragment]) == pytest.approx(0.5)
    assert sentence_completeness([formal_then_fragment, filler]) == pytest.approx(0.25)
    assert sentence_completeness([]) is None


def test_tfidf_redundancy_within_domains(dialogue_factory):
    same_a = dialogue_factory(["too expensive for us"], id="1", domain="a")
    same_b = dialogue_factory(["too expensive for us"], id="2", domain="a")
    far_a = dialogue_factory(["who is this"], id="3", domain="b")
    far_b = dialogue_factory(["busy now sorry"], id="4", domain="b")
    lonely = dialogue_factory(["anything"], id="5", domain="c")  # no peer in its domain: skipped
    assert tfidf_redundancy([same_a, same_b]) == pytest.approx(1.0)
    assert tfidf_redundancy([far_a, far_b]) == pytest.approx(0.0)
    assert tfidf_redundancy([same_a, same_b, far_a, far_b, lonely]) == pytest.approx(0.5)
    assert tfidf_redundancy([lonely]) is None


def test_realism_is_mean_p_real_with_history_contexts(dialogue_factory):
    d = dialogue_factory(["who is this", "not interested"])
    seen = {}

    def scorer(contexts, replies):
        seen["contexts"], seen["replies"] = contexts, replies
        return [0.2, 0.8]

    result = realism([d], scorer)
    assert result["mean_p_real"] == pytest.approx(0.5)
    assert seen["replies"] == ["who is this", "not interested"]
    assert seen["contexts"][1] == "Salesman: hello, quick question\nCustomer: who is this\nSalesman: hello, quick question"
    with pytest.raises(ValueError):
        realism([d], lambda c, r: [0.5])
    assert realism([], scorer)["mean_p_real"] is None
