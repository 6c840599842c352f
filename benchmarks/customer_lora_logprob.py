"""How likely the held-out real customers' replies are under the 1.5B with and without a LoRA (issue 22, item 3).

    .venv/bin/python benchmarks/customer_lora_logprob.py --adapter runs/lora/sft-1.5b.gguf --split runs/cmp/sample-sim/split.json

Each real reply of the fit's held-out calls is read token by token (`ContinuationReader`) after the
call so far in the prefix-caching script a llama.cpp customer reads (D_sim's script_prompt, bare
note). The figure is the mean log-probability per token, and the paired difference adapter minus
plain with a 95 % interval from resampling calls. It says whether the adapter learned anything
about real customers that carries to calls it never saw; `benchmarks/customer_lora.py` says
whether that changes the simulated calls. Results: benchmarks/results/customer_lora_heldout_logprob.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "customer_lora_heldout_logprob.json"


def main() -> None:
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.models.llamacpp import ContinuationReader
    from grouped_sim.sop_db.datasets import d_sim_records

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, required=True, help="the GGUF LoRA (train export-lora)")
    parser.add_argument("--split", type=Path, required=True, help="split.json of the fit whose training calls trained the adapter")
    args = parser.parse_args()
    held = set(json.loads(args.split.read_text())["holdout"])
    rows = [r for d in read_corpus(sample_corpus_path()) if d.id in held for r in d_sim_records(d)]
    prompts, replies = [r["script_prompt"] for r in rows], [r["completion"] for r in rows]
    means = {}
    for name, adapter in (("plain", None), ("adapter", str(args.adapter.resolve()))):
        reader = ContinuationReader("default", slots=4, max_tokens=64, adapter=adapter)
        means[name] = np.array([float(g.mean()) for g in reader.logprobs(prompts, replies)])
    diff = means["adapter"] - means["plain"]
    calls = sorted({r["dialogue_id"] for r in rows})
    of_call = {c: [k for k, r in enumerate(rows) if r["dialogue_id"] == c] for c in calls}
    rng = np.random.default_rng(0)
    draws = [diff[np.concatenate([of_call[c] for c in rng.choice(calls, len(calls))])].mean() for _ in range(4000)]
    result = {
        "replies": len(rows),
        "calls": len(calls),
        "plain_mean_logprob": round(float(means["plain"].mean()), 4),
        "adapter_mean_logprob": round(float(means["adapter"].mean()), 4),
        "adapter_minus_plain": round(float(diff.mean()), 4),
        "ci_over_calls": [round(float(x), 4) for x in np.percentile(draws, [2.5, 97.5])],
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
