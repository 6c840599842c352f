"""The local engines side by side on this machine: speed, identical text, and what the lean one costs in quality.

    .venv/bin/python benchmarks/engine.py [--calls 6] [--seed 7] [--skip-quality]

Every row compares `engine: transformers` (transformers' generate in fp32, what every run used
before) with `engine: auto` (the lean decoder, grouped_sim/models/lean.py), in one run:

1. kernel: seconds to read a 400-token prompt and per new token (1 and 2 rows), the shipped
   customer model, median of 3.
2. simulate: `grouped-sim simulate` as a user runs it (a fresh process each), on the embedded
   default (salesman hf:smollm2, customer hf:smollm2+customer-sft) and on the demo's setup (the
   knn: stand-in salesman), --calls customers, the same seed, plus the auto engine at best of 1 (the
   sampling the issue measured; the default is best of 4). Calls per minute over the whole
   command and over its simulation part (run.json's wall minus load seconds). With --before REF (repeatable),
   the same commands also run on the code of git REF (built into a temporary folder, with its own
   defaults): "today" in the issue's sense, next to the engines of this code.
3. identical: the lean run again with the same seed, and again at --concurrency 3 (requests merged
   into batches): every dialogue's text compared with the first lean run.
4. quality: on the 15 held-out "test" calls of the sample corpus (never seen by the adapter or the
   scorers): per-token negative log-likelihood of the real customer replies under each engine
   (teacher forced, the simulator's transcript prompt), and one sampled reply per context graded
   by the shipped coherence judge (acceptance with a 95 % bootstrap interval over dialogues) and
   its length distance to the real replies.

Results: benchmarks/results/engine.json. Run it on a quiet machine: the figures are wall times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "grouped_sim.cli.app"]
ENGINES = ("transformers", "auto")


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "load_1min_at_start": os.getloadavg()[0]}


# ---- 1. kernel ----------------------------------------------------------------------------


def kernel(reps: int = 3) -> dict:
    from grouped_sim.config import DEFAULT_CUSTOMER_SPEC, GenerationParams
    from grouped_sim.models import build_chat_model
    from grouped_sim.models.batching import RowRequest, generate_batch

    prompt = " ".join(["Salesman: We can move you to the faster plan for the same price.\nCustomer: not sure\n"] * 24)
    out: dict = {}
    for engine in ENGINES:
        model = build_chat_model(DEFAULT_CUSTOMER_SPEC, GenerationParams(engine=engine))
        loaded, resolved = model.loaded, model.resolved_engine
        ids = loaded.tokenizer(prompt, add_special_tokens=False).input_ids[:400]
        text = loaded.tokenizer.decode(ids)

        def timed(rows: int, new: int) -> float:
            reqs = [RowRequest(prompt=text, seed=i, temperature=0.95, top_p=0.95, max_new_tokens=new) for i in range(rows)]
            generate_batch(loaded, reqs, None, 1.05, resolved)  # warm
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                generate_batch(loaded, reqs, None, 1.05, resolved)
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

        read = timed(1, 1)
        out[model.engine_description()] = {
            "read_400_token_prompt_s": round(read, 3),
            "ms_per_new_token_1_row": round((timed(1, 33) - read) / 32 * 1000, 1),
            "ms_per_new_token_2_rows": round((timed(2, 33) - read) / 32 * 1000, 1),
        }
        print("kernel", engine, out[model.engine_description()], flush=True)
    return out


# ---- 2. and 3. simulate ----------------------------------------------------------------------


def config_file(folder: Path, engine: str, best_of: int | None = None) -> Path:
    """The default run config with both roles on `engine` (every other setting as shipped; `best_of`: another n)."""
    import yaml

    from grouped_sim.config import SimulationConfig

    config = SimulationConfig().model_dump(mode="json")
    for role in ("salesman", "customer"):
        config[role]["engine"] = engine
    if best_of is not None:
        config["best_of"]["n"] = best_of
    path = folder / f"config-{engine}{'' if best_of is None else f'-n{best_of}'}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def command_for(code: Path | None) -> tuple[list[str], dict[str, str]]:
    """The CLI's command line and environment: this checkout's, or the package held in folder `code`."""
    env = dict(os.environ)
    if code is None:
        return list(CLI), env
    import site

    # -S skips site-packages' .pth files, so this checkout's editable install stays out of the way
    env["PYTHONPATH"] = os.pathsep.join([str(code), *site.getsitepackages()])
    return [sys.executable, "-S", "-m", "grouped_sim.cli.app"], env


def simulate(out: Path, config: Path | None, salesman: str | None, calls: int, seed: int, sop_db: Path, concurrency: int = 1, code: Path | None = None) -> dict:
    """One `simulate` command; `code`: a folder holding another version of the package to run."""
    cli, env = command_for(code)
    cmd = [*cli, "simulate", "--profiles", str(calls), "--seed", str(seed), "--sop-db", str(sop_db), "--out", str(out), "--concurrency", str(concurrency)]
    if config:
        cmd += ["--config", str(config)]
    if salesman:
        cmd += ["--salesman", salesman]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=code or ROOT, capture_output=True, env=env)
    command_s = time.perf_counter() - t0
    run = json.loads((out / "run.json").read_text())
    sim_s = run["wall_seconds"] - run["load_seconds"]
    return {
        "command_seconds": round(command_s, 1),
        "simulation_seconds": round(sim_s, 1),
        "dialogues": run["dialogues"],
        "customer_turns": run["customer_turns"],
        "calls_per_minute": round(60 * run["dialogues"] / command_s, 2),
        "calls_per_minute_simulating": round(60 * run["dialogues"] / sim_s, 2),
        "engines": run.get("engines"),
    }


def texts(run: Path) -> list[list[str]]:
    lines = (run / "dialogues.jsonl").read_text().splitlines()
    return [[t["text"] for t in json.loads(line)["turns"]] for line in sorted(lines, key=lambda l: json.loads(l)["id"])]


def build_before(ref: str, work: Path) -> Path:
    """The package as of git `ref`, installed (no dependencies: this environment's) into a folder."""
    work.mkdir(parents=True, exist_ok=True)
    tree, target = work / "before-src", work / "before-pkg"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), ref], check=True, cwd=ROOT, capture_output=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(tree)], check=True, capture_output=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    return target


