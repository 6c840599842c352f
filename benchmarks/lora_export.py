"""Does the exported GGUF adapter compute on llama.cpp what the PEFT adapter computes on transformers?

    .venv/bin/python benchmarks/lora_export.py [--turn 2] [--threads 1]

Exports the shipped customer adapter (`grouped-sim train export-lora`), then, on a transcript prompt
of each of its held-out calls (training.json lists them), reads the next-token log-probabilities of
four models: llamacpp:smollm2 and llamacpp:smollm2+EXPORT (llama.cpp's top 100), hf:smollm2 and
hf:smollm2+customer-sft (transformers, the whole vocabulary). A gap is the mean |logprob difference|
over the first model's top-20 tokens (a token missing from a llama.cpp top 100 counts at its least
likely one: a lower bound). Reported per prompt:

    base gap     llama.cpp base vs transformers base: the engines' own difference (Q4_1 arithmetic)
    adapted gap  llama.cpp adapted vs transformers adapted: should not exceed the base gap
    effect       llama.cpp adapted vs llama.cpp base: what the adapter does

The same for an export without the q/k rope row order (an ablation: what the test must catch).
Results: benchmarks/results/lora_export.json.
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


def prompts(turn: int) -> list[tuple[str, str]]:
    """(dialogue id, transcript prompt) of each held-out call of the shipped adapter that has the turn."""
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path, shipped_adapter_path
    from grouped_sim.sop_db.datasets import d_sim_records

    held = json.loads((shipped_adapter_path("customer-smollm2-sft") / "training.json").read_text())["heldout_dialogues"]
    by_id = {d.id: list(d_sim_records(d)) for d in read_corpus(sample_corpus_path()) if d.id in held}
    return [(d, by_id[d][turn]["prompt"]) for d in held if len(by_id[d]) > turn]


def llama_logprobs(spec: str, texts: list[str], threads: int) -> list[dict[int, float]]:
    from grouped_sim.config import LlamaServerParams, RuntimeParams
    from grouped_sim.models import build_chat_model

    model = build_chat_model(spec, runtime=RuntimeParams(llama=LlamaServerParams(slots=1, context=1024, threads=threads)))
    body = {"max_tokens": 1, "temperature": 0.0, "logprobs": 100, "cache_prompt": False}
    results = [model.server.complete({"prompt": t, **body}) for t in texts]
    return [{x["id"]: float(x["logprob"]) for x in r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]} for r in results]


def transformers_logprobs(spec: str, texts: list[str]) -> list[list[float]]:
    import torch

    from grouped_sim.models import build_chat_model

    loaded = build_chat_model(spec).loaded
    with torch.no_grad():
        return [torch.log_softmax(loaded.model(loaded.tokenizer(t, return_tensors="pt").input_ids).logits[0, -1].float(), -1).tolist() for t in texts]


def gap(reference: dict[int, float], other: dict[int, float] | list[float], top: int = 20) -> float:
    ids = sorted(reference, key=reference.get, reverse=True)[:top]
    floor = min(other.values()) if isinstance(other, dict) else 0.0
    pick = (lambda i: other.get(i, floor)) if isinstance(other, dict) else (lambda i: other[i])
    return round(statistics.fmean(abs(reference[i] - pick(i)) for i in ids), 4)


def export(out: Path, rope_order: bool) -> float:
    import grouped_sim.models.lora_gguf as lora_gguf

    keep = lora_gguf.rope_rows
    if not rope_order:
        lora_gguf.rope_rows = lambda b, heads: b
    started = time.monotonic()
    try:
        lora_gguf.export_lora(lora_gguf.adapter_folder("customer-sft"), out)
    finally:
        lora_gguf.rope_rows = keep
    return round(time.monotonic() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turn", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1 on a shared 2-core box)")
    args = parser.parse_args()
    chosen = prompts(args.turn)
    texts = [t for _, t in chosen]
    folder = Path(tempfile.mkdtemp())
    seconds = {"export": export(folder / "customer.gguf", True), "export_without_rope_order": export(folder / "unordered.gguf", False)}
    hf_base, hf_adapted = transformers_logprobs("hf:smollm2", texts), transformers_logprobs("hf:smollm2+customer-sft", texts)
    llama_base = llama_logprobs("llamacpp:smollm2", texts, args.threads)
    results: dict = {"turn": args.turn, "dialogues": [d for d, _ in chosen], "seconds": seconds}
    for name in ("customer", "unordered"):
        adapted = llama_logprobs(f"llamacpp:smollm2+{folder / name}.gguf", texts, args.threads)
        rows = [
            {"base_gap": gap(lb, hb), "adapted_gap": gap(la, ha), "effect_llama": gap(la, lb), "effect_transformers": gap(dict(enumerate(ha)), hb)}
            for lb, la, hb, ha in zip(llama_base, adapted, hf_base, hf_adapted)
        ]
        summary = {k: [min(r[k] for r in rows), round(statistics.fmean(r[k] for r in rows), 4), max(r[k] for r in rows)] for k in rows[0]}
        ratio = round(statistics.fmean(r["adapted_gap"] for r in rows) / statistics.fmean(r["base_gap"] for r in rows), 3)
        results["with_rope_order" if name == "customer" else "without_rope_order"] = {"per_prompt": rows, "min_mean_max": summary, "adapted_over_base_gap": ratio}
        print(f"{name}: min/mean/max {summary}; mean adapted gap / mean base gap {ratio}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lora_export.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
