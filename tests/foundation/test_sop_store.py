"""The SOP store with real MiniLM embeddings in a real Chroma folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grouped_sim.errors import InputError
from grouped_sim.schemas import Dialogue
from grouped_sim.sop_db.store import EMBEDDING_FUNCTION_NAME, MiniLMEmbeddingFunction, SOPStore


def test_build_stores_every_dialogue_with_its_chain(store: SOPStore, corpus: list[Dialogue]) -> None:
    assert store.count() == len(corpus)
    first = corpus[0]
    got = store.chains.get(ids=[first.id])
    chain = json.loads(got["metadatas"][0]["chain"])
    assert [s["customer"] for s in chain if s["customer"]] == [t.text for t in first.customer_turns()]
    assert [s["stage"] for s in chain if s["customer"]] == [t.sop_stage for t in first.customer_turns()]


def test_rebuild_is_idempotent(tmp_path: Path, corpus: list[Dialogue]) -> None:
    path = tmp_path / "db"
    SOPStore(path, create=True).upsert_dialogues(corpus[:6])
    again = SOPStore(path, create=True)
    again.upsert_dialogues(corpus[:6])
    assert again.count() == 6
    turns = again.turns.count()
    again.upsert_dialogues(corpus[:6])
    assert again.turns.count() == turns


def test_query_ranks_by_profile_similarity_and_filters(store: SOPStore) -> None:
    chains = store.retrieve("restaurant owner obsessed with the commission per order and hidden fees", k=4)
    assert len(chains) == 4
    assert [c.distance for c in chains] == sorted(c.distance for c in chains)
    assert chains[0].domain == "food-delivery"
    only = store.retrieve("busy insurance customer", k=3, stage="trust_objection", domain="insurance")
    assert only and all(c.domain == "insurance" for c in only)
    assert all(any(s.stage == "trust_objection" for s in c.steps) for c in only)


def _as_chroma_answers(store: SOPStore, text: str, k: int, where: dict | None) -> list[tuple]:
    """(id, distance, profile text, chain) of Chroma's own query, the reference retrieval must equal."""
    got = store.chains.query(query_texts=[text], n_results=k, where=where)
    return [(cid, dist, doc, json.loads(meta["chain"])) for cid, dist, doc, meta in zip(got["ids"][0], got["distances"][0], got["documents"][0], got["metadatas"][0])]


def _answers(chains) -> list[tuple]:
    return [(c.id, c.distance, c.profile_text, [s.model_dump() for s in c.steps]) for c in chains]


def test_filtered_retrieval_equals_chromas_filtered_query_with_or_without_the_fallback(store: SOPStore, monkeypatch) -> None:
    """Filters are applied to an unfiltered over-fetch whose records are read a slice at a time (fast
    at scale); the chains (ids, distances, texts, steps) must be exactly those Chroma's own filtered
    query returns: when the first slice holds them all, when later slices are read, and when too few
    pass and it falls back to Chroma's query."""
    cases = [("busy restaurant owner, hates commissions", "food-delivery", None), ("retired homeowner", "insurance", "price_objection"), ("shop owner", None, "closing_ask")]
    for overfetch, first_look in ((SOPStore.OVERFETCH, SOPStore.FIRST_LOOK), (SOPStore.OVERFETCH, 0.25), (1, SOPStore.FIRST_LOOK)):
        monkeypatch.setattr(SOPStore, "OVERFETCH", overfetch)
        monkeypatch.setattr(SOPStore, "FIRST_LOOK", first_look)
        for text, domain, stage in cases:
            where = [f for f in ({"domain": domain} if domain else None, {f"stage_{stage}": True} if stage else None) if f]
            expected = _as_chroma_answers(store, text, 4, where[0] if len(where) == 1 else {"$and": where})
            assert _answers(store.retrieve(text, k=4, stage=stage, domain=domain)) == expected


def test_unfiltered_retrieval_equals_chromas_query_and_asking_for_more_than_the_store_holds_gives_all(store: SOPStore) -> None:
    text = "pizza shop owner, worried about fees"
    assert _answers(store.retrieve(text, k=4)) == _as_chroma_answers(store, text, 4, None)
    everything = store.retrieve(text, k=store.count() + 10)
    assert sorted(c.id for c in everything) == sorted(store.chains.get(include=[])["ids"])


def test_an_empty_store_retrieves_nothing_and_tags_with_no_confidence(tmp_path: Path) -> None:
    empty = SOPStore(tmp_path / "empty", create=True)
    assert empty.retrieve("shop owner", k=4) == [] and empty.retrieve("shop owner", k=4, domain="insurance") == []
    vote = empty.tag_stage("Hi, is this the owner?")
    assert vote.confidence == 0.0 and vote.neighbours == []


def test_unknown_stage_filter_is_an_input_error(store: SOPStore) -> None:
    with pytest.raises(InputError, match="not in the taxonomy"):
        store.retrieve("x", stage="haggling")


def test_stage_tagging_by_nearest_annotated_moves(store: SOPStore) -> None:
    vote = store.tag_stage("The commission is only 14 percent per order, and there's no sign-up fee.")
    assert vote.stage == "price_objection"
    assert 0 < vote.confidence <= 1 and vote.replies


def test_store_reopens_in_a_new_process_with_our_embedding_function(store_dir: Path) -> None:
    code = (
        "from sop_db.store import SOPStore;"
        f"s = SOPStore({str(store_dir)!r});"
        "ef = s.chains.configuration.get('embedding_function');"
        "print(type(ef).__name__, ef.name(), len(s.retrieve('price worried shop owner', k=2)))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [MiniLMEmbeddingFunction.__name__, EMBEDDING_FUNCTION_NAME, "2"]


def test_opening_a_missing_store_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="grouped-sim sop build"):
        SOPStore(tmp_path / "nothing")


def test_profile_less_dialogues_are_indexed_by_what_the_customer_said(store: SOPStore, corpus: list[Dialogue]) -> None:
    bare = next(d for d in corpus if d.profile is None)
    doc = store.chains.get(ids=[bare.id])["documents"][0]
    assert bare.customer_turns()[0].text in doc


def test_a_stored_call_is_tagged_without_its_own_moves_voting(store: SOPStore, corpus: list[Dialogue]) -> None:
    call = next(d for d in corpus if sum(t.role == "salesman" and bool(t.sop_stage) for t in d.turns) >= 2)
    move = next(t.text for t in call.turns if t.role == "salesman" and t.sop_stage)
    own = store.tag_stage(move, k=5)
    assert any(n.startswith(f"{call.id}:") for n in own.neighbours)  # the move finds itself first
    left_out = store.tag_stage(move, k=5, leave_out=call.id)
    assert len(left_out.neighbours) == 5 and not any(n.startswith(f"{call.id}:") for n in left_out.neighbours)
    # tagging in one query is tagging one by one
    texts = [t.text for t in call.turns if t.role == "salesman"][:3]
    assert [v.stage for v in store.tag_stages(texts, leave_out=call.id)] == [store.tag_stage(t, leave_out=call.id).stage for t in texts]
