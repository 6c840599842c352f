"""Train the two shipped coherence scorers on the sample corpus and measure them.

    .venv/bin/python benchmarks/coherence_scorers.py [--ship] [--runs shipped=runs/demo/run untuned=runs/demo-untuned/run]

Split (`grouped_sim.discriminator.coherence.role_split`, seed 0): 15 "test" calls held out from
both scorers (they contain the 8 calls the shipped customer adapter held out), 30 "picker" calls
and 30 "judge" calls. The picker scorer trains on the picker calls, the judge scorer on the judge
calls; each is evaluated on the 45 calls it never saw, and both on the 15 test calls.

Then, for each scorer on its own held-out calls: mean P and acceptance (P >= 0.5) of (a) the real
replies, (b) each reply swapped for a reply of another held-out call at the same stage, (c) ... of
another held-out call at any stage, (e) garbled lines (quoted from the issue) after every
held-out context, (f) a 3-to-8-word span of the salesman's own move (an echo); and (d) the customer replies of simulation runs given with --runs. Intervals are
95 % bootstrap over dialogues. The features head is compared with the raw-vector head
[u, v, u*v, |u-v|] and with the plain cosine of reply and salesman move on the same split.
With --ship the two scorers are written to grouped_sim/data/scorers/. Results:
benchmarks/results/coherence.json.
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
GARBLED = [
    "75 pucks.. twenty twopence",
    "I can explain some of those magic silver ideas on Stuart",
    "this is something we are hiding",
    "ok which is what%|| more someone it seems",
]


def memo(embed_fn):
    import numpy as np

    cache: dict[str, np.ndarray] = {}

    def embed(texts):
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, np.asarray(embed_fn(missing))))
        return np.stack([cache[t] for t in texts])

    return embed


def swapped(dialogues, same_stage: bool, seed: int = 0):
    """Copies of the dialogues where every scored reply is a reply of another of these calls."""
    from grouped_sim.discriminator.coherence import reply_turns
    from grouped_sim.discriminator.negatives import Reply, other_call_replies

    slots = [(d, i) for d in dialogues for i in reply_turns(d)]
    replies = [Reply(d.id, i, d.turns[i].sop_stage if same_stage else None, d.turns[i].text) for d, i in slots]
    drawn = other_call_replies(replies, 1, seed)
    new = {d.id: list(d.turns) for d in dialogues}
    for (d, i), others in zip(slots, drawn):
        if others:
            new[d.id][i] = d.turns[i].model_copy(update={"text": others[0].text})
    return [d.model_copy(update={"turns": new[d.id]}) for d in dialogues]


def echo_units(dialogues, score, seed: int = 0):
    """Each scored reply replaced by a 3-to-8-word span of the salesman move it follows (an echo)."""
    import random

    from grouped_sim.metrics.coherence import reply_contexts

    units = []
    for d in dialogues:
        rows = reply_contexts(d)
        if not rows:
            continue
        spans = []
        for k, (context, _) in enumerate(rows):
            words = context.splitlines()[-1].removeprefix("Salesman: ").split()
            rng = random.Random(f"{seed}:{d.id}:{k}")
            n = min(len(words), rng.randint(3, 8))
            start = rng.randrange(0, len(words) - n + 1)
            spans.append(" ".join(words[start : start + n]).lower().strip(",.?!"))
        units.append(list(score([c for c, _ in rows], spans)))
    return units


def garbled_units(dialogues, score):
    from grouped_sim.metrics.coherence import reply_contexts

    units = []
    for d in dialogues:
        contexts = [c for c, _ in reply_contexts(d)]
        if contexts:
            units.append(list(score([c for c in contexts for _ in GARBLED], [g for _ in contexts for g in GARBLED])))
    return units


def main() -> None:
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.discriminator.coherence import (
        ROLE_SPLIT_RULE,
        CoherenceConfig,
        CoherenceScorer,
        evaluate_pairs,
        role_split,
        train_coherence,
        training_pairs,
    )
    from grouped_sim.embeddings import embed
    from grouped_sim.metrics.coherence import dialogue_scores, summarise

    parser = argparse.ArgumentParser()
    parser.add_argument("--ship", action="store_true", help="write the scorers into grouped_sim/data/scorers/")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "coherence-bench")
    parser.add_argument("--runs", nargs="*", default=[], help="NAME=RUN_DIR simulation runs to score (their dialogues.jsonl)")
    args = parser.parse_args()

    started = time.monotonic()
    corpus_path = sample_corpus_path()
    dialogues = read_corpus(corpus_path)
    by_id = {d.id: d for d in dialogues}
    parts = role_split([d.id for d in dialogues])
    embed_fn = memo(embed)
    target = ROOT / "grouped_sim" / "data" / "scorers" if args.ship else args.out
    results: dict = {"split": {k: len(v) for k, v in parts.items()}, "rule": ROLE_SPLIT_RULE, "scorers": {}}
    scorers = {}
    for role, other in (("picker", "judge"), ("judge", "picker")):
        held = sorted(parts[other] + parts["test"])
        model = train_coherence(dialogues, parts[role], held, CoherenceConfig(), source="grouped_sim/data/sample_corpus.jsonl", split_rule=f"{role} part of role_split(seed 0): {ROLE_SPLIT_RULE}", embed_fn=embed_fn)
        model.card["role"] = role
        model.card["split"]["parts"] = parts
        folder = model.save(target / f"coherence-{role}")
        scorer = CoherenceScorer(folder, embed_fn=embed_fn)
        scorers[role] = scorer
        test_pairs = training_pairs([by_id[i] for i in parts["test"]], 3, 0, 8)
        on_test = evaluate_pairs(test_pairs, scorer.score([p.context for p in test_pairs], [p.reply for p in test_pairs]))
        vectors = train_coherence(dialogues, parts[role], held, CoherenceConfig(head="vectors", c=0.001), embed_fn=embed_fn)
        held_pairs = training_pairs([by_id[i] for i in held], 3, 0, 8)
        cos_scores = [float(embed_fn([p.context.split("\n")[-1].removeprefix("Salesman: ")])[0] @ embed_fn([p.reply])[0]) for p in held_pairs]
        results["scorers"][role] = {
            "folder": str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder),
            "bytes": {f.name: f.stat().st_size for f in sorted(folder.iterdir())},
            "heldout": model.card["heldout"],
            "on_test": on_test.model_dump(mode="json"),
            "vectors_head_heldout_auc": vectors.card["heldout"]["roc_auc"],
            "cosine_move_heldout_auc": evaluate_pairs(held_pairs, cos_scores).roc_auc,
            "train_fit": model.card["train_fit"],
        }
        held_dialogues = [by_id[i] for i in held]
        sets = {
            "a_real": held_dialogues,
            "b_same_stage_swap": swapped(held_dialogues, same_stage=True),
            "c_any_stage_swap": swapped(held_dialogues, same_stage=False),
        }
        table = {name: summarise(dialogue_scores(ds, scorer.score)) for name, ds in sets.items()}
        table["e_garbled_lines"] = summarise(garbled_units(held_dialogues, scorer.score))
        table["f_move_echo"] = summarise(echo_units(held_dialogues, scorer.score))
        table["train_real"] = summarise(dialogue_scores([by_id[i] for i in parts[role]], scorer.score))
        for spec in args.runs:
            name, _, run_dir = spec.partition("=")
            table[f"d_run_{name}"] = summarise(dialogue_scores(read_corpus(Path(run_dir) / "dialogues.jsonl"), scorer.score))
        results["scorers"][role]["table"] = table
        print(f"\n== {role}: held-out {model.card['heldout']}\n   on test: {on_test.roc_auc} {on_test.roc_auc_ci}")
        for name, row in table.items():
            print(f"   {name:22s} n={row['replies']:4d} ({row['dialogues']:2d} calls)  mean {row['mean']:.3f} {row['mean_ci']}  accept {row['acceptance']:.3f} {row['acceptance_ci']}")
    results["seconds"] = round(time.monotonic() - started, 1)
    out = ROOT / "benchmarks" / "results" / "coherence.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out} ({results['seconds']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
