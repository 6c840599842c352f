"""One short simulation on the real embedded models: what `make demo` does, at the smallest size."""

from __future__ import annotations

import json
from pathlib import Path

from grouped_sim.config import DEFAULT_CUSTOMER_SPEC, SimulationConfig
from grouped_sim.corpus import read_corpus
from grouped_sim.schemas import Dialogue, TerminationReason
from grouped_sim.app.build import build_deps
from grouped_sim.graphs.batch import run_simulation
from grouped_sim.graphs.plan import RunSettings, sample_profiles
from grouped_sim.sop_db.taxonomy import load_taxonomy


def test_short_real_simulation_writes_dialogues_and_run_summary(tmp_path: Path, corpus: list[Dialogue], store_dir: Path) -> None:
    items = sample_profiles(corpus, 2, seed=3)
    config = SimulationConfig(max_turns=2, seed=3)
    settings = RunSettings(sop_db=str(store_dir))
    summary = run_simulation(items, settings, config, tmp_path, deps=lambda: build_deps(settings, config))

    dialogues = read_corpus(tmp_path / "dialogues.jsonl")
    assert len(dialogues) == 2 == summary["dialogues"]
    stages = set(load_taxonomy().ids)
    for d in dialogues:
        assert d.termination_reason is not None and d.termination_reason is not TerminationReason.error, d.error
        assert d.turns[0].role == "salesman"
        customer = d.customer_turns()
        assert 1 <= len(customer) <= 2
        for turn in customer:
            assert turn.text and turn.sop_stage in stages and turn.state is not None and turn.action is not None
        assert d.meta["retrieved"] and all(r not in {i.source for i in items} for r in d.meta["retrieved"])
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["models"]["customer"] == DEFAULT_CUSTOMER_SPEC and run["seed"] == 3
    assert sum(run["outcomes"].values()) == 2
