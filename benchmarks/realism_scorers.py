"""Train the two shipped realism scorers on the sample corpus and measure them.

    .venv/bin/python benchmarks/realism_scorers.py [--ship] [--pairs runs/realism-bench/pairs]

Negatives (resumable, the slow part: about 1,200 replies, 15-40 min on 2 shared cores): for every
customer reply of the sample corpus that follows a salesman move, the SHIPPED customer
(`hf:smollm2+customer-sft`) continues the simulator's transcript prompt on the real context 3 times
in one batched call, at the simulator's sampling (T 0.95, top-p 0.95, 40 tokens), and each reply
goes through the simulator's cleaning and role guard. The same as

    grouped-sim discriminator data --negatives hf:smollm2+customer-sft --form transcript \\
        --per-context 3 --hard-negatives 0 --out runs/realism-bench/pairs

Split (`role_split`, seed 0, as for the coherence scorers): the realism picker trains on the 30
"picker" calls, the realism judge on the 30 "judge" calls; each is evaluated on the 45 calls it
never saw, and both on the 15 "test" calls (which the shipped customer adapter never saw either).
Also measured on held-out calls: which features carry it (coherence only, surface only, with the
reply vector), the coherence judge used as a realism scorer, and mean P / acceptance of real
replies, the shipped customer's replies, garbled lines, fluent nonsense and assistant-style lines.
With --ship the scorers are written to grouped_sim/data/scorers/. Results:
benchmarks/results/realism.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
NEGATIVES = "hf:smollm2+customer-sft"
PER_CONTEXT = 3
PROBES = {
    # quoted from issue 14 and docs/demo.md: what the 135M customer says at its worst
    "garbled": ["75 pucks.. twenty twopence", "netanditoknow opio. I'm told we'll have that next year", "ok which is what%|| more someone it seems", "this is something we are hiding"],
    # fluent, customer-shaped, and answering nothing
    "fluent_nonsense": ["ninety fifteen at full ports", "I'm well-advised by his parents", "the river told me about your prices", "my uncle keeps the contracts in a shoebox on Tuesdays"],
    # an untuned instruction model playing a customer: polite, helpful, complete sentences
    "assistant_style": [
        "Thank you for reaching out! I'd be happy to learn more about your offer.",
        "That sounds like a great opportunity. Could you please tell me more about the benefits?",
        "I appreciate your call. However, I would like some time to consider my options.",
    ],
}


def negatives(records, pairs_dir: Path, source: str) -> dict:
    from grouped_sim.config import SimulationConfig
    from grouped_sim.discriminator.data import NegativeParams, build_pairs
    from grouped_sim.graphs.customer import said_reply

    customer = SimulationConfig().customer
    params = NegativeParams(
        form="transcript", per_context=PER_CONTEXT, seed=0, max_new_tokens=customer.max_new_tokens,
        temperature=customer.temperature, top_p=customer.top_p, repetition_penalty=customer.repetition_penalty,
    )
    started = time.monotonic()

    def tick(n: int) -> None:
        print(f"\r  negatives: {n} more contexts done ({time.monotonic() - started:.0f} s)", end="", file=sys.stderr, flush=True)

    counts = build_pairs(records, pairs_dir, negatives=NEGATIVES, params=params, source=source, clean=said_reply, on_progress=tick)
    print(file=sys.stderr)
    return {**counts, "seconds": round(time.monotonic() - started, 1), "params": params.model_dump(mode="json")}


def probe_table(scorer, rows, model_rows) -> dict:
    """Mean P and acceptance, intervals over dialogues, of each kind of reply after held-out contexts."""
    from grouped_sim.metrics.coherence import summarise

    def units(pairs) -> list[list[float]]:
        by: dict[str, list[tuple[str, str]]] = {}
        for d, c, r in pairs:
            by.setdefault(d, []).append((c, r))
        return [list(scorer.score([c for c, _ in v], [r for _, r in v])) for v in by.values()]

    table = {"real": summarise(units([(r.dialogue_id, r.context, r.reply) for r in rows])), "shipped_customer": summarise(units([(r.dialogue_id, r.context, r.reply) for r in model_rows]))}
    for name, lines in PROBES.items():
        table[name] = summarise(units([(r.dialogue_id, r.context, line) for r in rows for line in lines]))
        table[name]["by_line"] = {line: {k: summarise(units([(r.dialogue_id, r.context, line) for r in rows]))[k] for k in ("mean", "acceptance")} for line in lines}
    return table


def ablations(pairs, train_ids, held_ids) -> dict:
    """Held-out ROC-AUC of heads that read part of the features, or more, on the same split."""
    import numpy as np

    from grouped_sim.discriminator.coherence import FEATURES
    from grouped_sim.discriminator.heads import Embeddings, Head, evaluate_pairs
    from grouped_sim.discriminator.realism import RealismConfig, features, rows_from_pairs

    rows = rows_from_pairs(pairs)
    train = [r for r in rows if r.dialogue_id in set(train_ids)]
    held = [r for r in rows if r.dialogue_id in set(held_ids)]
    emb, cut, y = Embeddings(None), len(train), np.array([r.label for r in train])
    texts = ([r.context for r in train + held], [r.reply for r in train + held])
    x, x_vector = features(*texts, RealismConfig(), emb), features(*texts, RealismConfig(vector=True), emb)
    n = len(FEATURES)
    heads = {"coherence_features_only": x[:, :n], "surface_features_only": x[:, n:], "both (shipped)": x, "both + reply vector": x_vector}
    return {name: evaluate_pairs(held, Head.fit(m[:cut], y, 0.1).predict(m[cut:]).tolist(), resamples=200).roc_auc for name, m in heads.items()}


def picker_spread(rows, judge_calls, realism_picker) -> dict:
    """How far each picker's P spreads among the shipped customer's candidates for one context (mean
    within-context standard deviation), on the judge calls (the pickers never saw them; the test
    calls stay untouched). Weights in the inverse ratio give both the same pull in best_of."""
    import numpy as np

    from grouped_sim.data import PICKER_SCORER, shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer

    model_rows = [r for r in rows if r.label == 0 and r.dialogue_id in set(judge_calls)]
    contexts, replies = [r.context for r in model_rows], [r.reply for r in model_rows]
    scores = {"coherence": CoherenceScorer(shipped_scorer_path(PICKER_SCORER)).score(contexts, replies), "realism": realism_picker.score(contexts, replies)}
    spread = {}
    for name, values in scores.items():
        by: dict[tuple[str, int], list[float]] = {}
        for r, v in zip(model_rows, values):
            by.setdefault((r.dialogue_id, r.turn_index), []).append(v)
        spread[name] = round(float(np.mean([np.std(v) for v in by.values() if len(v) > 1])), 4)
    return {"contexts": len({(r.dialogue_id, r.turn_index) for r in model_rows}), "within_context_std": spread,
            "realism_weight_for_coherence_weight_1": round(spread["coherence"] / spread["realism"], 2)}


def main() -> None:
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import JUDGE_SCORER, sample_corpus_path, shipped_scorer_path
    from grouped_sim.discriminator.coherence import ROLE_SPLIT_RULE, CoherenceScorer, role_split
    from grouped_sim.discriminator.data import read_pairs, records_from_dialogues
    from grouped_sim.discriminator.heads import corpus_digest, evaluate_pairs
    from grouped_sim.discriminator.realism import RealismConfig, RealismScorer, rows_from_pairs, train_realism

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ship", action="store_true", help="write the scorers into grouped_sim/data/scorers/")
    parser.add_argument("--pairs", type=Path, default=ROOT / "runs" / "realism-bench" / "pairs")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "realism-bench")
    args = parser.parse_args()

    started = time.monotonic()
    corpus_path = sample_corpus_path()
    dialogues = read_corpus(corpus_path)
    parts = role_split([d.id for d in dialogues])
    made = negatives(records_from_dialogues(dialogues), args.pairs, "grouped_sim/data/sample_corpus.jsonl")
    pairs = read_pairs(args.pairs)
    meta = json.loads((args.pairs / "meta.json").read_text(encoding="utf-8"))
    source = {"corpus": "grouped_sim/data/sample_corpus.jsonl", "corpus_digest": corpus_digest(dialogues), "negatives": NEGATIVES, "params": meta["params"],
              "how": "the shipped customer continuing the simulator's transcript prompt on each real context, its replies cleaned and guarded as in simulation",
              "note": "candidate c of record j sampled with seed j * 3 + c; the same seeds on another generation engine or torch thread count can give other text"}
    target = ROOT / "grouped_sim" / "data" / "scorers" if args.ship else args.out
    coherence_judge = CoherenceScorer(shipped_scorer_path(JUDGE_SCORER))
    rows = rows_from_pairs(pairs)
    results: dict = {"split": {k: len(v) for k, v in parts.items()}, "rule": ROLE_SPLIT_RULE, "negatives": {k: v for k, v in made.items() if k != "params"}, "source": source, "scorers": {}}
    for role, other in (("picker", "judge"), ("judge", "picker")):
        held_ids = sorted(parts[other] + parts["test"])
        model = train_realism(pairs, parts[role], held_ids, RealismConfig(), source=source, split_rule=f"{role} part of role_split(seed 0): {ROLE_SPLIT_RULE}")
        model.card["role"] = role
        model.card["split"]["parts"] = parts
        folder = model.save(target / f"realism-{role}")
        scorer = RealismScorer(folder)
        test_rows = [r for r in rows if r.dialogue_id in set(parts["test"])]
        held_rows = [r for r in rows if r.dialogue_id in set(held_ids)]
        on_test = evaluate_pairs(test_rows, scorer.score([r.context for r in test_rows], [r.reply for r in test_rows]))
        coherence_as_realism = evaluate_pairs(held_rows, coherence_judge.score([r.context for r in held_rows], [r.reply for r in held_rows]), resamples=200)
        results["scorers"][role] = {
            "folder": str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder),
            "bytes": {f.name: f.stat().st_size for f in sorted(folder.iterdir())},
            "n": model.card["n"],
            "heldout": model.card["heldout"],
            "on_test": on_test.model_dump(mode="json"),
            "ablations_heldout_auc": ablations(pairs, parts[role], held_ids),
            "coherence_judge_as_realism_heldout_auc": coherence_as_realism.roc_auc,
            "train_fit": model.card["train_fit"],
            "table": probe_table(scorer, [r for r in held_rows if r.label == 1], [r for r in held_rows if r.label == 0]),
        }
        r = results["scorers"][role]
        print(f"\n== realism {role}: held-out {r['heldout']['roc_auc']} {r['heldout']['roc_auc_ci']} ({r['n']['heldout_real_replies']} real, {r['n']['heldout_model_replies']} model replies)")
        print(f"   on test: {on_test.roc_auc} {on_test.roc_auc_ci}; ablations {r['ablations_heldout_auc']}; coherence judge as realism {coherence_as_realism.roc_auc}")
        for name, row in r["table"].items():
            print(f"   {name:18s} n={row['replies']:4d} ({row['dialogues']:2d} calls)  mean {row['mean']:.3f} {row['mean_ci']}  accept {row['acceptance']:.3f} {row['acceptance_ci']}")
    results["picker_spread"] = picker_spread(rows, parts["judge"], RealismScorer(target / "realism-picker"))
    print(f"picker spread on the judge calls: {results['picker_spread']}")
    results["seconds"] = round(time.monotonic() - started, 1)
    results["loadavg"] = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").is_file() else None
    out = ROOT / "benchmarks" / "results" / "realism.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out} ({results['seconds']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
