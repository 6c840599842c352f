"""`grouped-sim sop mine --executor ray` on the session's local Ray instance (tests/conftest.py
`ray_runtime`): two workers, each building the kNN tagger (MiniLM) from the recipe, write the
same files as a local run of the same input, and a rerun resumes with nothing to do."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from grouped_sim.cli.app import app
from grouped_sim.schemas import Dialogue

FILES = ("mined.jsonl", "annotated_corpus.jsonl", "D_gen.jsonl", "D_sim.jsonl")


def _input(corpus: list[Dialogue], path: Path) -> None:
    """Six calls: two labelled with profiles, two without labels, two without labels or profiles."""
    lines = []
    for i, dialogue in enumerate(corpus[:6]):
        if i >= 2:
            dialogue = dialogue.model_copy(update={"turns": [t.model_copy(update={"sop_stage": None}) for t in dialogue.turns]})
        if i >= 4:
            dialogue = dialogue.model_copy(update={"profile": None})
        lines.append(dialogue.model_dump_json())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _mine(raw: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(app, ["sop", "mine", "--corpus", str(raw), "--out", str(out), "--batch-size", "1", *extra])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_mine_on_ray_writes_what_a_local_run_writes(ray_runtime, corpus: list[Dialogue], tmp_path: Path, monkeypatch) -> None:
    from grouped_sim.sop_db.mine import MineRecipe

    raw = tmp_path / "raw.jsonl"
    _input(corpus, raw)
    _mine(raw, tmp_path / "local")

    def no_miner_here(self: MineRecipe) -> None:
        raise AssertionError("the driver built the Miner: the Ray run must build it on its workers only")

    monkeypatch.setattr(MineRecipe, "miner", no_miner_here)  # the workers import their own, unpatched class
    shown = _mine(raw, tmp_path / "ray", "--executor", "ray", "--ray-workers", "2")
    assert "mining 6 chunks on Ray workers" in shown

    for name in FILES:
        assert (tmp_path / "ray" / name).read_text(encoding="utf-8") == (tmp_path / "local" / name).read_text(encoding="utf-8"), name
    mined = [json.loads(line) for line in (tmp_path / "ray" / "mined.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [m["id"] for m in mined] == [d.id for d in corpus[:6]]  # input order, once each
    assert {m["profile_status"] for m in mined} == {"given", "derived"} and any(m["stage_sources"].get("knn") for m in mined)
    local, ray = (json.loads((tmp_path / f / "mine.json").read_text(encoding="utf-8")) for f in ("local", "ray"))
    assert {**ray, "store": None} == {**local, "store": None} and ray["store"]["chains"] == local["store"]["chains"] == 6

    again = _mine(raw, tmp_path / "ray", "--executor", "ray", "--ray-workers", "2")
    assert "6 already mined, 0 to do" in again
    assert (tmp_path / "ray" / "mined.jsonl").read_text(encoding="utf-8") == (tmp_path / "local" / "mined.jsonl").read_text(encoding="utf-8")
