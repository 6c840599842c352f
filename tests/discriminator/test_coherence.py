"""The coherence scorer: its pairs, a scorer trained on the sample corpus, the shipped pair, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grouped_sim.discriminator.coherence import (
    CARD_FILE,
    HEAD_FILE,
    CoherenceConfig,
    CoherenceScorer,
    corpus_digest,
    role_split,
    split_dialogues,
    train_coherence,
    training_pairs,
)
from grouped_sim.errors import InputError
from grouped_sim.schemas import Dialogue, Turn

GARBLED = "75 pucks.. twenty twopence"


def call(id: str, exchanges: list[tuple[str, str, str | None]]) -> Dialogue:
    turns = []
    for move, reply, stage in exchanges:
        turns += [Turn(role="salesman", text=move, sop_stage=stage), Turn(role="customer", text=reply, sop_stage=stage)]
    return Dialogue(id=id, domain="broadband", turns=turns)


# --------------------------------------------------------------------------- pairs


def test_negatives_come_from_other_calls_at_the_same_stage(corpus) -> None:
    pairs = training_pairs(corpus, negatives=3, seed=0)
    stage_of = {(d.id, i): t.sop_stage for d in corpus for i, t in enumerate(d.turns)}
    text_of = {(d.id, i): t.text for d in corpus for i, t in enumerate(d.turns)}
    positives = [p for p in pairs if p.label == 1]
    negatives = [p for p in pairs if p.label == 0]
    assert len(positives) == 408 and len(negatives) >= 3 * 400
    for p in positives:
        assert (p.source_dialogue, p.source_turn) == (p.dialogue_id, p.turn_index) and p.reply == text_of[(p.dialogue_id, p.turn_index)]
    for p in negatives:
        assert p.source_dialogue != p.dialogue_id, "a negative from the same call"
        assert stage_of[(p.source_dialogue, p.source_turn)] == p.stage, "every stage of the sample corpus has other calls"
        assert p.reply == text_of[(p.source_dialogue, p.source_turn)]
        assert p.reply.lower() != text_of[(p.dialogue_id, p.turn_index)].lower()
    # the context is the end of the call before the reply, ending with the salesman's move
    p = positives[5]
    d = next(d for d in corpus if d.id == p.dialogue_id)
    assert p.context.splitlines()[-1] == f"Salesman: {d.turns[p.turn_index - 1].text}"


def test_pairs_are_deterministic_for_a_seed(corpus) -> None:
    first = training_pairs(corpus[:30], seed=3)
    assert first == training_pairs(corpus[:30], seed=3)
    assert first != training_pairs(corpus[:30], seed=4)
    # a reply's negatives do not depend on the order of the corpus
    assert sorted(first, key=repr) == sorted(training_pairs(list(reversed(corpus[:30])), seed=3), key=repr)


def test_a_missing_or_lonely_stage_falls_back_to_any_other_call() -> None:
    calls = [
        call("a", [("hello, Corriwave here", "who is this", None), ("it's 29 a month", "too dear", "price_objection")]),
        call("b", [("hi from Corriwave", "not now", "opening")]),
        call("c", [("good morning", "what", "opening"), ("fibre is faster", "ok", "pitch")]),
    ]
    pairs = training_pairs(calls, negatives=2, seed=0)
    for p in (p for p in pairs if p.label == 0):
        assert p.source_dialogue != p.dialogue_id
    # the stage-less reply of a and its price reply (no other call has that stage) draw from any other call
    assert {p.source_dialogue for p in pairs if p.label == 0 and p.dialogue_id == "a"} <= {"b", "c"}
    assert len([p for p in pairs if p.label == 0 and p.dialogue_id == "a"]) == 4
    # an opening of b finds the only other opening, in c
    assert [p.reply for p in pairs if p.label == 0 and p.dialogue_id == "b"] == ["what"]


def test_split_ids_must_be_disjoint_and_known(corpus) -> None:
    with pytest.raises(InputError, match="overlap"):
        train_coherence(corpus, ["fd-001", "fd-002"], ["fd-002"], embed_fn=lambda t: np.zeros((len(t), 4)))
    with pytest.raises(InputError, match="not in the corpus"):
        train_coherence(corpus, ["fd-001", "nope"], [], embed_fn=lambda t: np.zeros((len(t), 4)))
    with pytest.raises(InputError, match="at least two calls"):
        train_coherence(corpus, ["fd-001"], [], embed_fn=lambda t: np.zeros((len(t), 4)))


# --------------------------------------------------------------------------- trained on the sample corpus


def test_a_scorer_trained_on_too_few_calls_says_so_on_its_card(corpus) -> None:
    def rng_embed(texts):
        return np.random.default_rng(len(texts)).normal(size=(len(texts), 8))

    ids = [d.id for d in corpus[:3]]
    model = train_coherence(corpus[:3], ids[:2], ids[2:], embed_fn=rng_embed)
    warnings = " | ".join(model.card["warnings"])
    assert model.card["n"]["train_dialogues"] == 2 and "trained on 2 dialogues (fewer than 10)" in warnings
    assert "1 held-out dialogue" in warnings  # ROC-AUC n/a or too few to trust, never silent
    roomy = train_coherence(corpus, [d.id for d in corpus[:60]], [d.id for d in corpus[60:]], embed_fn=rng_embed)
    assert roomy.card["warnings"] == []


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A scorer trained on 80 % of the sample corpus's calls; 20 % (15 calls) held out."""
    train_ids, held_ids = split_dialogues([d.id for d in corpus], 0.2, 0)
    model = train_coherence(corpus, train_ids, held_ids, CoherenceConfig())
    folder = model.save(tmp_path_factory.mktemp("coh") / "scorer")
    return model, CoherenceScorer(folder), held_ids