def speedups(rows: dict, against: str, arm: str = "auto") -> dict:
    return {
        "calls_per_minute": round(rows[arm]["calls_per_minute"] / rows[against]["calls_per_minute"], 2),
        "simulating": round(rows[arm]["calls_per_minute_simulating"] / rows[against]["calls_per_minute_simulating"], 2),
    }


def simulate_side_by_side(work: Path, calls: int, seed: int, befores: list[str]) -> tuple[dict, dict]:
    from grouped_sim.data import sample_corpus_path

    sop_db = work / "sop_db"
    subprocess.run([*CLI, "sop", "build", "--db", str(sop_db)], check=True, cwd=ROOT, capture_output=True)
    setups = {"embedded default (hf:smollm2 salesman)": None, "demo (knn: salesman)": f"knn:{sample_corpus_path()}"}
    old_code = {ref: build_before(ref, work / f"before-{n}") for n, ref in enumerate(befores)}
    old_stores = {}
    for n, (ref, code) in enumerate(old_code.items()):  # each version reads a store of its own making
        cli, env = command_for(code)
        old_stores[ref] = work / f"sop_db-before-{n}"
        subprocess.run([*cli, "sop", "build", "--db", str(old_stores[ref])], check=True, cwd=code, capture_output=True, env=env)
    results: dict = {}
    for name, salesman in setups.items():
        rows = {}
        for n, (ref, code) in enumerate(old_code.items()):
            rows[f"before ({ref})"] = simulate(work / f"{name[:4]}-before-{n}", None, salesman, calls, seed, old_stores[ref], code=code)
            print("simulate", name, "before", ref, rows[f"before ({ref})"], flush=True)
        for engine in ENGINES:
            rows[engine] = simulate(work / f"{name[:4]}-{engine}", config_file(work, engine), salesman, calls, seed, sop_db)
            print("simulate", name, engine, rows[engine], flush=True)
        # Today's sampling (best of 1, as the issue measured it) on this code: the engine's share of
        # the speed-up, apart from what best of 4 spends.
        rows["auto, best of 1"] = simulate(work / f"{name[:4]}-auto-n1", config_file(work, "auto", best_of=1), salesman, calls, seed, sop_db)
        print("simulate", name, "auto, best of 1", rows["auto, best of 1"], flush=True)
        rows["speedup_vs_transformers_engine"] = speedups(rows, "transformers")
        for ref in old_code:
            rows[f"speedup_vs_before ({ref})"] = speedups(rows, f"before ({ref})")
            rows[f"speedup_best_of_1_vs_before ({ref})"] = speedups(rows, f"before ({ref})", "auto, best of 1")
        results[name] = rows
    first = texts(work / "demo-auto")
    again = simulate(work / "demo-auto-again", config_file(work, "auto"), setups["demo (knn: salesman)"], calls, seed, sop_db)
    merged = simulate(work / "demo-auto-c3", config_file(work, "auto"), setups["demo (knn: salesman)"], calls, seed, sop_db, concurrency=3)
    identical = {
        "same_seed_again": {"dialogues": len(first), "identical": texts(work / "demo-auto-again") == first},
        "concurrency_3_vs_1": {"dialogues": len(first), "identical": texts(work / "demo-auto-c3") == first, "calls_per_minute": merged["calls_per_minute"]},
        "again_calls_per_minute": again["calls_per_minute"],
    }
    print("identical", identical, flush=True)
    return results, identical


# ---- 4. quality ------------------------------------------------------------------------------


