"""Data shipped with grouped-sim: the sample corpus, the prompts and the trained customer adapter."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_corpus_path() -> Path:
    """The sample telemarketing corpus written for this project (see data/README.md)."""
    return Path(str(resources.files("grouped_sim").joinpath("data/sample_corpus.jsonl")))


def shipped_adapter_path(name: str) -> Path:
    """A LoRA adapter folder shipped under data/adapters/ (see data/adapters/README.md)."""
    return Path(str(resources.files("grouped_sim").joinpath(f"data/adapters/{name}")))
