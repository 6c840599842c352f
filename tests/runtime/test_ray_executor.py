"""`--executor ray` on a real Ray runtime: a local Ray instance on this machine's loopback, started
once for the session (tests/conftest.py `ray_runtime`), two worker actors, and a seeded fake customer (its reply is a function of prompt and seed,
so runs agree only where every call got the same prompt and seed). The workers build their own
participants from a module-level build function (tests/runtime/fakes.py), as the CLI's build_deps.

What must hold: the same dialogues as a local run of the same plan, a worker killed mid-run costs
nothing (no loss, no duplicate), a worker past its retries is named in the error record, the run
folder has one writer (the driver) and resumes as a local run does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grouped_sim.errors import InputError
from tests.runtime.conftest import HERE, SCRIPTED, fast_config_dict
from tests.runtime.fakes import DIE_FLAG_ENV, build_dying_seeded, build_refusing, build_seeded, invoke


def _plan(corpus, n: int, salesman: str = SCRIPTED, concurrency: int = 2):
    from grouped_sim.config import SimulationConfig
    from grouped_sim.graphs.plan import RunSettings, sample_profiles

    raw = fast_config_dict()
    config = SimulationConfig.model_validate({**raw, "mode": "prompt-only", "runtime": {**raw["runtime"], "concurrency": concurrency}})
    return sample_profiles(corpus, n, seed=3), RunSettings(salesman=salesman, customer="hf:smollm2"), config


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "dialogues.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def _by_id(run: Path) -> dict[str, dict]:
    lines = _lines(run)
    ids = [d["id"] for d in lines]
    assert len(ids) == len(set(ids)), "a dialogue was written twice"
    return {d["id"]: d for d in lines}


def _local_reference(tmp_path: Path, items, settings, config) -> dict[str, dict]:
    from grouped_sim.graphs.batch import run_simulation

    run_simulation(items, settings, config, tmp_path / "local", deps=build_seeded(settings, config))
    return _by_id(tmp_path / "local")


def _ray(build, items, settings, config, **ray_settings):
    from grouped_sim.graphs.ray_executor import RaySettings, ray_executor

    return ray_executor(build, settings, config, items, RaySettings(**ray_settings))


def test_ray_run_writes_the_same_dialogues_as_a_local_run(ray_runtime, tmp_path: Path, corpus) -> None:
    from grouped_sim.graphs.batch import run_simulation
    from grouped_sim.graphs.plan import RunPlan

    items, settings, config = _plan(corpus, 6)
    reference = _local_reference(tmp_path, items, settings, config)
    seen: list[str] = []
    summary = run_simulation(items, settings, config, tmp_path / "ray", deps=_ray(build_seeded, items, settings, config, workers=2), on_progress=lambda d: seen.append(d.id))

    written = _by_id(tmp_path / "ray")
    assert set(written) == set(RunPlan(settings=settings, config=config, items=items).ids())
    assert written == reference  # every field of every dialogue, meta and seeds included
    assert len({t["text"] for d in written.values() for t in d["turns"] if t["role"] == "customer"}) > 1, "the fake gave one reply: nothing compared"
    assert sorted(seen) == sorted(written)  # the progress bar advanced once per dialogue
    assert summary["executor"]["kind"] == "ray" and len(set(summary["executor"]["workers"])) == 2
    assert summary["dialogues"] == 6 and summary["errors"] == {}


def _dying_run(tmp_path: Path, corpus, n: int, max_restarts: int) -> tuple[dict, int]:
    """A Ray run in which one worker kills itself mid-dialogue (tests/runtime/fakes.py DyingCustomer);
    the summary and the pid that died."""
    from grouped_sim.graphs.batch import run_simulation

    items, settings, config = _plan(corpus, n)
    flag = Path(os.environ[DIE_FLAG_ENV])
    flag.write_text("armed", encoding="utf-8")
    executor = _ray(build_dying_seeded, items, settings, config, workers=2, max_restarts=max_restarts)
    summary = run_simulation(items, settings, config, tmp_path / "ray", deps=executor)
    taken = Path(f"{flag}.taken")
    assert not flag.exists() and taken.is_file(), "no worker died"
    pid = int(taken.read_text(encoding="utf-8"))
    taken.unlink()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return summary, pid


def test_a_worker_killed_mid_dialogue_loses_and_duplicates_nothing(ray_runtime, tmp_path: Path, corpus) -> None:
    items, settings, config = _plan(corpus, 8)
    reference = _local_reference(tmp_path, items, settings, config)
    summary, _ = _dying_run(tmp_path, corpus, 8, max_restarts=2)

    written = _by_id(tmp_path / "ray")
    assert written == reference  # all 8, once each, word for word: the dead worker's dialogues were rerun
    assert summary["errors"] == {} and "repeats_dropped" not in summary


def test_a_worker_dead_past_its_retries_is_named_in_the_error_record(ray_runtime, tmp_path: Path, corpus) -> None:
    """The control of the test above: without restarts the dialogues the dead worker held (1 or 2)
    fail, each as an infrastructure error naming the worker, and the other worker runs the rest."""
    summary, pid = _dying_run(tmp_path, corpus, 6, max_restarts=0)

    written = _by_id(tmp_path / "ray")
    assert len(written) == 6
    failed = [d for d in written.values() if d["error"]]
    assert 1 <= len(failed) <= 2 and summary["errors"] == {"infrastructure": len(failed)}
    victim = next(name for name in summary["executor"]["workers"] if name.endswith(f"(pid {pid})"))
    assert all(d["error"]["worker"] == victim and d["termination_reason"] == "error" for d in failed)
    assert all(d["error"]["type"] == "ActorDiedError" for d in failed)


def test_a_failing_agent_is_recorded_with_the_worker_that_ran_it(ray_runtime, tmp_path: Path, corpus) -> None:
    from grouped_sim.graphs.batch import run_simulation

    items, settings, config = _plan(corpus, 2, salesman=f"python:{HERE / 'agents.py'}:broken")
    executor = _ray(build_seeded, items, settings, config, workers=2)
    summary = run_simulation(items, settings, config, tmp_path / "ray", deps=executor)

    names = set(summary["executor"]["workers"])
    for d in _lines(tmp_path / "ray"):
        assert d["error"]["who"] == "salesman" and d["error"]["type"] == "ConnectionError"
        assert d["error"]["worker"] in names and d["error"]["worker"].startswith("ray actor ")
    assert summary["errors"] == {"salesman": 2}


def test_a_build_that_fails_on_the_workers_stops_the_run_before_its_folder_exists(ray_runtime, tmp_path: Path, corpus) -> None:
    from grouped_sim.graphs.batch import run_simulation

    items, settings, config = _plan(corpus, 2)
    with pytest.raises(InputError, match="no SOP store here"):
        run_simulation(items, settings, config, tmp_path / "ray", deps=_ray(build_refusing, items, settings, config, workers=1))
    assert not (tmp_path / "ray").exists()


def test_resume_on_ray_keeps_what_is_written_and_runs_the_rest(ray_runtime, tmp_path: Path, corpus) -> None:
    """A driver killed mid-run leaves what a local run leaves: a prefix of dialogues.jsonl. Resumed
    on Ray, the prefix stays as it was and only the rest runs."""
    from grouped_sim.graphs.batch import run_simulation

    items, settings, config = _plan(corpus, 4)
    reference = _local_reference(tmp_path, items, settings, config)
    run = tmp_path / "local"
    kept = (run / "dialogues.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:2]
    (run / "dialogues.jsonl").write_text("".join(kept), encoding="utf-8")

    summary = run_simulation(items, settings, config, run, deps=_ray(build_seeded, items, settings, config, workers=2), resume=True)

    assert summary["resumed"] == {"kept": 2, "ran": 2, "retried_failed": 0}
    assert (run / "dialogues.jsonl").read_text(encoding="utf-8").startswith("".join(kept))
    assert _by_id(run) == reference


def test_the_cli_runs_simulate_on_ray_workers(ray_runtime, tmp_path: Path, monkeypatch, capsys) -> None:
    """The real command: `--executor ray --ray-workers 2`. The workers build with the seeded fake
    (the CLI hands them its build function; here that is the test double, by reference)."""
    import grouped_sim.app.build as build

    monkeypatch.setattr(build, "build_deps", build_seeded)
    config = tmp_path / "fast.yaml"
    config.write_text(json.dumps(fast_config_dict()), encoding="utf-8")
    run = tmp_path / "run"
    args = ["simulate", "--out", str(run), "--mode", "prompt-only", "--profiles", "3", "--seed", "4", "--salesman", SCRIPTED, "--config", str(config)]
    result = invoke([*args, "--executor", "ray", "--ray-workers", "2", "--ray-cpus-per-worker", "1"], capsys)

    assert result.code == 0, result.traceback or result.output[-800:]
    assert "starting 2 Ray workers" in result.output and "3 dialogues in" in result.output
    summary = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert summary["executor"]["kind"] == "ray" and len(summary["executor"]["workers"]) == 2
    assert all(" on 127.0.0.1 " in name for name in summary["executor"]["workers"])  # the test instance is on loopback
    assert len(_by_id(run)) == 3


def test_without_ray_installed_the_executor_says_how_to_install_it(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as it does where it is not installed
    config = tmp_path / "fast.yaml"
    config.write_text(json.dumps(fast_config_dict()), encoding="utf-8")
    run = tmp_path / "run"
    result = invoke(["simulate", "--out", str(run), "--mode", "prompt-only", "--profiles", "1", "--salesman", SCRIPTED, "--config", str(config), "--executor", "ray"], capsys)

    assert result.traceback is None, result.traceback
    assert result.code == 2 and "pip install 'grouped-sim[ray]'" in result.output
    assert not run.exists()


LOOPBACK_PROBE = """
import json, psutil
from grouped_sim.graphs.ray_executor import RaySettings, ray_session
with ray_session(RaySettings(workers=1)):
    import ray
    ports = [(p.name(), c.laddr.ip) for p in psutil.Process().children(recursive=True) for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    print(json.dumps({"node": ray.util.get_node_ip_address(), "gcs": ray.get_runtime_context().gcs_address, "ports": ports}))
"""


def test_the_local_instance_a_run_starts_listens_on_loopback_only(sub_env: dict[str, str]) -> None:
    """No --ray-address, no $RAY_ADDRESS: the instance the CLI starts (in a fresh process, as the
    CLI does) has its node, its GCS and every port of its processes on 127.0.0.1, so nothing off
    the machine can reach it. (`_node_ip_address="127.0.0.1"` alone gets the network address.)"""
    env = {k: v for k, v in sub_env.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    done = subprocess.run([sys.executable, "-c", LOOPBACK_PROBE], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["node"] == "127.0.0.1" and seen["gcs"].startswith("127.0.0.1:")
    assert {name for name, _ in seen["ports"]} >= {"gcs_server", "raylet"}, seen["ports"]
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for _, ip in seen["ports"]), seen["ports"]


@pytest.mark.parametrize(
    "args",
    [["sop", "mine", "--out", "mined"], ["discriminator", "data", "--out", "pairs", "--limit", "1"]],
    ids=["sop-mine", "discriminator-data"],
)
def test_without_ray_the_corpus_commands_say_how_to_install_it(args: list[str], tmp_path: Path, monkeypatch, capsys) -> None:
    """sop mine and discriminator data (graphs/ray_map.py) fail as simulate does, before writing."""
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.chdir(tmp_path)
    result = invoke([*args, "--executor", "ray"], capsys)

    assert result.traceback is None, result.traceback
    assert result.code == 2 and "pip install 'grouped-sim[ray]'" in result.output
    assert list(tmp_path.iterdir()) == []
