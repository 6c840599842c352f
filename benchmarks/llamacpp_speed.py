"""Speed of the default simulation on llama.cpp, against llama.cpp's own throughput on the same requests.

    .venv/bin/python benchmarks/llamacpp_speed.py --calls 4 --concurrency 1 [--max-turns 6]
    .venv/bin/python benchmarks/llamacpp_speed.py --calls 8 --concurrency 4

One run of `grouped-sim simulate` with the default models (the embedded 1.5B as salesman and
customer, the light manager, the SOP store of the sample corpus) in this process, every request to
llama.cpp recorded. Then the same requests are sent again, in the same order and with as many in
flight as the run had dialogues, to a fresh llama.cpp server with the same model and slots: what
llama.cpp does with these prompts and nothing else (no manager, retrieval, role guard, graph or
bookkeeping). The figures: calls per minute, generated tokens per second of the run and of the
bare replay, and their ratio (issue 22 asks for at least 0.8). Results are appended to
benchmarks/results/llamacpp_speed.json, one entry per invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "llamacpp_speed.json"


def run_simulation(work: Path, calls: int, concurrency: int, max_turns: int, seed: int) -> tuple[float, list]:
    from grouped_sim.cli.app import app
    from grouped_sim.models.llamacpp import LlamaServer

    app(["sop", "build", "--db", str(work / "sop_db")], standalone_mode=False)
    LlamaServer.recorded = []
    start = time.perf_counter()
    app(["simulate", "--profiles", str(calls), "--sop-db", str(work / "sop_db"), "--out", str(work / "run"), "--seed", str(seed),
         "--concurrency", str(concurrency), "--max-turns", str(max_turns)], standalone_mode=False)
    elapsed = time.perf_counter() - start
    recorded, LlamaServer.recorded = LlamaServer.recorded, None
    return elapsed, recorded


def replay(recorded: list, concurrency: int) -> tuple[float, int]:
    """The run's requests against a fresh server with the same settings: (seconds, tokens generated)."""
    from grouped_sim.config import LlamaServerParams
    from grouped_sim.models.embedded import embedded_path, find_embedded
    from grouped_sim.models.llamacpp import LlamaServer, ServerSettings

    params = LlamaServerParams()
    server = LlamaServer(ServerSettings(model_path=str(embedded_path(find_embedded("default"))), slots=params.slots, context=params.context))

    def send(item: tuple) -> int:
        kind, body, _ = item
        result = server.chat(body) if kind == "chat" else server.complete(body)
        return int(result["usage"]["completion_tokens"])

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        tokens = sum(pool.map(send, recorded))
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, recorded = run_simulation(Path(tmp), args.calls, args.concurrency, args.max_turns, args.seed)
        dialogues = [json.loads(line) for line in (Path(tmp) / "run" / "dialogues.jsonl").read_text().splitlines()]
    run_tokens = sum(int(r["usage"]["completion_tokens"]) for _, _, r in recorded)
    prompt_tokens = sum(int(r["usage"]["prompt_tokens"]) for _, _, r in recorded)
    cached = sum(int((r.get("timings") or {}).get("cache_n") or (r["usage"].get("prompt_tokens_details") or {}).get("cached_tokens", 0)) for _, _, r in recorded)
    raw_seconds, raw_tokens = replay(recorded, args.concurrency)
    entry = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores",
        "calls": len(dialogues),
        "concurrency": args.concurrency,
        "max_turns": args.max_turns,
        "turns": sum(len(d["turns"]) for d in dialogues),
        "requests": len(recorded),
        "run_seconds": round(elapsed, 1),
        "calls_per_minute": round(60 * len(dialogues) / elapsed, 2),
        "run_generated_tokens": run_tokens,
        "run_tokens_per_second": round(run_tokens / elapsed, 2),
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_from_cache": cached,
        "raw_seconds": round(raw_seconds, 1),
        "raw_generated_tokens": raw_tokens,
        "raw_tokens_per_second": round(raw_tokens / raw_seconds, 2),
        "ratio_run_to_raw": round((run_tokens / elapsed) / (raw_tokens / raw_seconds), 3),
    }
    history = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    history.append(entry)
    RESULTS.write_text(json.dumps(history, indent=2) + "\n")
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    sys.exit(main())
