"""What the agent scorecard needs from the domain layer, and a short simulation that ends in one.

The evaluation layer (grouped_sim.report) computes the scorecard from plain values; this module,
in the application layer, reads the taxonomy (stage kinds, objection kinds) and the presets
(difficulty tiers) into a `ScorecardContext`, and runs the short simulation behind the pytest
plugin's fixture (`score_agent`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grouped_sim.errors import InputError
from grouped_sim.report.scorecard import Scorecard, ScorecardContext


def scorecard_context(taxonomy: Path | str | None = None, presets: Path | str | None = None) -> ScorecardContext:
    """Stage order and kinds from the taxonomy, tier propensities from the presets."""
    from grouped_sim.profiles.presets import load_presets
    from grouped_sim.sop_db.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    tiers = load_presets(presets).tiers
    return ScorecardContext(
        stages=tax.ids,
        kinds={s.id: s.kind.value for s in tax.stages},
        objections={s.id: s.objection for s in tax.stages if s.objection},
        tiers={name: tier.buy_propensity for name, tier in tiers.items()},
    )


def archetype_items(archetypes: Sequence[str], customers: int, seed: int, corpus: Path | str | None = None) -> list[Any]:
    """`customers` real profiles of each named archetype from a corpus (default: the sample corpus)."""
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.graphs.plan import sample_profiles

    dialogues = read_corpus(corpus or sample_corpus_path())
    known = sorted({d.profile.archetype for d in dialogues if d.profile and d.profile.archetype})
    items = []
    for name in archetypes:
        mine = [d for d in dialogues if d.profile and d.profile.archetype == name]
        if not mine:
            raise InputError(f"archetype {name!r}: no customer of it in {corpus or 'the sample corpus'} (it has: {', '.join(known)})")
        items += sample_profiles(mine, customers, seed)
    return items


def score_agent(
    agent: str,
    *,
    out_dir: Path,
    archetypes: Sequence[str],
    sop_db: Path | str | None,
    customers: int = 2,
    trials: int = 1,
    max_turns: int = 4,
    seed: int = 0,
    customer: str | None = None,
    corpus: Path | str | None = None,
    config: dict[str, Any] | None = None,
) -> Scorecard:
    """Simulate `agent` (a salesman spec, e.g. python:my_agent:respond) against `customers` real
    profiles of each archetype, `trials` times each, and return its scorecard.

    The run folder is named by a hash of the arguments, so the same call in the same session (or
    with the same `out_dir` later) finishes or reuses its run instead of simulating again.
    """
    from grouped_sim.app.build import build_deps, check_run_specs
    from grouped_sim.config import DEFAULT_CUSTOMER_SPEC, SimulationConfig, SimulatorMode
    from grouped_sim.corpus import read_corpus
    from grouped_sim.graphs.batch import run_simulation
    from grouped_sim.graphs.plan import RunSettings, with_trials
    from grouped_sim.report.scorecard import scorecard

    raw = {"max_turns": max_turns, "seed": seed, **(config or {})}
    mode = SimulatorMode.full if sop_db is not None else SimulatorMode.prompt_only
    cfg = SimulationConfig.model_validate({"mode": mode.value, **raw})
    items = with_trials(archetype_items(archetypes, customers, seed, corpus), trials)
    settings = RunSettings(salesman=agent, customer=customer or DEFAULT_CUSTOMER_SPEC, manager="light", sop_db=str(Path(sop_db).resolve()) if sop_db else None)
    check_run_specs(settings)
    key = json.dumps({"settings": settings.model_dump(), "config": cfg.digest(), "items": [i.model_dump(mode="json") for i in items]}, sort_keys=True)
    run_dir = Path(out_dir) / ("run-" + hashlib.sha256(key.encode()).hexdigest()[:12])
    run_simulation(items, settings, cfg, run_dir, deps=lambda: build_deps(settings, cfg))
    dialogues = read_corpus(run_dir / "dialogues.jsonl")
    return Scorecard(scorecard(dialogues, scorecard_context()), run_dir=run_dir)
