"""Throughput of the embedded CPU default: sequential vs concurrent dialogues, and the share of a
turn's wall time spent outside model generation (manager, retrieval, graph, I/O).

    .venv/bin/python benchmarks/throughput.py [--dialogues 4] [--max-turns 2] [--repeats 3] [--concurrency 4] [--out FILE]

Runs the real thing (the default salesman and customer on llama.cpp, light manager, Chroma store
built from the sample corpus) and reports medians over repeats; generation time is every llama.cpp
request's. Results: benchmarks/results/throughput.json (the committed file was measured on
hf:smollm2 with transformers and its request merging, both since replaced by llama.cpp).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS / "throughput.json")
    args = parser.parse_args()

    import torch

    from grouped_sim.config import SimulationConfig
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from dataclasses import replace

    from grouped_sim.app.build import build_deps
    from grouped_sim.graphs.batch import run_simulation
    from grouped_sim.graphs.graph import SimDeps
    from grouped_sim.graphs.plan import RunSettings, sample_profiles
    from grouped_sim.models.llamacpp import LlamaServer, gguf_tokenizer
    from grouped_sim.sop_db.store import SOPStore

    work = Path(tempfile.mkdtemp(prefix="gs-bench-"))
    corpus = read_corpus(sample_corpus_path())
    SOPStore(work / "db", create=True).upsert_dialogues(corpus)
    items = sample_profiles(corpus, args.dialogues, seed=1)

    gen_seconds = {"t": 0.0, "calls": 0}
    real_call = LlamaServer._call

    def timed_call(server, method, body):
        start = time.perf_counter()
        try:
            return real_call(server, method, body)
        finally:
            gen_seconds["t"] += time.perf_counter() - start  # concurrent requests overlap: summed, not wall
            gen_seconds["calls"] += 1

    LlamaServer._call = timed_call
    settings = RunSettings(sop_db=str(work / "db"))
    runs: dict[str, list[dict]] = {"sequential": [], "concurrent": []}
    deps_cache: dict[int, SimDeps] = {}
    for repeat in range(args.repeats):
        for label, concurrency in (("sequential", 1), ("concurrent", args.concurrency)):
            config = SimulationConfig(max_turns=args.max_turns, seed=repeat)
            config = config.model_copy(update={"runtime": config.runtime.model_copy(update={"concurrency": concurrency, "checkpoint": True})})
            deps = replace(deps_cache.get(concurrency) or build_deps(settings, config), config=config)
            deps_cache[concurrency] = deps
            tokenizer = gguf_tokenizer(deps.customer.inner.model_path)
            gen_seconds.update(t=0.0, calls=0)
            out = work / f"{label}-{repeat}"
            start = time.perf_counter()
            summary = run_simulation(items, settings, config, out, deps=deps)
            wall = time.perf_counter() - start
            dialogues = [json.loads(line) for line in (out / "dialogues.jsonl").read_text().splitlines()]
            # Generated text: every customer turn and every salesman turn but the fixed opener.
            texts = [t["text"] for d in dialogues for i, t in enumerate(d["turns"]) if t["role"] == "customer" or i > 0]
            tokens = sum(len(tokenizer.encode(t, add_special_tokens=False).ids) for t in texts)
            turns = sum(1 for d in dialogues for t in d["turns"] if t["role"] == "customer")
            runs[label].append(
                {
                    "wall_seconds": round(wall, 2),
                    "dialogues": summary["dialogues"],
                    "customer_turns": turns,
                    "generated_tokens": tokens,
                    "generation_seconds": round(gen_seconds["t"], 2),
                    "llama_requests": gen_seconds["calls"],
                    "dialogues_per_minute": round(60 * summary["dialogues"] / wall, 2),
                    "tokens_per_second": round(tokens / wall, 2),
                    "outside_generation_share": round(1 - gen_seconds["t"] / wall, 4) if concurrency == 1 else None,
                }
            )
            print(label, repeat, runs[label][-1], flush=True)

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[label])

    result = {
        "benchmark": "throughput",
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(), "load_avg_1m": os.getloadavg()[0]},
        "settings": {"dialogues": args.dialogues, "max_turns": args.max_turns, "repeats": args.repeats, "concurrency": args.concurrency, "models": f"{settings.salesman} salesman + {settings.customer} customer (llama.cpp), light manager, full mode"},
        "median": {
            label: {k: med(label, k) for k in ("dialogues_per_minute", "tokens_per_second", "wall_seconds")}
            for label in runs
        },
        "median_outside_generation_share_sequential": statistics.median(r["outside_generation_share"] for r in runs["sequential"]),
        "speedup_concurrent_over_sequential": round(med("concurrent", "dialogues_per_minute") / med("sequential", "dialogues_per_minute"), 2),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median", "median_outside_generation_share_sequential", "speedup_concurrent_over_sequential")}, indent=2))


if __name__ == "__main__":
    main()
