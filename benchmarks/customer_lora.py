"""A LoRA for the 1.5B customer against prompting alone, on the same held-out customers (issue 22, item 3).

    grouped-sim sop mine --corpus TRAIN_CALLS.jsonl --out runs/lora/mined     # the fit's 60 training calls only
    grouped-sim train customer-sft --data runs/lora/mined --out runs/lora/sft-1.5b --serve-on llamacpp --bf16 \
        --base hf:$HOME/.cache/grouped-sim/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \
        --max-steps 16 --batch-size 8 --top-layers 4 --lr 3e-4
    grouped-sim train export-lora --adapter runs/lora/sft-1.5b --out runs/lora/sft-1.5b.gguf --base llamacpp:default
    grouped-sim probe runs/cmp/sample-sim --manager fitted --n 15 --coherence JUDGE --out runs/cmp/sample-base-now
    grouped-sim probe runs/cmp/sample-sim --customer llamacpp:default+runs/lora/sft-1.5b.gguf --manager fitted \
        --n 15 --coherence JUDGE --out runs/cmp/sample-lora
    .venv/bin/python benchmarks/customer_lora.py --plain runs/cmp/sample-base-now --lora runs/cmp/sample-lora

Both probes simulate the same held-out customers against the real salesman's moves with the same
fitted manager (so the same decisions: the customer model only chooses the words). Per customer,
paired: the judge's mean P of the twin's replies, its mean words a reply and how far that is from
the real customer's. 95 % intervals by resampling customers (pairs kept together). Results:
benchmarks/results/customer_lora.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "customer_lora.json"


def rows_by_id(probe: Path) -> dict[str, dict]:
    result = json.loads((probe / "probe.json").read_text())
    variant = next(iter(result["variants"].values()))
    return {r["id"]: r for r in variant["rows"] if r.get("error") is None}


def words(replies: list[str]) -> float | None:
    return float(np.mean([len(t.split()) for t in replies])) if replies else None


def per_customer(plain: dict, lora: dict) -> list[dict]:
    out = []
    for cid in sorted(set(plain) & set(lora)):
        p, q = plain[cid], lora[cid]
        real_words = words(p["real_replies"])
        row = {
            "id": cid,
            "plain_words": words(p["sim_replies"]),
            "lora_words": words(q["sim_replies"]),
            "real_words": real_words,
            "plain_p": float(np.mean(p["sim_coherence"])) if p.get("sim_coherence") else None,
            "lora_p": float(np.mean(q["sim_coherence"])) if q.get("sim_coherence") else None,
            "real_p": float(np.mean(p["real_coherence"])) if p.get("real_coherence") else None,
        }
        out.append(row)
    return out


def paired(rows: list[dict], a: str, b: str, seed: int = 0, resamples: int = 4000) -> dict:
    """Mean of b - a over customers with both, and its 95 % bootstrap interval."""
    diffs = np.array([r[b] - r[a] for r in rows if r[a] is not None and r[b] is not None])
    if not len(diffs):
        return {"n": 0}
    rng = np.random.default_rng(seed)
    draws = diffs[rng.integers(0, len(diffs), (resamples, len(diffs)))].mean(axis=1)
    return {"n": int(len(diffs)), "mean": round(float(diffs.mean()), 4), "ci": [round(float(x), 4) for x in np.percentile(draws, [2.5, 97.5])]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", type=Path, required=True)
    parser.add_argument("--lora", type=Path, required=True)
    args = parser.parse_args()
    rows = per_customer(rows_by_id(args.plain), rows_by_id(args.lora))
    for r in rows:
        r["plain_gap_words"] = None if r["plain_words"] is None else abs(r["plain_words"] - r["real_words"])
        r["lora_gap_words"] = None if r["lora_words"] is None else abs(r["lora_words"] - r["real_words"])
    mean = lambda key: round(float(np.mean([r[key] for r in rows if r[key] is not None])), 3)  # noqa: E731
    result = {
        "customers": len(rows),
        "means": {k: mean(k) for k in ("real_words", "plain_words", "lora_words", "real_p", "plain_p", "lora_p")},
        "lora_minus_plain": {
            "judge_mean_p": paired(rows, "plain_p", "lora_p"),
            "words_a_reply": paired(rows, "plain_words", "lora_words"),
            "distance_to_real_words": paired(rows, "plain_gap_words", "lora_gap_words"),
        },
        "lora_minus_real_judge_p": paired(rows, "real_p", "lora_p"),
        "plain_minus_real_judge_p": paired(rows, "real_p", "plain_p"),
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
