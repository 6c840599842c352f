"""Data shipped with grouped-sim: the sample corpus, the prompts, the trained customer adapter and the coherence scorers."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_corpus_path() -> Path:
    """The sample telemarketing corpus written for this project (see data/README.md)."""
    return Path(str(resources.files("grouped_sim").joinpath("data/sample_corpus.jsonl")))


def shipped_adapter_path(name: str) -> Path:
    """A LoRA adapter folder shipped under data/adapters/ (see data/adapters/README.md)."""
    return Path(str(resources.files("grouped_sim").joinpath(f"data/adapters/{name}")))


JUDGE_SCORER = "coherence-judge"
PICKER_SCORER = "coherence-picker"


def shipped_scorer_path(name: str = JUDGE_SCORER) -> Path:
    """A coherence scorer folder shipped under data/scorers/ (see data/scorers/README.md).

    `coherence-judge` (the default) measures coherence in reports; `coherence-picker`, trained on
    other calls of the sample corpus, is for choosing among candidate replies, so that what picks a
    reply never also grades it.
    """
    return Path(str(resources.files("grouped_sim").joinpath(f"data/scorers/{name}")))
