"""One process against two Ray workers on this machine: model calls per minute of `simulate`.

    .venv/bin/python benchmarks/ray_scale.py [--dialogues 6] [--max-turns 2] [--repeats 2] [--out FILE]

Each arm is the real command line in a fresh process, on the small embedded model on llama.cpp
(llamacpp:smollm2) as both salesman and customer, prompt-only (no manager, no store: the model
calls are what a worker multiplies), best of 1, no role-guard retries, so every turn is one model
call. The arms:

- local: one process, --concurrency 2 (two llama.cpp slots batched by one server, the default of
  one llama.cpp thread per core: 2 here);
- local-1-thread: the same with runtime.llama.threads 1 (llama.cpp threads that wait on each other
  stall when another process takes a core: tests/conftest.py measured 0.1 s against 20 s);
- local-sequential: one dialogue at a time, one thread: what each Ray worker does, in one process;
- ray: --executor ray, 2 workers of 1 CPU each, --concurrency 1 each (one server per worker, one
  thread each), on a local Ray instance started by the command.

Calls per minute count the dialogue phase (run.json wall_seconds less load_seconds: model and
worker start-up excluded) and the whole command too. Prompt caching is off
(runtime.llama.cache_prompt: false), so a reply depends on its prompt and seed only and the two
arms' dialogues can be compared word for word. Results: benchmarks/results/ray_scale.json.

    .venv/bin/python benchmarks/ray_scale.py --writer 300

measures the other end, the driver as single writer: dialogues a second with instant models (the
seeded fake of tests/runtime/fakes.py and a scripted salesman, one turn each), local against two
Ray workers in this process; added to the same JSON as `writer`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
MODEL = "llamacpp:smollm2"
# arm: (flags, runtime.llama.threads). threads 0 is "one per core": the default.
ARMS = {
    "local": (["--concurrency", "2"], 0),
    "local-1-thread": (["--concurrency", "2"], 1),
    "local-sequential": (["--concurrency", "1"], 1),
    "ray": (["--concurrency", "1", "--executor", "ray", "--ray-workers", "2", "--ray-cpus-per-worker", "1"], 0),
}


def config_file(folder: Path, threads: int) -> Path:
    path = folder / f"bench-{threads}.json"  # YAML reads JSON
    path.write_text(json.dumps({
        "customer": {"max_new_tokens": 24}, "salesman": {"max_new_tokens": 24}, "role_guard_retries": 0, "best_of": {"n": 1},
        "runtime": {"checkpoint": False, "llama": {"cache_prompt": False, "threads": threads}},
    }), encoding="utf-8")
    return path


def run_arm(name: str, out: Path, args: argparse.Namespace, seed: int) -> dict:
    flags, threads = ARMS[name]
    config = config_file(out.parent, threads)
    command = [
        sys.executable, "-c", "from grouped_sim.cli.app import main; main()", "simulate", "--out", str(out), "--mode", "prompt-only", "--profiles", str(args.dialogues),
        "--max-turns", str(args.max_turns), "--seed", str(seed), "--salesman", MODEL, "--customer", MODEL, "--config", str(config), *flags,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "RAY_ADDRESS": ""}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    command_seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr[-3000:]}")
    summary = json.loads((out / "run.json").read_text(encoding="utf-8"))
    dialogues = [json.loads(line) for line in (out / "dialogues.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    calls = sum(len(d["turns"]) for d in dialogues)  # one model call per turn (best of 1, no retries)
    simulate_seconds = summary["wall_seconds"] - summary["load_seconds"]
    return {
        "arm": name, "seed": seed, "dialogues": len(dialogues), "calls": calls, "errors": summary["errors"],
        "load_seconds": summary["load_seconds"], "simulate_seconds": round(simulate_seconds, 1), "command_seconds": round(command_seconds, 1),
        "calls_per_minute": round(60 * calls / simulate_seconds, 1), "calls_per_minute_whole_command": round(60 * calls / command_seconds, 1),
        "load_average_before": load_before, "load_average_after": os.getloadavg()[0], "executor": summary.get("executor"),
        "texts_sha256": {d["id"]: hashlib.sha256(json.dumps([t["text"] for t in d["turns"]]).encode()).hexdigest()[:16] for d in dialogues},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=6)
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "ray_scale.json")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS), help="run only these; the runs of other arms already in --out are kept")
    parser.add_argument("--writer", type=int, default=0, help="measure only the driver's cost per dialogue, with N instant dialogues")
    args = parser.parse_args()
    if args.writer:
        writer_overhead(args.writer, args.out)
        return

    work = Path(tempfile.mkdtemp(prefix="gs-ray-bench-"))
    saved = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    runs = [r for r in saved.get("runs", []) if r["arm"] not in args.arms]
    for repeat in range(args.repeats):
        for name in (args.arms if repeat % 2 == 0 else list(reversed(args.arms))):  # alternate: drifting load hits every arm
            runs.append(run_arm(name, work / f"{name}-{repeat}", args, seed=repeat))
            print(f"{name} repeat {repeat}: {runs[-1]['calls']} calls, {runs[-1]['calls_per_minute']} calls/min (dialogue phase), "
                  f"{runs[-1]['calls_per_minute_whole_command']} whole command; load {runs[-1]['load_average_after']:.2f}", flush=True)
    result = {
        "what": __doc__.strip().splitlines()[0], "model": MODEL, "dialogues": args.dialogues, "max_turns": args.max_turns,
        "arms": {name: " ".join(flags) + f" (runtime.llama.threads {threads})" for name, (flags, threads) in ARMS.items()},
        "medians": medians(runs), "same_dialogues_as_ray": same_as_ray(runs),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "runs": runs, "writer": saved.get("writer"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"medians": result["medians"], "same_dialogues_as_ray": result["same_dialogues_as_ray"]}, indent=2))


def medians(runs: list[dict]) -> dict:
    keys = ("calls_per_minute", "calls_per_minute_whole_command", "load_seconds", "simulate_seconds")
    return {arm: {"runs": sum(r["arm"] == arm for r in runs), **{k: statistics.median(r[k] for r in runs if r["arm"] == arm) for k in keys}} for arm in dict.fromkeys(r["arm"] for r in runs)}


def same_as_ray(runs: list[dict]) -> dict:
    """Per arm: of the dialogues of each seed, how many have word for word the text of the Ray
    run of that seed (runs without text digests are left out)."""
    ray = {r["seed"]: r["texts_sha256"] for r in runs if r["arm"] == "ray" and "texts_sha256" in r}
    out: dict[str, list[str]] = {}
    for r in runs:
        if r["arm"] != "ray" and "texts_sha256" in r and r["seed"] in ray:
            same = sum(ray[r["seed"]].get(k) == v for k, v in r["texts_sha256"].items())
            out.setdefault(r["arm"], []).append(f"seed {r['seed']}: {same} of {len(r['texts_sha256'])}")
    return out


def writer_overhead(n: int, out: Path) -> None:
    """Dialogues a second through the driver when the models answer at once: what a single writer
    can take. Local (concurrency 8) against 2 Ray workers (8 each), the same plan."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    import ray

    from grouped_sim.config import SimulationConfig
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.graphs.batch import run_simulation
    from grouped_sim.graphs.plan import RunSettings, sample_profiles
    from grouped_sim.graphs.ray_executor import RaySettings, ray_executor
    from tests.runtime.fakes import build_seeded

    items = sample_profiles(read_corpus(sample_corpus_path()), n, seed=1)
    settings = RunSettings(salesman=f"python:{root / 'tests' / 'runtime' / 'agents.py'}:scripted", customer="hf:smollm2")
    config = SimulationConfig.model_validate({"mode": "prompt-only", "max_turns": 1, "best_of": {"n": 1}, "role_guard_retries": 0, "runtime": {"concurrency": 8, "checkpoint": False}})
    work = Path(tempfile.mkdtemp(prefix="gs-ray-writer-"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    result = {"dialogues": n, "turns_each": 2, "load_average_before": os.getloadavg()[0]}
    try:
        for name, deps in (("local", lambda: build_seeded(settings, config)), ("ray", lambda: ray_executor(build_seeded, settings, config, items, RaySettings(workers=2)))):
            summary = run_simulation(items, settings, config, work / name, deps=deps())
            seconds = summary["wall_seconds"] - summary["load_seconds"]
            result[name] = {"simulate_seconds": round(seconds, 2), "dialogues_per_second": round(n / seconds, 1), "errors": summary["errors"]}
    finally:
        ray.shutdown()
    result["load_average_after"] = os.getloadavg()[0]
    saved = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    saved["writer"] = result
    out.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
