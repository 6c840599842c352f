"""The coherence figure of a report: which replies are scored, mean and acceptance with intervals."""

from __future__ import annotations

import pytest

from grouped_sim.metrics.coherence import coherence_figures, dialogue_scores, reply_contexts, summarise
from grouped_sim.schemas import Dialogue, Outcome, Turn


def dialogue(id: str, turns: list[tuple[str, str]]) -> Dialogue:
    return Dialogue(id=id, domain="broadband", turns=[Turn(role=r, text=t) for r, t in turns], outcome=Outcome.refused)


def by_word(contexts: list[str], replies: list[str]) -> list[float]:
    """A stand-in scorer: 0.9 when the reply shares a word with the last line of the context."""
    return [0.9 if set(r.lower().split()) & set(c.splitlines()[-1].lower().split()) else 0.1 for c, r in zip(contexts, replies)]


SIM = [
    dialogue("s1", [("customer", "hello?"), ("salesman", "the price is 29"), ("customer", "29 is a lot"), ("salesman", "fibre is fast"), ("customer", "pucks twopence")]),
    dialogue("s2", [("salesman", "hi it's Sam"), ("customer", "blue fish"), ("customer", "Sam who")]),
]
REAL = [dialogue(f"r{k}", [("salesman", "the price is 29"), ("customer", "price is steep"), ("salesman", "any questions"), ("customer", "no questions")]) for k in range(6)]


def test_only_replies_that_follow_a_salesman_move_are_scored() -> None:
    assert reply_contexts(SIM[0]) == [
        ("Customer: hello?\nSalesman: the price is 29", "29 is a lot"),
        ("Customer: hello?\nSalesman: the price is 29\nCustomer: 29 is a lot\nSalesman: fibre is fast", "pucks twopence"),
    ]
    # the opening "hello?" and the second customer turn in a row are not answers to a move
    assert dialogue_scores(SIM, by_word) == [[0.9, 0.1], [0.1]]


def test_figures_compare_run_and_reference_with_intervals() -> None:
    block = coherence_figures(SIM, by_word, REAL, scorer_name="stand-in")
    assert block["scorer"] == "stand-in" and block["replies"] == {"simulated": 3, "reference": 12}
    mean, accept = block["mean"], block["acceptance"]
    assert mean["sim"] == pytest.approx((0.9 + 0.1 + 0.1) / 3, abs=1e-4) and mean["real"] == pytest.approx(0.9)
    assert accept["sim"] == pytest.approx(1 / 3, abs=1e-4) and accept["real"] == 1.0
    assert accept["gap"] == pytest.approx(1 / 3 - 1, abs=1e-4)
    assert accept["ci"][1] < 0 and accept["noise_floor"] == 0.0 and accept["beyond_noise"] is True
    assert mean["n_sim"] == 2 and mean["n_real"] == 6


def test_without_a_reference_only_the_run_is_measured() -> None:
    block = coherence_figures(SIM, by_word)
    assert block["mean"]["real"] is None and block["mean"]["gap"] is None
    low, high = block["mean"]["sim_ci"]
    assert low <= block["mean"]["sim"] <= high
    assert block["replies"]["reference"] is None


def test_summary_of_scores_has_intervals_over_dialogues() -> None:
    s = summarise([[0.9, 0.8], [0.2], [], [0.6]])
    assert s["dialogues"] == 3 and s["replies"] == 4
    assert s["mean"] == pytest.approx(0.625) and s["acceptance"] == pytest.approx(0.75)
    assert s["mean_ci"][0] < s["mean"] < s["mean_ci"][1]


def hash_embed(texts: list[str]):
    """A deterministic stand-in for φ, so the report needs no encoder."""
    import numpy as np

    out = np.zeros((len(texts), 16))
    for i, text in enumerate(texts):
        for ch in text:
            out[i, ord(ch) % 16] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_the_report_carries_the_figure_and_its_table_rows() -> None:
    from grouped_sim.report import compute_report
    from grouped_sim.report.compute import flat_metrics, reference_metrics

    report = compute_report(SIM, taxonomy_ids=["opening"], reference=REAL, embed_fn=hash_embed, coherence=by_word, coherence_name="stand-in")
    assert report["fidelity"]["coherence"]["scorer"] == "stand-in"
    assert flat_metrics(report)["coherence_accept"] == pytest.approx(0.3333, abs=1e-4)
    assert reference_metrics(report)["coherence"] == pytest.approx(0.9)
    assert compute_report(SIM, taxonomy_ids=["opening"], embed_fn=hash_embed)["fidelity"]["coherence"] is None
