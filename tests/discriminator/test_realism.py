"""The realism scorer: negatives from the simulator's own customer, the head, the shipped pair, the loaders."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import BaseMessage

from grouped_sim.discriminator.data import NegativeParams, build_pairs, read_pairs, records_from_dialogues
from grouped_sim.discriminator.heads import CARD_FILES, HEAD_FILE, corpus_digest
from grouped_sim.discriminator.realism import CARD_FILE, RealismConfig, RealismScorer, load_realism_scorer, rows_from_pairs, train_realism
from grouped_sim.errors import InputError
from grouped_sim.graphs.customer import said_reply
from grouped_sim.models.base import LocalChatModel

PITCH = "Would you like to hear about our fantastic new plan? Let me tell you about our offer today!"
GARBLED = ["75 pucks.. twenty twopence", "netanditoknow opio. I'm told we'll have that next year", "ok which is what%|| more someone it seems"]


class SeededCustomer(LocalChatModel):
    """A local model whose reply is a function of its seed (row i of a call is seeded seed + i)."""

    replies: dict[int, str]
    calls: list[tuple[str, int, int, list[str] | None, int | None, int | None]] = []

    @property
    def _llm_type(self) -> str:
        return "seeded-customer"

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        self.calls.append((prompts[0], len(prompts), len(set(prompts)), stop, seed, max_new_tokens))
        return [self.replies.get((seed or 0) + i, f"hmm, reply {(seed or 0) + i}") for i in range(len(prompts))]

    def generate_chats(self, conversations: list[list[BaseMessage]], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        raise AssertionError("the transcript form never renders a chat template")


# --------------------------------------------------------------------------- negatives from the simulator's customer


def test_transcript_negatives_are_what_the_simulator_would_say(corpus, tmp_path) -> None:
    records = records_from_dialogues(corpus[:2])
    model = SeededCustomer(replies={101: PITCH, 102: "  (laughs) no thanks  ", 104: ""}, calls=[])
    params = NegativeParams(form="transcript", per_context=3, seed=100, max_new_tokens=40)
    counts = build_pairs(records, tmp_path, negatives="hf:smollm2+customer-sft", params=params, model=model, clean=said_reply)
    # one batched call per context: k copies of the record's own transcript prompt, cut at the line's end
    assert [(c[0], c[1], c[2], c[3], c[4], c[5]) for c in model.calls] == [(r["prompt"], 3, 1, ["\n"], 100 + 3 * j, 40) for j, r in enumerate(records)]
    pairs = read_pairs(tmp_path)
    by_id = {p["id"]: p for p in pairs}
    first = records[0]["id"]
    assert f"{first}:gen1" not in by_id, "the role guard drops a seller pitch"
    assert by_id[f"{first}:gen2"]["negative"] == "no thanks", "cleaned as the simulator cleans"
    assert f"{records[1]['id']}:gen1" not in by_id, "an empty reply is no negative"
    assert counts == {"wanted": len(records), "already_done": 0, "written": 3 * len(records) - 2, "dropped": 2}
    for p in pairs:
        record = next(r for r in records if p["id"].startswith(r["id"] + ":gen"))
        assert (p["context"], p["positive"], p["negative_model"]) == (record["context"], record["reference"], "hf:smollm2+customer-sft")


def test_transcript_negatives_resume_with_the_same_seeds(corpus, tmp_path) -> None:
    records = records_from_dialogues(corpus[:2])
    params = NegativeParams(form="transcript", per_context=2, seed=0)
    whole = tmp_path / "whole"
    build_pairs(records, whole, negatives="hf:x", params=params, model=SeededCustomer(replies={}, calls=[]), clean=said_reply)
    lines = (whole / "pairs.jsonl").read_text().splitlines()
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "pairs.jsonl").write_text("\n".join(lines[:5]) + "\n")  # the third record was half written
    resumed_model = SeededCustomer(replies={}, calls=[])
    counts = build_pairs(records, killed, negatives="hf:x", params=params, model=resumed_model, clean=said_reply)
    # the last record in the file may be cut short: it is redone with its own seeds, nothing twice
    assert counts["already_done"] == 2 and resumed_model.calls[0][4] == 2 * 2
    assert sorted((killed / "pairs.jsonl").read_text().splitlines()) == sorted(lines)
    with pytest.raises(InputError, match="transcript-form"):
        build_pairs(records, whole, negatives="hf:x", params=NegativeParams(), model=SeededCustomer(replies={}, calls=[]))


# --------------------------------------------------------------------------- the head, trained


def scrambled_pairs(corpus) -> list[dict]:
    """Pairs whose negatives are the real reply with its words shuffled and a made-up word added:
    cheap stand-ins for model replies, so the head's machinery is tested without generating."""
    rng = random.Random(0)
    pairs = []
    for record in records_from_dialogues(corpus):
        words = record["reference"].split()
        rng.shuffle(words)
        negative = " ".join(words + ["frobnicated."]).capitalize()
        pairs.append({**{k: record[k] for k in ("id", "dialogue_id", "turn_index", "domain", "context")}, "positive": record["reference"], "negative": negative, "negative_model": "test"})
    return pairs


@pytest.fixture(scope="module")
def trained_head(corpus, tmp_path_factory):
    """A head on every third call of the sample corpus (25 calls, all three domains), 6 held out."""
    from grouped_sim.discriminator.coherence import split_dialogues

    calls = corpus[::3]
    pairs = scrambled_pairs(calls)
    train_ids, held_ids = split_dialogues([d.id for d in calls], 0.25, 0)
    model = train_realism(pairs, train_ids, held_ids, RealismConfig(), source={"negatives": "test"})
    return model, model.save(tmp_path_factory.mktemp("realism") / "head"), pairs, held_ids


