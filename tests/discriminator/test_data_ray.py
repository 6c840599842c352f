"""`grouped-sim discriminator data --executor ray` on the session's local Ray instance
(tests/conftest.py `ray_runtime`): two workers, each loading the embedded SmolLM2 from its spec,
write the same pairs.jsonl as a local run (same seeds per batched call, same order), and a
rerun on Ray resumes with nothing to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from grouped_sim.cli.app import app
from grouped_sim.schemas import Dialogue


def _data(calls: Path, out: Path, *extra: str) -> str:
    args = ["discriminator", "data", "--corpus", str(calls), "--out", str(out), "--negatives", "hf:smollm2", "--limit", "5", "--max-new-tokens", "6", "--batch-size", "2"]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


# One form: both go through the same jobs and writer (discriminator/data.py `_write_jobs`); the
# transcript form with two replies a context also checks per-row seeds. The chat form's local path
# builds the pairs of tests/discriminator/conftest.py. (Each form here costs about 20 s of CI.)
@pytest.mark.parametrize("form", [["--form", "transcript", "--per-context", "2"]], ids=["transcript"])
def test_data_on_ray_writes_the_pairs_a_local_run_writes(ray_runtime, corpus: list[Dialogue], tmp_path: Path, form: list[str], monkeypatch) -> None:
    from grouped_sim.corpus import write_corpus
    from grouped_sim.discriminator import data

    calls = tmp_path / "calls.jsonl"
    write_corpus(calls, corpus[:3])
    _data(calls, tmp_path / "local", *form)

    def no_model_here(*args: object) -> None:
        raise AssertionError("the driver loaded the negative model: the Ray run must load it on its workers only")

    monkeypatch.setattr(data, "_negative_model", no_model_here)  # the workers import their own, unpatched module
    shown = _data(calls, tmp_path / "ray", *form, "--executor", "ray", "--ray-workers", "2")
    assert "pairs written, 0 contexts already there" in shown

    local, ray = ((tmp_path / f / "pairs.jsonl").read_text(encoding="utf-8") for f in ("local", "ray"))
    assert ray == local
    negatives = [line for line in ray.splitlines() if '"negative_model":"hf:smollm2"' in line]
    assert len(negatives) >= 5 and len(set(negatives)) == len(negatives)  # model-written, each once
    assert (tmp_path / "ray" / "meta.json").read_text(encoding="utf-8") == (tmp_path / "local" / "meta.json").read_text(encoding="utf-8").replace(str(tmp_path / "local"), str(tmp_path / "ray"))

    again = _data(calls, tmp_path / "ray", *form, "--executor", "ray", "--ray-workers", "2")
    assert "0 pairs written, 5 contexts already there" in again
    assert (tmp_path / "ray" / "pairs.jsonl").read_text(encoding="utf-8") == local
