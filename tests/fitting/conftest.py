"""A team's raw transcripts as they arrive: the sample corpus without profiles or stage labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from grouped_sim.corpus import write_corpus
from grouped_sim.schemas import Dialogue


def raw(dialogue: Dialogue) -> Dialogue:
    turns = [t.model_copy(update={"sop_stage": None}) for t in dialogue.turns]
    return dialogue.model_copy(update={"profile": None, "turns": turns, "meta": {}})


@pytest.fixture(scope="session")
def raw_corpus(tmp_path_factory: pytest.TempPathFactory, corpus: list[Dialogue]) -> Path:
    path = tmp_path_factory.mktemp("raw") / "calls.jsonl"
    write_corpus(path, [raw(d) for d in corpus[::2]])  # 38 calls, every domain and outcome
    return path


@pytest.fixture(scope="session")
def fitted_dir(tmp_path_factory: pytest.TempPathFactory, raw_corpus: Path) -> Path:
    from grouped_sim.graphs.fit import FitSettings, run_fit

    out = tmp_path_factory.mktemp("fit") / "sim"
    run_fit(FitSettings(corpus=str(raw_corpus), holdout=0.25, seed=1), out)
    return out
