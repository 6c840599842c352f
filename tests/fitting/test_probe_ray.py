"""`grouped-sim probe --executor ray`: each variant's dialogues on Ray workers, the rows read in the
driver by the manager alone (grouped_sim.app.build.build_manager_deps), the same rows as a local
probe of the same seed. The test Ray instance is the session's (tests/conftest.py `ray_runtime`)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.runtime.fakes import invoke

# One dialogue at a time on one llama.cpp thread, here and on each worker, without llama.cpp's prompt
# cache: batched or multi-thread llama.cpp computes other numbers, hence other text (docs/scale.md),
# and so does a prompt partly restored from the cache. With the cache on, the local probe's second
# variant reads prompts the first one left in this process's model, the workers' (fresh models) do
# not, and one reply in four differed here; a fresh local process wrote the workers' text.
FAST = {
    "customer": {"max_new_tokens": 6}, "role_guard_retries": 0, "best_of": {"n": 1},
    "runtime": {"concurrency": 1, "llama": {"threads": 1, "cache_prompt": False}},
}


def _probe(fitted_dir: Path, config: Path, out: Path, capsys, *extra: str) -> dict:
    args = ["probe", str(fitted_dir), "--n", "2", "--seed", "5", "--config", str(config), "--out", str(out), "--customer", "llamacpp:smollm2", "--coherence", "none", "--manager", "fitted"]
    result = invoke([*args, *extra], capsys)
    assert result.code == 0, result.traceback or result.output[-1500:]
    return json.loads((out / "probe.json").read_text(encoding="utf-8"))


def _dialogues(out: Path, variant: str) -> dict[str, dict]:
    """A variant's dialogues by the real call they twin, with the probe folder's path taken out: the
    replayed script's path is in the salesman spec, hence in each id (a hash of the run's settings)."""
    lines = (out / variant / "dialogues.jsonl").read_text(encoding="utf-8").replace(str(out), "OUT").splitlines()
    return {d["meta"]["profile_source"]: {k: v for k, v in d.items() if k != "id"} for d in map(json.loads, lines)}


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("the driver of a Ray probe loaded a customer model or a salesman")


def test_a_probe_on_ray_workers_writes_the_rows_of_a_local_probe(ray_runtime, fitted_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import grouped_sim.app.build as build

    config = tmp_path / "fast.yaml"
    config.write_text(yaml.safe_dump(FAST), encoding="utf-8")
    local = _probe(fitted_dir, config, tmp_path / "local", capsys)
    # In this process only: the workers (other processes) build with the real functions.
    monkeypatch.setattr(build, "build_customer", _never)
    monkeypatch.setattr(build, "build_salesman", _never)
    on_ray = _probe(fitted_dir, config, tmp_path / "ray", capsys, "--executor", "ray", "--ray-workers", "2")

    # One variant: a second (each variant builds its own workers) doubled the test's 90 s of CI; the
    # fitted one is the variant whose rows the driver's manager computes (odds, end-of-script draws).
    for variant in ("fitted",):
        rows, ray_rows = local["variants"][variant]["rows"], on_ray["variants"][variant]["rows"]
        assert len(rows) == 2 and ray_rows == rows  # decisions, who decided, forced, P(decision), replies, exits
        assert _dialogues(tmp_path / "ray", variant) == _dialogues(tmp_path / "local", variant)  # every turn, seed and state
        run = json.loads((tmp_path / "ray" / variant / "run.json").read_text(encoding="utf-8"))
        assert run["executor"]["kind"] == "ray" and len(run["executor"]["workers"]) == 2
    assert any(r["sim_replies"] for r in on_ray["rows"]), "no simulated reply: nothing compared"
    assert any(r["sim_odds"] for r in on_ray["variants"]["fitted"]["rows"]), "no fitted odds: the driver's manager read nothing"