def test_held_out_auc_is_well_above_chance(trained) -> None:
    model, _scorer, held_ids = trained
    held = model.card["heldout"]
    assert held["dialogues"] == len(held_ids) == 15 and held["positives"] > 60
    # Measured: 0.70 (interval about ±0.04). Cosine of reply and move alone gives 0.66 to 0.67 on
    # these splits; a head that ignored the context would give 0.5.
    assert held["roc_auc"] > 0.65 and held["roc_auc_ci"][0] > 0.58, held
    assert held["rank_accuracy"] > 0.65 and held["mean_p_real"] > held["mean_p_other"] + 0.08, held


def test_the_saved_scorer_reproduces_the_held_out_figures(trained, corpus) -> None:
    from grouped_sim.discriminator.coherence import evaluate_pairs

    model, scorer, held_ids = trained
    held_pairs = training_pairs([d for d in corpus if d.id in set(held_ids)], 3, 0, 8)
    figures = evaluate_pairs(held_pairs, scorer.score([p.context for p in held_pairs], [p.reply for p in held_pairs]))
    assert figures.roc_auc == model.card["heldout"]["roc_auc"]
    assert set(model.card["split"]["train"]).isdisjoint(model.card["split"]["heldout"])
    assert model.card["corpus"]["digest"] == corpus_digest(corpus)


def test_garbled_replies_score_below_the_real_ones(trained, corpus) -> None:
    _model, scorer, held_ids = trained
    context = "Salesman: Hi, it's Sam from Corriwave.\nCustomer: yeah?\nSalesman: The fibre plan is 29 pounds a month, and there's no setup fee."
    real, garbled = scorer.score([context, context], ["29? I pay 25 with NetNova", GARBLED])
    assert real > garbled + 0.1
    # over every held-out price context: the real reply beats the garbled line in most of them
    held = [d for d in corpus if d.id in set(held_ids)]
    pairs = [p for p in training_pairs(held) if p.label == 1 and p.stage == "price_objection"]
    assert len(pairs) >= 8
    real_scores = scorer.score([p.context for p in pairs], [p.reply for p in pairs])
    garbled_scores = scorer.score([p.context for p in pairs], [GARBLED] * len(pairs))
    wins = sum(r > g for r, g in zip(real_scores, garbled_scores))
    assert wins >= 0.75 * len(pairs) and np.mean(real_scores) > np.mean(garbled_scores) + 0.15


def test_scores_are_probabilities_for_odd_inputs(trained) -> None:
    _model, scorer, _ = trained
    got = scorer.score(["", "Customer: hello?", "Salesman: hi\nthis line continues"], ["", "who's this", "ok"])
    assert len(got) == 3 and all(0.0 <= p <= 1.0 for p in got)
    assert scorer.score([], []) == []
    with pytest.raises(ValueError):
        scorer.score(["Salesman: hi"], [])


