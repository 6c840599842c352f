"""Train the customer model on the sample D_sim and measure it before and after.

    .venv/bin/python benchmarks/train_customer.py --out runs/bench-customer \
        --discriminator runs/disc [--sft-steps 10] [--grpo-steps 0] [--adapter DIR] [--eval-n 24]

Steps: (1) D_sim from the sample corpus; 10 % of DIALOGUES held out (the discriminator's split
rule); (2) customer SFT on the rest (skipped with --adapter, e.g. the shipped adapter, whose
training.json must list the same held-out dialogues, so no evaluated prompt was trained on);
(3) optional GRPO from the SFT adapter with the three rewards (its reward curve is
train_log.jsonl; a finished OUT/grpo with the same step count is reused); (4) on held-out prompts,
the base model and each trained model write one reply per prompt in the simulator's transcript
form, and we report: role inversion (share of replies `looks_like_salesman` flags), realism (mean
discriminator P(real)), the format and semantic rewards, and mean reply length in words, next to
the realism and length of the real replies to the same contexts. Results go to OUT/results.json
and are printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def evaluate(spec: str, rows: list[dict], scorer, seed: int = 0, max_new_tokens: int = 24, batch: int = 12) -> dict:
    """Generate one reply per held-out prompt with `spec` and score it."""
    from grouped_sim.discriminator.rewards import RewardConfig, format_reward, semantic_rewards
    from grouped_sim.config import GenerationParams
    from grouped_sim.models import build_chat_model
    from grouped_sim.role_guard import looks_like_salesman

    model = build_chat_model(spec, GenerationParams(temperature=0.95, top_p=0.95, repetition_penalty=1.05, max_new_tokens=max_new_tokens))
    replies: list[str] = []
    started = time.monotonic()
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        replies += model.generate_texts([r["prompt"] for r in chunk], stop=["\n"], seed=seed + start)
    seconds = time.monotonic() - started
    cfg = RewardConfig()
    refs = [r["reference"] for r in rows]
    result = {
        "spec": spec,
        "n": len(rows),
        "role_inversion": sum(looks_like_salesman(y) for y in replies) / len(replies),
        "format_reward": sum(format_reward(y, ref, cfg) for y, ref in zip(replies, refs)) / len(rows),
        "semantic_reward": sum(semantic_rewards(replies, refs, cfg)) / len(rows),
        "mean_words": sum(len(y.split()) for y in replies) / len(replies),
        "empty_share": sum(not y.strip() for y in replies) / len(replies),
        "generation_seconds": round(seconds, 1),
        "examples": [{"context_tail": r["context"].splitlines()[-1], "reply": y, "real": r["reference"]} for r, y in zip(rows[:6], replies[:6])],
    }
    if scorer is not None:
        result.update(score_realism(scorer, rows, replies))
    return result


def score_realism(scorer, rows: list[dict], replies: list[str]) -> dict:
    """Mean discriminator P(real) of the replies to the rows' contexts, and the share judged real."""
    scores = scorer.score([r["context"] for r in rows], replies)
    return {"realism": sum(scores) / len(scores), "judged_real": sum(s >= 0.5 for s in scores) / len(scores)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--discriminator", type=Path, help="trained discriminator folder (realism and the GRPO pattern reward)")
    parser.add_argument("--adapter", type=Path, help="skip SFT and evaluate this adapter instead")
    parser.add_argument("--sft-steps", type=int, default=-1, help="-1: the paper's 2 epochs")
    parser.add_argument("--sft-batch", type=int, default=8)
    parser.add_argument("--sft-lr", type=float, default=2e-4)
    parser.add_argument("--top-layers", type=int, default=0, help="LoRA on the top N layers only (0: all)")
    parser.add_argument("--grpo-steps", type=int, default=0)
    parser.add_argument("--eval-n", type=int, default=24, help="held-out prompts to evaluate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from grouped_sim.models.finetune import LoraParams, num_layers
    from grouped_sim.training.customer import CustomerGRPOConfig, CustomerSFTConfig, split_holdout, train_grpo, train_sft
    from grouped_sim.discriminator.model import DiscriminatorScorer
    from grouped_sim.corpus import read_corpus
    from grouped_sim.io import write_json_atomic
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.sop_db.datasets import d_sim_records

    args.out.mkdir(parents=True, exist_ok=True)
    rows = [r for d in read_corpus(sample_corpus_path()) for r in d_sim_records(d)]
    train, held = split_holdout(rows, 0.1, args.seed)  # the rule `train customer-sft --holdout` uses
    test = [r for r in rows if r["dialogue_id"] in held]
    random.Random(args.seed).shuffle(train)
    random.Random(args.seed).shuffle(test)
    test = test[: args.eval_n]
    print(f"D_sim: {len(rows)} rows; training on {len(train)}, evaluating on {len(test)} from {len(held)} held-out dialogues", flush=True)
    scorer = DiscriminatorScorer(args.discriminator) if args.discriminator else None
    results: dict = {"heldout_dialogues": sorted(held), "train_rows": len(train)}

    adapter = args.adapter
    if adapter is not None:
        made = json.loads((adapter / "training.json").read_text()) if (adapter / "training.json").is_file() else {}
        if set(made.get("heldout_dialogues", [])) != held:
            print(f"{adapter}: its training.json does not hold out the same dialogues; the evaluation would include trained prompts", file=sys.stderr)
            return 2
    if adapter is None:
        layers = None
        if args.top_layers:
            n = num_layers("hf:smollm2")
            layers = list(range(n - args.top_layers, n))
        cfg = CustomerSFTConfig(max_steps=args.sft_steps, batch_size=args.sft_batch, learning_rate=args.sft_lr, seed=args.seed, logging_steps=1, lora=LoraParams(layers=layers))
        summary = train_sft(train, args.out / "sft", cfg, on_log=lambda s, t, e: print(f"sft step {s}/{t} loss {e.get('loss')}", flush=True))
        results["sft"] = summary.model_dump(mode="json")
        adapter = args.out / "sft"
    specs = {"base": "hf:smollm2", "sft": f"hf:smollm2+{adapter}"}
    if args.grpo_steps > 0:
        gcfg = CustomerGRPOConfig(base=specs["sft"], max_steps=args.grpo_steps, seed=args.seed)
        if scorer is None:
            gcfg.rewards.w_pattern = 0.0
        done = args.out / "grpo" / "training.json"
        finished = json.loads(done.read_text()) if done.is_file() else {}
        if finished.get("steps") == args.grpo_steps:
            # A finished GRPO stage is reused, so a crash in the evaluation does not cost the training.
            print(f"reusing the finished GRPO adapter in {done.parent}", flush=True)
            results["grpo"] = finished
        else:
            summary = train_grpo(train, args.out / "grpo", args.discriminator, gcfg, on_log=lambda s, t, e: print(f"grpo step {s}/{t} reward {e.get('reward')}", flush=True))
            results["grpo"] = summary.model_dump(mode="json")
        results["grpo_reward_curve"] = [
            {k: v for k, v in e.items() if k == "step" or k.startswith("reward")} for e in map(json.loads, (args.out / "grpo" / "train_log.jsonl").read_text().splitlines()) if "reward" in e
        ]
        specs["grpo"] = f"hf:smollm2+{args.out / 'grpo'}"
    results["eval"] = {}
    # The real replies to the same contexts: the ceiling the trained models are measured against.
    real = {"spec": "real replies", "n": len(test), "mean_words": sum(len(r["reference"].split()) for r in test) / len(test)}
    if scorer is not None:
        real.update(score_realism(scorer, test, [r["reference"] for r in test]))
    results["real"] = real
    for name, spec in specs.items():
        print(f"evaluating {name} ({spec}) on {len(test)} held-out prompts", flush=True)
        results["eval"][name] = evaluate(spec, test, scorer, seed=args.seed)
        write_json_atomic(args.out / "results.json", results)
    print(f"\n{'model':8} {'role inversion':>15} {'realism':>8} {'format':>7} {'semantic':>9} {'words':>6}")
    for name, r in results["eval"].items():
        realism = f"{r['realism']:.3f}" if "realism" in r else "n/a"
        print(f"{name:8} {r['role_inversion']:>15.1%} {realism:>8} {r['format_reward']:>7.3f} {r['semantic_reward']:>9.3f} {r['mean_words']:>6.1f}")
    real_realism = f"{real['realism']:.3f}" if "realism" in real else "n/a"
    print(f"{'real':8} {'n/a':>15} {real_realism:>8} {'1.000':>7} {'1.000':>9} {real['mean_words']:>6.1f}")
    print(f"\nresults: {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