def test_the_head_learns_and_its_saved_folder_reproduces_the_figures(trained_head) -> None:
    from grouped_sim.discriminator.heads import evaluate_pairs

    model, folder, pairs, held_ids = trained_head
    held = model.card["heldout"]
    assert held["dialogues"] == 6 and held["roc_auc"] > 0.8 and held["roc_auc_ci"][0] > 0.7, held
    assert sorted(p.name for p in folder.iterdir()) == [HEAD_FILE, CARD_FILE]
    scorer = RealismScorer(folder)
    rows = [r for r in rows_from_pairs(pairs) if r.dialogue_id in set(held_ids)]
    again = evaluate_pairs(rows, scorer.score([r.context for r in rows], [r.reply for r in rows]))
    assert again.roc_auc == held["roc_auc"]
    assert set(model.card["split"]["train"]).isdisjoint(model.card["split"]["heldout"])
    got = scorer.score(["", "Salesman: hi"], ["", "who's this"])
    assert len(got) == 2 and all(0.0 <= p <= 1.0 for p in got) and scorer.score([], []) == []


def test_a_folder_is_one_kind_of_scorer(trained_head, tmp_path) -> None:
    from grouped_sim.discriminator.coherence import CoherenceScorer

    _model, folder, _pairs, _ = trained_head
    with pytest.raises(InputError, match="not a coherence scorer folder"):
        CoherenceScorer(folder)
    assert isinstance(load_realism_scorer(folder), RealismScorer)
    with pytest.raises(InputError, match="not a discriminator folder"):
        load_realism_scorer(tmp_path)
    card = json.loads((folder / CARD_FILE).read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / HEAD_FILE).write_bytes((folder / HEAD_FILE).read_bytes())
    (bad / CARD_FILE).write_text(json.dumps({**card, "features": card["features"][:-1]}))
    with pytest.raises(InputError, match="features differ"):
        RealismScorer(bad)


def test_realism_rows_leave_hard_negatives_to_the_coherence_scorer() -> None:
    pairs = [
        {"id": "a:1", "dialogue_id": "a", "turn_index": 1, "context": "Salesman: hi", "positive": "who's this", "negative": "Hello! How can I help?", "negative_model": "hf:smollm2"},
        {"id": "a:1:hard0", "dialogue_id": "a", "turn_index": 1, "context": "Salesman: hi", "positive": "who's this", "negative": "too dear", "negative_model": "real:other-call-same-stage"},
    ]
    rows = rows_from_pairs(pairs)
    assert [(r.reply, r.label) for r in rows] == [("who's this", 1), ("Hello! How can I help?", 0)]
    assert len(rows_from_pairs(pairs, hard_negatives=True)) == 3


# --------------------------------------------------------------------------- the shipped pair


def shipped(name: str) -> Path:
    from grouped_sim.data import shipped_scorer_path

    return shipped_scorer_path(name)


def test_the_shipped_realism_scorers_are_small_and_saw_disjoint_calls(corpus) -> None:
    from grouped_sim.data import REALISM_JUDGE, REALISM_PICKER
    from grouped_sim.discriminator.coherence import role_split

    parts = role_split([d.id for d in corpus])
    cards = {}
    for name, role in ((REALISM_JUDGE, "judge"), (REALISM_PICKER, "picker")):
        folder = shipped(name)
        sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
        assert set(sizes) == {CARD_FILES["realism"], HEAD_FILE} and sum(sizes.values()) < 64_000, sizes
        card = RealismScorer(folder).card
        assert card["source"]["corpus_digest"] == corpus_digest(corpus), f"{name} was trained on another version of the sample corpus; rerun benchmarks/realism_scorers.py --ship"
        assert card["split"]["train"] == parts[role] and card["role"] == role
        assert set(parts["test"]) <= set(card["split"]["heldout"])
        # strong negatives: the shipped customer on these very contexts, not an untuned model
        assert card["source"]["negatives"] == "hf:smollm2+customer-sft" and card["source"]["params"]["form"] == "transcript"
        cards[role] = card
    assert set(cards["judge"]["split"]["train"]).isdisjoint(cards["picker"]["split"]["train"])
    for card in cards.values():
        assert card["heldout"]["roc_auc"] > 0.75 and card["heldout"]["roc_auc_ci"][0] > 0.7, card["heldout"]


def test_the_shipped_judges_score_real_replies_above_gibberish(corpus) -> None:
    """Realism reads how a reply is written, coherence what it answers: each garbled line is caught
    by at least one of the two judges, and realism alone scores garbled lines well below real ones.
    Measured (benchmarks/results/realism.json): "netanditoknow opio. I'm told we'll have that next
    year" passes realism (fluent second half) but not coherence."""
    from grouped_sim.data import JUDGE_SCORER, REALISM_JUDGE
    from grouped_sim.discriminator.coherence import CoherenceScorer, role_split
    from grouped_sim.metrics.coherence import reply_contexts

    test = set(role_split([d.id for d in corpus])["test"])
    rows = [row for d in corpus if d.id in test for row in reply_contexts(d)]
    contexts = [c for c, _ in rows]
    realism, coherence = RealismScorer(shipped(REALISM_JUDGE)), CoherenceScorer(shipped(JUDGE_SCORER))
    real = np.array(realism.score(contexts, [r for _, r in rows]))
    garbled = {line: (np.array(realism.score(contexts, [line] * len(rows))), np.array(coherence.score(contexts, [line] * len(rows)))) for line in GARBLED}
    assert real.mean() > np.mean([r.mean() for r, _ in garbled.values()]) + 0.2
    for line, (r, c) in garbled.items():
        assert min((r >= 0.5).mean(), (c >= 0.5).mean()) < 0.25, line
