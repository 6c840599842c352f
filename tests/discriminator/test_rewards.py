"""The multi-level reward (eq. 9-11): values pinned on hand-computed cases, edge cases included."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from grouped_sim.discriminator.rewards import (
    FormatReward,
    RewardConfig,
    SemanticReward,
    WeightedReward,
    format_reward,
    reply_of,
    reward_functions,
    semantic_rewards,
)

BARE = RewardConfig(format_floor=None)


def test_format_reward_matches_equation_10_by_hand() -> None:
    # |3 - 4| / (4 + 1) = 0.2 -> 1 - 0.04
    assert format_reward("a b c", "a b c d", BARE) == pytest.approx(0.96)
    # equal lengths score exactly 1
    assert format_reward("no thanks", "not today", BARE) == pytest.approx(1.0)
    # characters as the unit: |3 - 6| / (6 + 1) = 3/7
    chars = RewardConfig(length_unit="chars", format_floor=None)
    assert format_reward("abc", "abcdef", chars) == pytest.approx(1 - (3 / 7) ** 2)
    # epsilon is configurable: |2 - 4| / (4 + 0.5)
    assert format_reward("a b", "a b c d", RewardConfig(epsilon=0.5, format_floor=None)) == pytest.approx(1 - (2 / 4.5) ** 2)


def test_format_reward_edge_cases_empty_reply_and_empty_reference() -> None:
    # empty reply against a 3-word reference: 1 - (3/4)^2
    assert format_reward("", "who is this", BARE) == pytest.approx(0.4375)
    # empty reference: the epsilon keeps it finite, 1 - (2/1)^2 = -3 (bare), clipped to -1 by default
    assert format_reward("hello there", "", BARE) == pytest.approx(-3.0)
    assert format_reward("hello there", "") == pytest.approx(-1.0)
    # both empty is a perfect match
    assert format_reward("", "", BARE) == pytest.approx(1.0)


def test_rambling_reply_is_clipped_by_the_floor_only_when_configured() -> None:
    long = " ".join(["word"] * 20)
    assert format_reward(long, "no", BARE) == pytest.approx(1 - (19 / 2) ** 2)  # -89.25
    assert format_reward(long, "no") == pytest.approx(-1.0)


def test_reply_is_cut_at_the_first_newline_like_the_simulator() -> None:
    assert reply_of(" no thanks\nSalesman: but wait") == "no thanks"
    assert reply_of(" no thanks\nSalesman: but wait", cut_at_newline=False) == "no thanks\nSalesman: but wait"
    assert reply_of([{"role": "assistant", "content": "busy now"}]) == "busy now"
    reward = FormatReward()
    # the second line is not part of the reply: 2 words vs 2 words
    assert reward(["p"], [" not interested\nSalesman: ok so our platform"], reference=["go away"]) == [pytest.approx(1.0)]


def test_semantic_reward_matches_equation_11() -> None:
    from grouped_sim.embeddings import embed

    cfg = RewardConfig(delta=0.2)
    reply, ref = "no, I'm not interested", "not interested, thanks"
    a, b = embed([reply, ref])
    expected = (float((a * b).sum()) - 0.2) / 0.8
    got = semantic_rewards([reply, ref], [ref, ref], cfg)
    assert got[0] == pytest.approx(expected, abs=1e-5)
    assert got[1] == pytest.approx(1.0, abs=1e-5)  # identical texts: cosine 1 -> reward 1


def test_semantic_reward_edge_cases() -> None:
    cfg = RewardConfig(delta=0.2)
    # an empty side has no meaning: similarity 0 -> -delta / (1 - delta)
    assert semantic_rewards(["", "hello"], ["who is this", ""], cfg) == [pytest.approx(-0.25), pytest.approx(-0.25)]
    assert semantic_rewards([""], [""], cfg) == [pytest.approx(1.0)]
    with pytest.raises(ValueError):
        semantic_rewards(["a"], ["a", "b"], cfg)


def test_semantic_reward_prefers_the_same_meaning() -> None:
    related, unrelated = semantic_rewards(["not interested, bye", "the weather is lovely in Spain"], ["I'm not interested. goodbye"] * 2)
    assert related > unrelated


def test_reward_functions_have_trl_signature_and_names() -> None:
    funcs, weights = reward_functions(None, RewardConfig(w_pattern=0.0, w_format=2.0, w_semantic=0.5))
    assert [f.__name__ for f in funcs] == ["format_reward", "semantic_reward"]
    assert weights == [2.0, 0.5]
    values = funcs[0](prompts=["p1", "p2"], completions=["a b c", ""], reference=["a b c d", "x"], context=["c", "c"])
    assert values == [pytest.approx(0.96), pytest.approx(0.75)]
    with pytest.raises(ValueError, match="reference"):
        funcs[0](prompts=["p"], completions=["a"])


def test_pattern_weight_without_a_discriminator_is_an_error() -> None:
    with pytest.raises(ValueError, match="discriminator"):
        reward_functions(None, RewardConfig())
    with pytest.raises(ValueError, match="nothing to optimise"):
        reward_functions(None, RewardConfig(w_pattern=0, w_format=0, w_semantic=0))


def test_weighted_reward_is_the_weighted_sum_of_its_parts() -> None:
    cfg = RewardConfig(w_pattern=0.0, w_format=2.0, w_semantic=3.0)
    completions = ["not now", "we offer the best deals on our platform today"]
    refs = ["not now thanks", "no"]
    total = WeightedReward(None, cfg)(prompts=["p", "p"], completions=completions, reference=refs, context=["c", "c"])
    fmt = FormatReward(cfg)(completions=completions, reference=refs)
    sem = SemanticReward(cfg)(completions=completions, reference=refs)
    for t, f, s in zip(total, fmt, sem):
        assert t == pytest.approx(2 * f + 3 * s)
        assert math.isfinite(t)


def test_bad_reward_config_is_rejected() -> None:
    with pytest.raises(ValidationError):
        RewardConfig(delta=1.0)
    with pytest.raises(ValidationError):
        RewardConfig(epsilon=0)
    with pytest.raises(ValidationError):
        RewardConfig(length_unit="tokens")
