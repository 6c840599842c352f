"""Discriminator data -> train -> score, end to end on the sample corpus with real models."""

from __future__ import annotations

import json
import math

import pytest

from grouped_sim.discriminator.data import build_pairs, read_pairs
from grouped_sim.discriminator.model import DiscriminatorScorer, clip_context, heldout_dialogues, roc_auc
from grouped_sim.discriminator.rewards import PatternReward, RewardConfig, WeightedReward
from grouped_sim.errors import InputError


def test_pairs_hold_the_real_reply_and_a_generated_one(pairs_dir, spread_records) -> None:
    pairs = read_pairs(pairs_dir)
    assert [p["id"] for p in pairs] == [r["id"] for r in spread_records]
    by_id = {r["id"]: r for r in spread_records}
    for pair in pairs:
        record = by_id[pair["id"]]
        assert pair["positive"] == record["reference"]
        assert pair["context"] == record["context"]
        assert pair["negative"].strip(), "the untuned model wrote nothing"
        assert pair["negative_model"] == "hf:smollm2"
    meta = json.loads((pairs_dir / "meta.json").read_text())
    assert meta["negatives"] == "hf:smollm2"


def test_data_resumes_without_redoing_finished_turns(tmp_path, pairs_dir, spread_records) -> None:
    # Copy the first half of a finished file: a killed run. The resumed run only does the rest.
    lines = (pairs_dir / "pairs.jsonl").read_text().splitlines()
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines[:4]) + "\n" + lines[4][:10])  # plus a torn line

    from langchain_core.language_models import FakeListChatModel

    model = FakeListChatModel(responses=["oh how lovely, tell me more about your wonderful offer!"])
    counts = build_pairs(spread_records, tmp_path, model=model)
    assert counts == {"wanted": len(spread_records), "already_done": 4, "written": len(spread_records) - 4, "dropped": 0}
    # the torn line was dropped, and every turn now has exactly one pair
    resumed = read_pairs(tmp_path)
    assert sorted(p["id"] for p in resumed) == sorted(r["id"] for r in spread_records)
    assert sum(p["negative"].startswith("oh how lovely") for p in resumed) == len(spread_records) - 4


def test_a_bad_pairs_line_is_reported_with_file_and_line(tmp_path) -> None:
    (tmp_path / "pairs.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(InputError, match=r"pairs.jsonl:1"):
        read_pairs(tmp_path)


def test_negatives_from_another_model_are_refused_in_the_same_folder(pairs_dir, spread_records) -> None:
    with pytest.raises(InputError, match="already holds negatives"):
        build_pairs(spread_records, pairs_dir, negatives="hf:/some/other/model")


def test_split_is_by_dialogue_and_deterministic() -> None:
    ids = [f"d{i}" for i in range(30)]
    held = heldout_dialogues(ids * 3, 0.1, seed=0)
    assert len(held) == 3 and held <= set(ids)
    assert held == heldout_dialogues(list(reversed(ids)), 0.1, seed=0)
    assert held != heldout_dialogues(ids, 0.1, seed=1)
    assert heldout_dialogues(ids, 0.0, 0) == set()


def test_roc_auc_and_context_clipping_by_hand() -> None:
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1]) == 1.0
    assert roc_auc([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1]) == 0.75
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5
    assert roc_auc([1, 1], [0.1, 0.2]) is None
    assert clip_context("a\nb\nc\nd", 2) == "c\nd"
    assert clip_context("a\nb", 0) == ""


def test_trained_discriminator_reports_heldout_figures_and_saves_its_config(trained, pairs_dir) -> None:
    out, report = trained
    saved = json.loads((out / "discriminator.json").read_text())
    held = set(saved["heldout_dialogues"])
    assert held, "nothing was held out"
    train_dialogues = {p["dialogue_id"] for p in read_pairs(pairs_dir)} - held
    assert train_dialogues and not (held & train_dialogues)
    assert report.n_heldout == 2 * sum(p["dialogue_id"] in held for p in read_pairs(pairs_dir))
    assert 0.0 <= report.accuracy <= 1.0 and 0.0 <= report.roc_auc <= 1.0
    assert math.isfinite(report.train_loss)
    assert json.loads((out / "eval.json").read_text())["accuracy"] == report.accuracy


def test_scorer_separates_training_pairs_and_feeds_the_pattern_reward(trained, pairs_dir) -> None:
    out, _ = trained
    scorer = DiscriminatorScorer(out)
    pairs = read_pairs(pairs_dir)
    contexts = [p["context"] for p in pairs]
    real = scorer.score(contexts, [p["positive"] for p in pairs])
    fake = scorer.score(contexts, [p["negative"] for p in pairs])
    assert all(0.0 <= s <= 1.0 for s in real + fake)
    assert sum(real) / len(real) > sum(fake) / len(fake)
    # eq. 9: the pattern reward IS the scorer's P(real), read from the `context` column
    reward = PatternReward(scorer)
    assert reward(prompts=["p"] * 2, completions=[" " + pairs[0]["positive"], pairs[0]["negative"]], context=contexts[:1] * 2) == pytest.approx([real[0], fake[0]], abs=1e-5)
    weighted = WeightedReward(scorer, RewardConfig(w_pattern=2.0, w_format=0.0, w_semantic=0.0))
    assert weighted(completions=[pairs[0]["positive"]], context=contexts[:1], reference=[pairs[0]["positive"]]) == pytest.approx([2 * real[0]], abs=1e-5)
    assert scorer.score([], []) == []


def test_cli_score_writes_one_line_per_customer_turn(trained, tmp_path, corpus_path, corpus) -> None:
    from typer.testing import CliRunner

    from grouped_sim.cli.app import app

    out, _ = trained
    small = tmp_path / "two.jsonl"
    small.write_text("".join(line for line in corpus_path.read_text().splitlines(keepends=True)[:2]))
    result = CliRunner().invoke(app, ["discriminator", "score", "--model", str(out), "--dialogues", str(small), "--out", str(tmp_path / "s.jsonl")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    expected = sum(1 for d in corpus[:2] for i, t in enumerate(d.turns) if t.role == "customer" and i > 0)
    assert len(rows) == expected and all(0 <= r["p_real"] <= 1 for r in rows)
    assert "mean P(real)" in result.output


def test_cli_rejects_a_folder_that_is_not_a_discriminator(tmp_path, corpus_path) -> None:
    import subprocess
    import sys

    # through main(), which maps a user error to one line and exit code 2

    proc = subprocess.run(
        [sys.executable, "-c", "from grouped_sim.cli.app import main; main()", "discriminator", "score", "--model", str(tmp_path), "--dialogues", str(corpus_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "not a discriminator folder" in " ".join((proc.stdout + proc.stderr).split())  # rich wraps lines


def test_scorer_survives_overlong_replies_and_keeps_the_latest_context(trained) -> None:
    """A rambling model must not crash a report or a GRPO step; the turn being answered is never cut."""
    from grouped_sim.discriminator.model import _encode

    out, _ = trained
    scorer = DiscriminatorScorer(out)
    context = "Salesman: " + "we have many plans and offers " * 40 + "\nCustomer: what\nSalesman: so is that a yes zebra"
    replies = ["no " * 400, "🙂🙃" * 200, "no thanks"]
    scores = scorer.score([context] * 3, replies)
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    batch = _encode(scorer.tokenizer, [context], ["no thanks"], scorer.config)
    text = scorer.tokenizer.decode(batch["input_ids"][0])
    assert batch["input_ids"].shape[1] <= scorer.config.max_length
    assert "zebra" in text and "no thanks" in text
