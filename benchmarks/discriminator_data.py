"""`grouped-sim discriminator data`: is its generation batched, and what does batching buy?

    .venv/bin/python benchmarks/discriminator_data.py [--records 16] [--repeats 2] [--threads 1]

Chat form (the untuned `hf:smollm2` playing a customer persona, 32 tokens): the same records with
--batch-size 1 (one reply per call) and 8 (eight contexts per call, the default); each row is
seeded by its record's position, so both settings should write the same text. Transcript form
(the shipped customer, the simulator's prompt, 40 tokens): --per-context 1 (one call per reply)
against 4 (four replies of one context per call, its prompt read once). Settings alternate within
each repeat, so a change in machine load hits them alike. Results:
benchmarks/results/discriminator_data.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
RESULTS = Path(__file__).parent / "results"


def run(records, model, negatives: str, params, clean=None) -> tuple[float, list[str], int]:
    """Seconds, the negatives written (in id order) and how many, for one fresh pairs folder."""
    from grouped_sim.discriminator.data import build_pairs, read_pairs

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        counts = build_pairs(records, tmp, negatives=negatives, params=params, model=model, clean=clean)
        seconds = time.perf_counter() - t0
        texts = [p["negative"] for p in sorted(read_pairs(tmp), key=lambda p: p["id"])]
    return seconds, texts, counts["written"] + counts["dropped"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    from grouped_sim.config import DEFAULT_CUSTOMER_SPEC, GenerationParams, SimulationConfig
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.discriminator.data import NegativeParams, records_from_dialogues
    from grouped_sim.graphs.customer import said_reply
    from grouped_sim.models import build_chat_model

    if args.threads:
        torch.set_num_threads(args.threads)
    records = records_from_dialogues(read_corpus(sample_corpus_path()))[: args.records]
    customer = SimulationConfig().customer
    untuned = build_chat_model("hf:smollm2", GenerationParams(max_new_tokens=32))
    shipped = build_chat_model(DEFAULT_CUSTOMER_SPEC, customer)
    settings = {
        "chat, batch 1": (untuned, "hf:smollm2", NegativeParams(batch_size=1), None),
        "chat, batch 8": (untuned, "hf:smollm2", NegativeParams(batch_size=8), None),
        "transcript, 1 per call": (shipped, DEFAULT_CUSTOMER_SPEC, NegativeParams(form="transcript", per_context=1, max_new_tokens=customer.max_new_tokens), said_reply),
        "transcript, 4 per call": (shipped, DEFAULT_CUSTOMER_SPEC, NegativeParams(form="transcript", per_context=4, max_new_tokens=customer.max_new_tokens), said_reply),
    }
    seconds: dict[str, list[float]] = {name: [] for name in settings}
    replies: dict[str, int] = {}
    texts: dict[str, list[str]] = {}
    loads = []
    for _ in range(args.repeats):
        for name, (model, spec, params, clean) in settings.items():
            loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
            s, written, n = run(records, model, spec, params, clean)
            seconds[name].append(s / n)
            replies[name], texts[name] = n, written
            print(f"{name}: {s / n:.2f} s per reply ({n} replies)", flush=True)
    result = {
        "benchmark": "discriminator_data",
        "records": len(records),
        "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg_1m": loads},
        "seconds_per_reply_median": {name: round(statistics.median(v), 3) for name, v in seconds.items()},
        "seconds_per_reply": {name: [round(x, 3) for x in v] for name, v in seconds.items()},
        "replies": replies,
        "chat_rows_identical_batch_1_vs_8": sum(a == b for a, b in zip(texts["chat, batch 1"], texts["chat, batch 8"])),
        "note": "transcript form: per_context 1 and 4 use different seeds per record (seed + j * per_context), so their texts are not compared",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "discriminator_data.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "seconds_per_reply"}, indent=2))


if __name__ == "__main__":
    main()
