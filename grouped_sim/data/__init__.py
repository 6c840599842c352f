"""Data shipped with grouped-sim: the sample corpus and the prompts."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_corpus_path() -> Path:
    """The sample telemarketing corpus written for this project (see data/README.md)."""
    return Path(str(resources.files("grouped_sim").joinpath("data/sample_corpus.jsonl")))
