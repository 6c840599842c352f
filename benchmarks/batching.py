"""Local request batching in isolation: N short prompts one at a time vs merged by the request queue.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/batching.py [--n 8] [--tokens 32] [--repeats 3]

Eight threads submit one request each (as eight concurrent dialogues do) to the GenerateBatcher in
front of the embedded SmolLM2; the baseline generates the same prompts one by one. Also checks that
each row's text equals its one-at-a-time text (per-row seeded sampling). Results:
benchmarks/results/batching.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from grouped_sim.config import GenerationParams
    from grouped_sim.models import build_chat_model
    from grouped_sim.models.batching import RowRequest, disable_batching, enable_batching

    model = build_chat_model("hf:smollm2", GenerationParams(max_new_tokens=args.tokens))
    loaded = model.loaded
    prompts = [f"Salesman: Hi, is this the owner of shop number {i}?\nCustomer: Yes, speaking. Why, what do you" for i in range(args.n)]

    def row(i: int) -> RowRequest:
        return RowRequest(prompt=prompts[i], seed=1000 + i, temperature=0.95, top_p=0.95, max_new_tokens=args.tokens)

    def count(texts: list[str]) -> int:
        return sum(len(loaded.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)

    seq_tps, bat_tps, same = [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        alone = [model.generate_texts([prompts[i]], None, 1000 + i)[0] for i in range(args.n)]
        seq_tps.append(count(alone) / (time.perf_counter() - start))
        batcher = enable_batching(loaded, max_batch=args.n, window_s=0.05)
        merged: list[str] = [""] * args.n
        threads = [threading.Thread(target=lambda i=i: merged.__setitem__(i, batcher.submit(row(i), None, model.repetition_penalty))) for i in range(args.n)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bat_tps.append(count(merged) / (time.perf_counter() - start))
        sizes = list(batcher.batches)
        disable_batching(loaded)
        same.append(sum(a == b for a, b in zip(alone, merged)))
        print(f"alone {seq_tps[-1]:.1f} tok/s, batched {bat_tps[-1]:.1f} tok/s (batches {sizes}), identical rows {same[-1]}/{args.n}", flush=True)
    result = {
        "benchmark": "local_batching", "n": args.n, "new_tokens": args.tokens, "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg_1m": os.getloadavg()[0]},
        "median_tokens_per_second": {"one_at_a_time": round(statistics.median(seq_tps), 2), "batched": round(statistics.median(bat_tps), 2)},
        "speedup": round(statistics.median(bat_tps) / statistics.median(seq_tps), 2),
        "identical_rows": same,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batching.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
