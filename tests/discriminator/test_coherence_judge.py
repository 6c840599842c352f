"""The coherence judge's plumbing: features, training, its folder, its score cache, its anchors.

A stand-in reader makes the numbers predictable (a word is likely when the prompt holds it); what the
real reader (the 1.5B on llama.cpp) makes of real and bad replies is measured, with intervals, by
benchmarks/judge_validation.py and reported in docs/judge.md, not asserted here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from grouped_sim.discriminator.judge import (
    CARD_FILE,
    CoherenceJudge,
    JudgeConfig,
    continuation_of,
    prompt_of,
    save_judge,
    shipped_judge_path,
    shuffled_words,
    train_judge,
)
from grouped_sim.errors import InputError


class WordReader:
    """Per-token log-probabilities: -1 for a word the prompt's last two lines hold, -3 otherwise;
    counts its calls so a test can see what was read again."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[np.ndarray]:
        self.calls += len(prompts)
        out = []
        for prompt, text in zip(prompts, continuations):
            recent = set(" ".join(prompt.split("\n")[-3:]).lower().split())
            out.append(np.array([-1.0 if w.lower() in recent else -3.0 for w in text.split()] or [-3.0]))
        return out


@pytest.fixture()
def trained(tmp_path: Path, corpus) -> tuple[Path, WordReader]:
    reader = WordReader()
    ids = sorted(d.id for d in corpus)
    head, card = train_judge(corpus, ids[:24], ids[24:30], JudgeConfig(anchors=2), reader, per_call=2, source="sample")
    return save_judge(tmp_path / "judge", head, card), reader


def test_the_reader_sees_the_call_so_far_and_the_reply_as_its_next_line() -> None:
    context = "Salesman: hi\nCustomer: who is it\nSalesman: Alex from Forkly"
    assert prompt_of(context, 2).endswith("Customer: who is it\nSalesman: Alex from Forkly\nCustomer:")
    assert "Salesman: hi" not in prompt_of(context, 2)
    assert continuation_of("  no   thanks ") == " no thanks\n"


def test_shuffled_words_need_three_words_and_change_the_order() -> None:
    import random

    assert shuffled_words("no thanks", random.Random(0)) is None
    assert sorted(shuffled_words("I pay twenty now", random.Random(0)).split()) == sorted("I pay twenty now".split())


def test_training_writes_a_card_with_held_out_figures_and_the_folder_loads(trained) -> None:
    folder, _ = trained
    judge = CoherenceJudge(folder, reader=WordReader())
    held = judge.card.heldout
    assert held["calls"] == 6 and 0.0 <= held["auc_real_vs_other"] <= 1.0 and held["auc_real_vs_shuffled_ci"]
    assert len(judge.anchors) == 2 and judge.card.trained_on["calls"] == 24


def test_scores_are_probabilities_and_kept_on_disk_by_what_was_read(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROUPED_SIM_CACHE", str(tmp_path / "cache"))
    folder, _ = trained
    reader = WordReader()
    judge = CoherenceJudge(folder, reader=reader)
    contexts = ["Salesman: the fibre plan is twenty nine a month", "Salesman: the fibre plan is twenty nine a month"]
    replies = ["twenty nine a month is too much", "purple hookererines copper"]
    first = judge.score(contexts, replies)
    assert all(0.0 <= p <= 1.0 for p in first) and first[0] > first[1]
    read = reader.calls
    again = CoherenceJudge(folder, reader=reader).score(contexts, replies)
    assert again == pytest.approx(first, abs=1e-6) and reader.calls == read  # nothing read twice


def test_anchored_reads_against_other_calls_and_is_another_judge(trained, corpus) -> None:
    folder, _ = trained
    judge = CoherenceJudge(folder, reader=WordReader())
    other = judge.anchored(corpus[40:60])
    assert other.anchors != judge.anchors and other.digest() != judge.digest()
    assert judge.anchored(corpus[:1]) is judge  # too few calls to anchor on: unchanged


def test_a_damaged_judge_folder_is_a_clear_error_naming_the_file(trained) -> None:
    folder, _ = trained
    (folder / "head.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"head\.npz"):
        CoherenceJudge(folder)
    (folder / CARD_FILE).write_text("{}")
    with pytest.raises(InputError, match=CARD_FILE):
        CoherenceJudge(folder)


def test_the_shipped_judge_loads_and_carries_what_it_was_trained_on() -> None:
    judge = CoherenceJudge(shipped_judge_path(), reader=WordReader())
    assert judge.card.config.reader == "default" and len(judge.anchors) == judge.card.config.anchors
    assert judge.card.trained_on["real"] > 50 and judge.card.split["heldout"]