# --------------------------------------------------------------------------- folders


def test_saving_replaces_a_scorer_whole_and_refuses_other_folders(trained, tmp_path) -> None:
    model, _, _ = trained
    folder = model.save(tmp_path / "s")
    (folder / "stale.txt").write_text("from an older scorer")
    model.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == [CARD_FILE, HEAD_FILE]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp folders left behind"
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not a coherence scorer folder"):
        model.save(other)
    assert (other / "keep.txt").read_text() == "mine"


def test_loading_refuses_what_is_not_a_scorer(trained, tmp_path) -> None:
    model, _, _ = trained
    with pytest.raises(InputError, match="not a coherence scorer folder"):
        CoherenceScorer(tmp_path)
    folder = model.save(tmp_path / "s")
    card = json.loads((folder / CARD_FILE).read_text())
    (folder / CARD_FILE).write_text(json.dumps({**card, "encoder": "some-other-encoder"}))
    with pytest.raises(InputError, match="encoder"):
        CoherenceScorer(folder)
    (folder / CARD_FILE).write_text("{not json")
    with pytest.raises(InputError, match="coherence.json"):
        CoherenceScorer(folder)


# --------------------------------------------------------------------------- shipped scorers


def test_the_shipped_scorers_load_are_small_and_saw_disjoint_calls(corpus) -> None:
    from grouped_sim.data import JUDGE_SCORER, PICKER_SCORER, shipped_scorer_path

    cards = {}
    for name in (JUDGE_SCORER, PICKER_SCORER):
        folder = shipped_scorer_path(name)
        sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
        assert set(sizes) == {CARD_FILE, HEAD_FILE} and sum(sizes.values()) < 64_000, sizes
        scorer = CoherenceScorer(folder)  # checks encoder, format and features
        cards[name] = scorer.card
        assert scorer.card["corpus"]["digest"] == corpus_digest(corpus), f"{name} was trained on another version of the sample corpus; rerun benchmarks/coherence_scorers.py --ship"
        held = scorer.card["heldout"]
        assert held["dialogues"] == 45 and held["roc_auc"] > 0.65
    judge, picker = cards[JUDGE_SCORER]["split"], cards[PICKER_SCORER]["split"]
    assert set(judge["train"]).isdisjoint(picker["train"])
    parts = role_split([d.id for d in corpus])
    assert judge["train"] == parts["judge"] and picker["train"] == parts["picker"]
    assert set(parts["test"]).isdisjoint(set(judge["train"]) | set(picker["train"]))
    # the calls the shipped customer adapter held out are held out from both scorers
    adapter = json.loads((Path(__file__).resolve().parents[2] / "grouped_sim/data/adapters/customer-smollm2-sft/training.json").read_text())
    assert set(adapter["heldout_dialogues"]) <= set(parts["test"])
    assert cards[JUDGE_SCORER]["role"] == "judge" and cards[PICKER_SCORER]["role"] == "picker"


# --------------------------------------------------------------------------- CLI