def held_out_cases() -> list[tuple[object, list[object], str]]:
    """(call, history, real reply) for every customer reply of the 15 held-out test calls."""
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.discriminator.coherence import reply_turns, split_dialogues

    calls = read_corpus(sample_corpus_path())
    _, held = split_dialogues([c.id for c in calls], 0.2, 0)
    return [(c, c.turns[:i], c.turns[i].text) for c in calls if c.id in set(held) for i in reply_turns(c)]


def prompt_for(call, history) -> str:
    from grouped_sim.customer_prompt import transcript_prompt
    from grouped_sim.schemas import Profile

    profile = (call.profile or Profile(summary="a customer")).model_copy(update={"buy_propensity": None})
    return transcript_prompt(profile, call.domain, history)


def reply_nll(model, prompt: str, reply: str) -> tuple[float, int]:
    """Summed negative log-likelihood of " reply\\n" after the prompt, in the engine's own arithmetic."""
    import torch

    loaded = model.loaded
    ids = loaded.tokenizer(prompt, add_special_tokens=False).input_ids
    target = loaded.tokenizer(prompt + " " + reply + "\n", add_special_tokens=False).input_ids[len(ids) :]
    if model.resolved_engine == "lean":
        lean = loaded.lean()
        cache = lean.new_cache(len(ids) + len(target))
        logits = [lean.read_prompt(ids, [cache])]
        for i, token in enumerate(target[:-1]):
            logits.append(lean.step(torch.tensor([token]), [len(ids) + i], [cache])[0])
        stacked = torch.stack(logits)
    else:
        with torch.inference_mode():
            stacked = loaded.model(torch.tensor([ids + target])).logits[0, len(ids) - 1 : -1].float()
    nll = -torch.log_softmax(stacked, dim=-1)[torch.arange(len(target)), torch.tensor(target)].sum()
    return float(nll), len(target)


def quality(cases: list, seed: int) -> dict:
    import numpy as np

    from grouped_sim.config import DEFAULT_CUSTOMER_SPEC, GenerationParams
    from grouped_sim.data import JUDGE_SCORER, shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer
    from grouped_sim.graphs.customer import CustomerPrompt, generate_reply
    from grouped_sim.metrics.fidelity import wasserstein
    from grouped_sim.metrics.intervals import bootstrap_ci
    from grouped_sim.models import build_chat_model
    from grouped_sim.schemas import CustomerAction, Profile
    from grouped_sim.transcript import transcript_text

    judge = CoherenceScorer(shipped_scorer_path(JUDGE_SCORER))
    contexts = [transcript_text(h) for _, h, _ in cases]
    groups = [c.id for c, _, _ in cases]
    real = [r for _, _, r in cases]

    def acceptance(replies: list[str]) -> dict:
        accepted = [float(p >= 0.5) for p in judge.score(contexts, replies)]
        units = [[a for a, g in zip(accepted, groups) if g == key] for key in dict.fromkeys(groups)]
        low, high = bootstrap_ci(units, lambda u: float(np.mean([v for unit in u for v in unit])))
        return {"coherence_acceptance": round(float(np.mean(accepted)), 3), "ci95": [round(low, 3), round(high, 3)]}

    out: dict = {"contexts": len(cases), "dialogues": len(set(groups)), "real replies": acceptance(real)}
    for engine in ENGINES:
        model = build_chat_model(DEFAULT_CUSTOMER_SPEC, GenerationParams(temperature=0.95, top_p=0.95, max_new_tokens=40, engine=engine))
        nll = [reply_nll(model, prompt_for(c, h), r) for c, h, r in cases]
        total, tokens = sum(n for n, _ in nll), sum(t for _, t in nll)
        replies = []
        for k, (call, history, _) in enumerate(cases):
            profile = (call.profile or Profile(summary="a customer")).model_copy(update={"buy_propensity": None})
            inputs = CustomerPrompt(profile=profile, domain=call.domain, history=list(history))
            replies.append(generate_reply(model, inputs, CustomerAction.speak, seed=seed + k, retries=1).text)
        row = {
            "nll_per_token": round(total / tokens, 4),
            "perplexity": round(math.exp(total / tokens), 2),
            "tokens": tokens,
            **acceptance(replies),
            "length_w1_to_real": round(wasserstein([len(r.split()) for r in replies], [len(r.split()) for r in real]), 2),
            "examples": replies[:6],
        }
        out[model.engine_description()] = row
        print("quality", engine, {k: v for k, v in row.items() if k != "examples"}, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--before", action="append", default=[], help="a git ref whose code runs the same simulate commands (repeatable; e.g. the commit the issue measured)")
    parser.add_argument("--out", default="benchmarks/results/engine.json")
    args = parser.parse_args()
    result: dict = {"machine": machine(), "command": " ".join(sys.argv)}
    result["kernel"] = kernel()
    with tempfile.TemporaryDirectory() as tmp:
        result["simulate"], result["identical"] = simulate_side_by_side(Path(tmp), args.calls, args.seed, args.before)
    if not args.skip_quality:
        result["quality"] = quality(held_out_cases(), seed=1000)
    result["machine"]["load_1min_at_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
