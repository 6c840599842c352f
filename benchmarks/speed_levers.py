"""Identical-text speed levers of the embedded default, measured side by side on this machine.

    .venv/bin/python benchmarks/speed_levers.py [--reps 3]

1. Loading the embedded SmolLM2: de-quantising its GGUF (what every start did) vs the cached plain
   fp32 copy (`models/materialize.py`, what `load_weights` reads now). Parameters compared exactly.
2. Best-of-4 candidates of one full-mode-length prompt (about 470 tokens): four separate calls, one
   padded batch of four copies, and the shared-prefix path of `generate_batch` (prompt read once,
   its KV cache copied to four rows). Every candidate's text compared with the separate call of
   the same seed.

Results: benchmarks/results/speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def gguf_model():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grouped_sim.models.local import quiet_gguf_loading, resolve_weights

    loc = resolve_weights("smollm2")
    with quiet_gguf_loading():
        tok = AutoTokenizer.from_pretrained(loc.folder, gguf_file=loc.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(loc.folder, gguf_file=loc.gguf_file, dtype=torch.float32)
    return tok, model.eval()


def prompt_of_sample(n_calls: int = 3, turns: int = 8) -> str:
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.transcript import transcript_text

    calls = read_corpus(sample_corpus_path())[:n_calls]
    return "\n\n".join(transcript_text(c.turns[:turns]) for c in calls) + "\nCustomer:"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/speed.json")
    args = parser.parse_args()

    from grouped_sim.models import local
    from grouped_sim.models.hf_generate import RowRequest, generate_batch

    t = time.perf_counter()
    tok, gmodel = gguf_model()
    gguf_s = time.perf_counter() - t
    local.load_weights("smollm2")  # materialises once if needed (not timed)
    local._CACHE.clear()
    t = time.perf_counter()
    plain = local.load_weights("smollm2")
    plain_s = time.perf_counter() - t
    same_params = all(bool((a == b).all()) for a, b in zip(plain.model.state_dict().values(), gmodel.state_dict().values()))
    del gmodel

    prompt = prompt_of_sample()
    n_tokens = len(plain.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    timings: dict[str, list[float]] = {"separate": [], "padded_batch": [], "shared_prefix": []}
    identical = [0, 0]
    for rep in range(args.reps):
        rows = [RowRequest(prompt=prompt, seed=100 * rep + i, temperature=0.95, top_p=0.95, max_new_tokens=40) for i in range(4)]
        t = time.perf_counter()
        separate = [generate_batch(plain, [r], ["\n"], 1.05)[0] for r in rows]
        timings["separate"].append(time.perf_counter() - t)
        t = time.perf_counter()
        padded_batch(plain, rows)
        timings["padded_batch"].append(time.perf_counter() - t)
        t = time.perf_counter()
        shared = generate_batch(plain, rows, ["\n"], 1.05)
        timings["shared_prefix"].append(time.perf_counter() - t)
        identical[0] += sum(a == b for a, b in zip(separate, shared))
        identical[1] += len(rows)
    med = {k: round(statistics.median(v), 2) for k, v in timings.items()}
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_1min": os.getloadavg()[0]},
        "load_seconds": {"gguf_dequantise": round(gguf_s, 1), "cached_plain": round(plain_s, 2), "parameters_identical": same_params},
        "best_of_4": {
            "prompt_tokens": n_tokens,
            "reps": args.reps,
            "median_seconds": med,
            "speedup_vs_separate": round(med["separate"] / med["shared_prefix"], 2),
            "speedup_vs_padded_batch": round(med["padded_batch"] / med["shared_prefix"], 2),
            "identical_to_separate": f"{identical[0]}/{identical[1]}",
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


def padded_batch(loaded, rows) -> None:
    """Four copies of the prompt as one padded batch, no shared prefix (the path before)."""
    import torch
    from transformers import StoppingCriteriaList

    from grouped_sim.models.hf_generate import RowSampler, stop_criterion

    tok = loaded.tokenizer
    batch = tok([r.prompt for r in rows], return_tensors="pt", padding=True, add_special_tokens=False)
    with loaded.lock, torch.inference_mode():
        loaded.model.generate(
            **batch, max_new_tokens=40, repetition_penalty=1.05, pad_token_id=tok.pad_token_id, do_sample=False,
            logits_processor=[RowSampler(rows)], temperature=None, top_p=None, top_k=None,
            stopping_criteria=StoppingCriteriaList([stop_criterion(loaded, ["\n"])]),
        )


if __name__ == "__main__":
    main()