def run_main(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from grouped_sim.cli.app import main

    monkeypatch.setattr("sys.argv", ["grouped-sim", *args])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    # rich wraps long lines at spaces: read the output as one line
    return int(info.value.code or 0), " ".join((captured.err + captured.out).split())


@pytest.fixture(scope="module")
def small_corpus(corpus, tmp_path_factory) -> Path:
    from grouped_sim.corpus import write_corpus

    path = tmp_path_factory.mktemp("small") / "calls.jsonl"
    write_corpus(path, corpus[::6])  # 13 calls from all three domains
    return path


def test_cli_trains_and_scores_end_to_end(small_corpus, tmp_path, monkeypatch, capsys) -> None:
    from grouped_sim.corpus import read_corpus
    from grouped_sim.metrics.coherence import reply_indices

    out = tmp_path / "scorer"
    code, text = run_main(["coherence", "train", "--corpus", str(small_corpus), "--out", str(out), "--holdout", "0.25", "--seed", "1"], monkeypatch, capsys)
    assert code == 0, text
    card = json.loads((out / CARD_FILE).read_text())
    assert card["n"]["heldout_dialogues"] == 3 and card["n"]["train_dialogues"] == 10 and card["seed"] == 1
    assert "held-out ROC-AUC" in text
    scores = tmp_path / "scores.jsonl"
    code, text = run_main(["coherence", "score", "--model", str(out), "--dialogues", str(small_corpus), "--out", str(scores)], monkeypatch, capsys)
    assert code == 0, text
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(rows) == sum(len(reply_indices(d)) for d in read_corpus(small_corpus))
    assert all(0 <= r["p_coherent"] <= 1 for r in rows) and {r["dialogue_id"] for r in rows} == {json.loads(line)["id"] for line in small_corpus.read_text().splitlines()}
    assert "mean P(coherent)" in text and "accepted (P >= 0.5)" in text
    # retraining on the card's own split reproduces the same head
    again = tmp_path / "again"
    code, text = run_main(["coherence", "train", "--corpus", str(small_corpus), "--out", str(again), "--split", str(out), "--seed", "1"], monkeypatch, capsys)
    assert code == 0, text
    assert json.loads((again / CARD_FILE).read_text())["split"]["heldout"] == card["split"]["heldout"]
    with np.load(out / HEAD_FILE) as a, np.load(again / HEAD_FILE) as b:
        assert np.allclose(a["coef"], b["coef"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["coherence", "train", "--corpus", "{bad}", "--out", "{tmp}/s"], "{bad}:2"),
        (["coherence", "train", "--corpus", "{tmp}/missing.jsonl", "--out", "{tmp}/s"], "corpus file not found"),
        (["coherence", "train", "--corpus", "{calls}", "--out", "{tmp}/s", "--split", "{badsplit}"], "{badsplit}"),
        (["coherence", "score", "--model", "{small}", "--dialogues", "{bad}"], "not a coherence scorer folder"),
        (["coherence", "score", "--dialogues", "{bad}"], "{bad}:2"),
    ],
)
def test_bad_input_exits_2_naming_file_and_line(args, message, small_corpus, tmp_path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = small_corpus.read_text().splitlines()
    bad.write_text(lines[0] + "\n{\"id\": \"x\", \"domain\": \"broadband\"\n")
    badsplit = tmp_path / "split.json"
    badsplit.write_text(json.dumps({"train": "fd-001"}))
    names = {"bad": bad, "tmp": tmp_path, "small": small_corpus.parent, "calls": small_corpus, "badsplit": badsplit}
    code, text = run_main([a.format(**names) for a in args], monkeypatch, capsys)
    assert code == 2, text
    assert message.format(**names) in text.replace(" ", "") or message.format(**names) in text
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------- hard negatives for the realism discriminator


def test_discriminator_data_gains_hard_negatives_from_other_calls(corpus, tmp_path) -> None:
    from langchain_core.language_models import FakeListChatModel

    from grouped_sim.discriminator.data import HARD_NEGATIVES, add_hard_negatives, build_pairs, read_pairs, records_from_dialogues
    from grouped_sim.discriminator.model import pairs_to_examples

    records = records_from_dialogues(corpus[:20])
    build_pairs(records, tmp_path, model=FakeListChatModel(responses=["oh how lovely, tell me more!"]), limit=6)
    counts = add_hard_negatives(records, tmp_path, n=2, limit=6)
    assert counts == {"wanted": 12, "already_done": 0, "written": 12}
    pairs = read_pairs(tmp_path)  # the one reader still validates every line
    model_made = [p for p in pairs if p["negative_model"] == "hf:smollm2"]
    hard = [p for p in pairs if p["negative_model"] == HARD_NEGATIVES]
    assert len(model_made) == 6 and len(hard) == 12
    by_reply = {}
    for r in records:
        by_reply.setdefault(r["reference"], []).append(r)
    by_id = {r["id"]: r for r in records}
    for p in hard:
        record = by_id[p["id"].rsplit(":hard", 1)[0]]
        assert p["positive"] == record["reference"] and p["context"] == record["context"]
        sources = by_reply[p["negative"]]
        assert all(s["dialogue_id"] != record["dialogue_id"] for s in sources)
        assert any(s["sop_stage"] == record["sop_stage"] for s in sources)
    assert len(pairs_to_examples(pairs)) == 2 * len(pairs)
    assert add_hard_negatives(records, tmp_path, n=2, limit=6)["written"] == 0  # resumes
    assert json.loads((tmp_path / "meta.json").read_text())["hard_negatives"]["per_reply"] == 2
