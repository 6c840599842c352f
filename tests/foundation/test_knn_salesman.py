"""The retrieval salesman: real moves that answer the customer, never repeated, ending as real salesmen do."""

from __future__ import annotations

import asyncio

import pytest

from grouped_sim.data import sample_corpus_path
from grouped_sim.graphs.adapters import KnnSalesman
from grouped_sim.graphs.salesman import CallContext, is_goodbye
from grouped_sim.schemas import Turn


@pytest.fixture(scope="module")
def knn() -> KnnSalesman:
    return KnnSalesman(sample_corpus_path())


def play(knn: KnnSalesman, replies: list[str], seed: int, case_id: str = "") -> list[list[str]]:
    history: list[Turn] = []
    moves = []
    for i, reply in enumerate(replies + [""]):
        said = asyncio.run(knn.respond(CallContext(dialogue_id="d", domain="food-delivery", seed=seed + i, history=history, case_id=case_id)))
        moves.append(said)
        history += [Turn(role="salesman", text=m) for m in said]
        if reply:
            history.append(Turn(role="customer", text=reply))
    return moves


def test_moves_are_real_never_repeated_and_the_same_for_a_seed(knn: KnnSalesman) -> None:
    replies = ["who is this?", "hm. what is it?", "ok", "ok", "ok", "ok"]
    moves = play(knn, replies, seed=3)
    flat = [m for move in moves for m in move]
    real = {m for move in knn.moves for m in move.messages}
    assert set(flat) <= real and len(flat) == len(set(flat))
    assert play(knn, replies, seed=3) == moves
    openers = {m for move in knn.moves if move.index == 1 for m in move.messages}
    assert set(moves[0]) <= openers and not openers.intersection(m for move in moves[1:] for m in move)  # a call opens once


def test_the_customers_own_call_is_never_read(knn: KnnSalesman) -> None:
    own = [m for move in knn.moves if move.dialogue_id == "fd-002" for m in move.messages]
    for seed in range(4):
        said = [m for move in play(knn, ["what's the cut", "twenty-two? no chance"], seed, case_id="fd-002") for m in move]
        assert not set(said) & set(own)


def test_a_price_question_gets_a_price_and_a_refusal_gets_a_goodbye(knn: KnnSalesman) -> None:
    priced = [play(knn, ["yeah", "how much do you charge?"], seed)[2] for seed in range(6)]
    assert sum(any(w in " ".join(m).lower() for w in ("percent", "commission", "%", "fee")) for m in priced) >= 4
    ended = [play(knn, ["yeah", "no thanks, not interested. bye"], seed)[2] for seed in range(6)]
    assert sum(is_goodbye(" ".join(m)) for m in ended) >= 4


def test_after_the_opening_no_move_brings_in_another_calls_names(knn: KnnSalesman) -> None:
    from grouped_sim.graphs.adapters import proper_words

    names = set().union(*knn.names)
    assert {"Kieran", "Rivers"} <= names and "Corriwave" not in names  # people are call-specific, the company is not
    for seed in range(6):
        history: list[Turn] = []
        for reply in ["yes?", "who is this", "what is it", "hm ok", "how much"]:
            said = asyncio.run(knn.respond(CallContext(dialogue_id="d", domain="broadband", seed=seed, history=history)))
            spoken = set().union(*(proper_words(t.text) for t in history))
            if history:
                assert proper_words(" ".join(said)) & names <= spoken
            history += [Turn(role="salesman", text=m) for m in said] + [Turn(role="customer", text=reply)]
