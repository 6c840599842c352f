"""Proposing stages for a new domain: clusters of the salesman's real moves, ready to be named."""

from __future__ import annotations

from pathlib import Path

from grouped_sim.sop_db.propose import propose_taxonomy, salesman_moves
from grouped_sim.sop_db.taxonomy import load_taxonomy


def test_a_draft_taxonomy_groups_real_moves_and_loads_back(corpus, tmp_path: Path) -> None:
    import yaml

    taxonomy, shares = propose_taxonomy(corpus, k=5, seed=0)
    moves = set(salesman_moves(corpus))
    assert len(taxonomy.stages) == 5 and abs(sum(shares) - 1.0) < 0.01
    assert all(stage.examples and set(stage.examples) <= moves for stage in taxonomy.stages)
    assert taxonomy.ids == ["stage_a", "stage_b", "stage_c", "stage_d", "stage_e"]
    # the first stage is where calls start: greetings, not closing asks
    assert any(word in " ".join(taxonomy.stages[0].examples).lower() for word in ("hello", "hi", "good morning", "afternoon"))
    path = tmp_path / "draft.yaml"
    path.write_text(yaml.safe_dump(taxonomy.model_dump(mode="json")), encoding="utf-8")
    assert load_taxonomy(path).ids == taxonomy.ids
