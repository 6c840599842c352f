"""Data shipped with grouped-sim: the sample corpus, the prompts, the trained customer adapter and the coherence and realism scorers."""

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
REALISM_JUDGE = "realism-judge"
REALISM_PICKER = "realism-picker"


def shipped_scorer_path(name: str = JUDGE_SCORER) -> Path:
    """A scorer folder shipped under data/scorers/ (see data/scorers/README.md).

    The `*-judge` scorers (`coherence-judge` is the default) measure coherence and realism in
    reports; the `*-picker` ones, trained on other calls of the sample corpus, choose among
    best-of-N candidate replies, so that what picks a reply never also grades it.
    """
    return Path(str(resources.files("grouped_sim").joinpath(f"data/scorers/{name}")))
