"""BLEU-4 and ROUGE written out: checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from grouped_sim.metrics.likeness import bleu4, lcs_length, likeness, rouge_l, rouge_n


def test_bleu4_identical_reply_scores_one():
    assert bleu4("the cat sat on the mat", "The cat sat on the mat!") == pytest.approx(1.0)


def test_bleu4_smoothed_partial_match():
    # unigrams 2/3, bigrams 1/2, trigrams 0/1 -> 0.1/1, 4-grams none -> 0.1/1; equal length: BP 1
    expected = (2 / 3 * 1 / 2 * 0.1 * 0.1) ** 0.25
    assert bleu4("a b c", "a b d") == pytest.approx(expected)


def test_bleu4_brevity_penalty():
    # p1 = 1, p2 = 1, p3 and p4 smoothed to 0.1; candidate 2 words vs reference 4: BP = e^(1 - 2)
    assert bleu4("a b", "a b c d") == pytest.approx(math.exp(-1) * (0.1 * 0.1) ** 0.25)
    assert bleu4("", "a b") == 0.0


def test_rouge_n_f1_with_clipping():
    assert rouge_n("a b c", "a b d", 1) == pytest.approx(2 / 3)
    assert rouge_n("a b c", "a b d", 2) == pytest.approx(0.5)
    # "the" x3 against one "the": clipped overlap 1, P = 1/3, R = 1/2, F = 0.4
    assert rouge_n("the the the", "the cat", 1) == pytest.approx(0.4)
    assert rouge_n("", "the cat", 1) == 0.0


def test_rouge_l_uses_longest_common_subsequence():
    assert lcs_length(list("abcd"), list("acbd")) == 3
    assert rouge_l("a b c d", "a c b d") == pytest.approx(0.75)
    assert rouge_l("x y", "a b") == 0.0


def test_likeness_aggregates_and_skips_bare_acknowledgements(table_embed):
    embed = table_embed({"no thanks mate": [1.0, 0.0], "whatever": [0.0, 1.0], "nah not for me": [0.6, 0.8]})
    result = likeness([("no thanks mate", "nah not for me"), ("whatever", "ok")], embed_fn=embed)
    assert result["pairs"] == 2 and result["evaluated"] == 1 and result["excluded_short_reference"] == 1
    assert result["embedding_cosine"]["mean"] == pytest.approx(0.6)
    assert result["rouge1"]["mean"] == pytest.approx(0.0)
    assert result["bleu4"]["std"] == pytest.approx(0.0)


def test_likeness_with_nothing_to_compare():
    result = likeness([], embed_fn=lambda texts: (_ for _ in ()).throw(AssertionError("no encoding needed")))
    assert result["evaluated"] == 0
    assert result["bleu4"] == {"mean": None, "std": None, "ci": None}
    assert result["embedding_cosine"] == {"mean": None, "std": None, "ci": None}
