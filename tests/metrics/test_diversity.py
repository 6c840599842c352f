"""TLV, IRS and SNR (papers/004 eqs. 2-4) on hand-computed cases and edge cases."""

from __future__ import annotations

import pytest

from grouped_sim.metrics.diversity import (
    customer_lengths,
    irs_by_turn,
    irs_from_vectors,
    irs_per_dialogue,
    mean_irs,
    mean_snr,
    mean_tlv,
    normalised_tlv_shares,
    run_coverage,
    snr,
    stage_counts,
    tlv,
)

TAXONOMY = ["opening", "pitch", "price_objection", "goodbye"]


def test_tlv_is_population_variance_of_word_lengths(dialogue_factory):
    d = dialogue_factory(["a b c", "a", "a b"])  # lengths 3, 1, 2: mean 2, variance (1 + 1 + 0) / 3
    assert customer_lengths(d) == [3, 1, 2]
    assert tlv(customer_lengths(d)) == pytest.approx(2 / 3)
    assert tlv([1, 3]) == pytest.approx(1.0)


def test_tlv_edge_cases(dialogue_factory):
    assert tlv([5]) == 0.0  # one reply: no variation, but measurable
    assert tlv([]) is None  # nothing to measure is not zero
    assert mean_tlv([]) is None
    one_turn = dialogue_factory(["hello there"])
    two_turn = dialogue_factory(["a", "a b c"])  # TLV 1.0
    assert mean_tlv([one_turn, two_turn]) == pytest.approx(0.5)


def test_normalised_tlv_shares_sum_to_one():
    assert normalised_tlv_shares({"full": 3.0, "prompt-only": 1.0}) == {"full": 0.75, "prompt-only": 0.25}
    assert normalised_tlv_shares({"a": 0.0, "b": 0.0}) == {"a": 0.5, "b": 0.5}
    assert normalised_tlv_shares({"a": 2.0, "b": None}) == {"a": 1.0, "b": None}


def test_irs_one_minus_mean_adjacent_cosine():
    # cos(x, y) = 0 and cos(y, y) = 1: mean 0.5, IRS 0.5
    assert irs_from_vectors([[1, 0], [0, 1], [0, 1]]) == pytest.approx(0.5)
    # vectors need not be unit length: [2, 0] and [1, 0] point the same way
    assert irs_from_vectors([[2, 0], [1, 0]]) == pytest.approx(0.0)
    assert irs_from_vectors([[1, 0]]) is None  # one reply has no adjacent pair


def test_irs_over_dialogues_batches_one_encoder_call(dialogue_factory, table_embed):
    embed = table_embed({"x": [1, 0], "y": [0, 1]})
    varied = dialogue_factory(["x", "y"], id="a")  # IRS 1
    stuck = dialogue_factory(["x", "x"], id="b")  # IRS 0
    single = dialogue_factory(["y"], id="c")  # no IRS
    assert irs_per_dialogue([varied, stuck, single], embed) == [pytest.approx(1.0), pytest.approx(0.0), None]
    assert embed.calls == 1
    assert mean_irs([varied, stuck, single], embed) == pytest.approx(0.5)
    assert mean_irs([], embed) is None


def test_sliding_window_irs_by_turn(dialogue_factory, table_embed):
    embed = table_embed({"x": [1, 0], "y": [0, 1]})
    a = dialogue_factory(["x", "y", "y", "x"], id="a")  # adjacent cosines: 0, 1, 0
    b = dialogue_factory(["x", "x"], id="b")  # adjacent cosine: 1
    curve = irs_by_turn([a, b], window=2, embed_fn=embed)
    # t=2: a -> 1 - 0 = 1, b -> 1 - 1 = 0; t=3: a -> 1 - mean(0, 1); t=4: a -> 1 - mean(1, 0)
    assert curve == [
        {"turn": 2, "irs": pytest.approx(0.5), "dialogues": 2},
        {"turn": 3, "irs": pytest.approx(0.5), "dialogues": 1},
        {"turn": 4, "irs": pytest.approx(0.5), "dialogues": 1},
    ]
    assert irs_by_turn([dialogue_factory(["x"])], embed_fn=embed) == []


def test_snr_counts_distinct_taxonomy_nodes(dialogue_factory):
    assert snr(["opening", "pitch", "pitch", None], TAXONOMY) == pytest.approx(0.5)
    assert snr(["opening", "bogus"], TAXONOMY) == pytest.approx(0.25)  # unknown labels are ignored
    assert snr(["opening", "bogus"], 4) == pytest.approx(0.5)  # with only a size, every label counts
    with pytest.raises(ValueError):
        snr(["opening"], 0)


def test_snr_over_a_run(dialogue_factory):
    d1 = dialogue_factory(["no", "ok"], id="1", stages=["opening", "opening", "pitch", "pitch"])  # 2 nodes
    d2 = dialogue_factory(["bye"], id="2", stages=["goodbye", "goodbye"])  # 1 node
    assert mean_snr([d1, d2], TAXONOMY) == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert run_coverage([d1, d2], TAXONOMY) == pytest.approx(3 / 4)
    assert stage_counts([d1, d2], role="customer") == {"opening": 1, "pitch": 1, "goodbye": 1}
    unlabelled = dialogue_factory(["no"])
    assert mean_snr([unlabelled], TAXONOMY) is None  # no labels at all: not measurable, not zero
    assert mean_snr([], TAXONOMY) is None
    assert run_coverage([], TAXONOMY) is None
