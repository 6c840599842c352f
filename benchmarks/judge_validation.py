"""Validate coherence instruments before trusting them: can each tell a real reply from a bad one?

    .venv/bin/python benchmarks/judge_validation.py collect --corpus grouped_sim/data/sample_corpus.jsonl --name sample
    .venv/bin/python benchmarks/judge_validation.py collect --corpus ../shared/corpora/inspired.jsonl --name inspired --calls 30
    .venv/bin/python benchmarks/judge_validation.py evaluate --name sample --name inspired

`collect` picks held-out calls (the sample corpus: the 15 "test" calls of the coherence role split,
which no shipped scorer or adapter saw; another corpus: `--calls` calls drawn with the seed), up to
`--per-call` customer replies per call (each the first customer line after a salesman move), and
writes for each context the real reply and its controls:

- other:    a real reply from another of these calls (same stage where stages are labelled)
- shuffled: the real reply with its words in a random order (replies of 3+ words only)
- old:      the old default customer's reply (SmolLM2-135M + the shipped SFT adapter, best of 4 by
            the shipped pickers, as `make demo` ran before this change)
- new:      the new default customer's reply (the 1.5B on llama.cpp, transcript form)

Replies are generated teacher-forced: the real call up to the reply, the customer's profile (or a
neutral one where the corpus has none), no manager. Everything is cached in
benchmarks/results/judge_validation/<name>.jsonl, so `evaluate` can try instruments without
generating again. `evaluate` scores every reply with each instrument and reports ROC-AUC of real
against each control with a 95 % bootstrap interval over calls, and the mean score of each kind.
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

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "judge_validation"
KINDS = ("real", "other", "shuffled", "old", "new")
OLD_SPEC = "hf:smollm2+customer-sft"
NEW_SPEC = "llamacpp:default"


def pick_units(corpus: Path, calls: int | None, per_call: int, seed: int) -> list[dict]:
    """Contexts to score: (call, reply index) pairs of held-out calls, spread over each call."""
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.discriminator.coherence import role_split
    from grouped_sim.metrics.coherence import reply_indices

    dialogues = read_corpus(corpus)
    if corpus.resolve() == sample_corpus_path().resolve():
        chosen = set(role_split([d.id for d in dialogues])["test"])
        dialogues = [d for d in dialogues if d.id in chosen]
    elif calls is not None:
        dialogues = random.Random(seed).sample(dialogues, min(calls, len(dialogues)))
    units = []
    for d in dialogues:
        idx = reply_indices(d)
        if len(idx) > per_call:
            step = len(idx) / per_call
            idx = [idx[int(k * step)] for k in range(per_call)]
        for i in idx:
            units.append({"id": f"{d.id}:{i}", "dialogue_id": d.id, "index": i, "domain": d.domain, "stage": d.turns[i].sop_stage,
                          "history": [t.model_dump(mode="json") for t in d.turns[:i]], "profile": d.profile.model_dump(mode="json") if d.profile else None,
                          "real": d.turns[i].text})
    return units


def add_model_free(units: list[dict], seed: int) -> None:
    from grouped_sim.discriminator.negatives import Reply, other_call_replies

    drawn = other_call_replies([Reply(u["dialogue_id"], u["index"], u["stage"], u["real"]) for u in units], 1, seed)
    for u, others in zip(units, drawn):
        u["other"] = others[0].text if others else None
        words = u["real"].split()
        rng = random.Random(f"{seed}:{u['id']}")
        shuffled = words[:]
        for _ in range(10):
            rng.shuffle(shuffled)
            if shuffled != words:
                break
        u["shuffled"] = " ".join(shuffled) if len(words) >= 3 and shuffled != words else None


def generate(units: list[dict], kind: str, seed: int) -> None:
    """The old or new default customer's reply to every context, as the simulator says it."""
    from grouped_sim.config import BestOfParams, SimulationConfig
    from grouped_sim.graphs.customer import CustomerPrompt, generate_reply
    from grouped_sim.models import build_chat_model
    from grouped_sim.schemas import CustomerAction, Profile, Turn

    config = SimulationConfig()
    if kind == "old":
        from grouped_sim.app.build import build_picker

        model = build_chat_model(OLD_SPEC, config.customer)
        old_best_of = BestOfParams(n=4)  # the 135M default before this change: best of 4 by the shipped pickers
        pick, n = build_picker(old_best_of, None), old_best_of.n
    else:
        model = build_chat_model(NEW_SPEC, config.customer, config.runtime)
        pick, n = None, 1
    neutral = Profile(summary="A person who has just been contacted by a salesperson.")
    todo = [u for u in units if kind not in u]
    start = time.time()
    for k, u in enumerate(todo):
        inputs = CustomerPrompt(profile=Profile(**u["profile"]) if u["profile"] else neutral, domain=u["domain"], history=[Turn(**t) for t in u["history"]])
        reply = generate_reply(model, inputs, CustomerAction.speak, seed + u["index"], config.role_guard_retries, n=n, pick=pick)
        u[kind] = reply.text
        if k % 10 == 9:
            print(f"  {kind}: {k + 1}/{len(todo)} ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)


def cache_path(name: str) -> Path:
    return OUT / f"{name}.jsonl"


def load(name: str) -> list[dict]:
    path = cache_path(name)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def save(name: str, units: list[dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = cache_path(name).with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(u, ensure_ascii=False) + "\n" for u in units))
    os.replace(tmp, cache_path(name))


def collect(args: argparse.Namespace) -> None:
    units = load(args.name) or pick_units(Path(args.corpus), args.calls, args.per_call, args.seed)
    add_model_free(units, args.seed)
    save(args.name, units)
    for kind in args.kinds.split(","):
        generate(units, kind, args.seed)
        save(args.name, units)
    print(f"{args.name}: {len(units)} contexts from {len({u['dialogue_id'] for u in units})} calls -> {cache_path(args.name)}")


def reader():
    from grouped_sim.models.llamacpp import ContinuationReader

    return ContinuationReader("default").logprobs


def cached_readings(path: Path, contexts: list[str], replies: list[str], anchors: list[str], read, config) -> list[dict]:
    """Readings of (context, reply) pairs, cached by the pair and the anchors."""
    from grouped_sim.discriminator.judge import dump_readings, read_replies

    cache = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            cache[row["key"]] = row
    keys = [json.dumps([c[-2000:], r, anchors[0][-80:] if anchors else "", config.context_turns]) for c, r in zip(contexts, replies)]
    todo = [k for k, key in enumerate(keys) if key not in cache]
    start = time.time()
    for lo in range(0, len(todo), 16):
        chunk = todo[lo : lo + 16]
        got = dump_readings(read_replies(read, [contexts[k] for k in chunk], [replies[k] for k in chunk], anchors, config))
        with path.open("a") as handle:
            for k, row in zip(chunk, got):
                row["key"] = keys[k]
                cache[keys[k]] = row
                handle.write(json.dumps(row) + "\n")
        print(f"  {path.name}: {lo + len(chunk)}/{len(todo)} read ({time.time() - start:.0f} s)", file=sys.stderr, flush=True)
    return [cache[k] for k in keys]


def training_calls(corpus: Path, held: set[str], limit: int, seed: int):
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.discriminator.coherence import role_split

    dialogues = [d for d in read_corpus(corpus) if d.id not in held]
    if corpus.resolve() == sample_corpus_path().resolve():
        judge_ids = set(role_split([d.id for d in read_corpus(corpus)])["judge"])
        dialogues = [d for d in dialogues if d.id in judge_ids]
    return random.Random(seed).sample(dialogues, min(limit, len(dialogues)))


def evaluate(args: argparse.Namespace) -> None:
    """Train the judge's head on one corpus's training calls, validate on every named corpus."""
    import numpy as np

    from grouped_sim.discriminator.heads import fast_auc
    from grouped_sim.discriminator.judge import JudgeConfig, choose_anchors, features, fit_head, load_readings, real_floor, training_set
    from grouped_sim.metrics.intervals import bootstrap_ci
    from grouped_sim.schemas import Turn
    from grouped_sim.transcript import transcript_text

    config = JudgeConfig()
    read = reader()
    corpora = dict(zip(args.name, args.corpus))
    train_name = args.name[0]
    per_corpus = {}
    for name, corpus in corpora.items():
        units = load(name)
        held = {u["dialogue_id"] for u in units}  # every collected call stays out of training, validated or not
        if args.max_calls:  # the first calls of the file: a smaller validation when the CPU is short
            keep = list(dict.fromkeys(u["dialogue_id"] for u in units))[: args.max_calls]
            units = [u for u in units if u["dialogue_id"] in set(keep)]
        calls = training_calls(Path(corpus), held, args.train_calls, args.seed)
        anchors = choose_anchors(calls, config.anchors, config.seed)
        per_corpus[name] = (units, calls, anchors)
    units, calls, anchors = per_corpus[train_name]
    train = training_set(calls, args.per_call, args.seed)
    rows = cached_readings(OUT / f"{train_name}.train.readings.jsonl", train.contexts, train.replies, anchors, read, config)
    readings = load_readings(rows)
    floor = real_floor(readings, train.labels)
    head = fit_head(features(readings, floor), train.labels)
    print(f"trained on {train_name}: {sum(train.labels)} real, {len(train.labels) - sum(train.labels)} made-bad replies of {len(calls)} calls; floor {floor:.2f}; coef {np.round(head.coef, 2).tolist()}")
    table = {"train": {"corpus": train_name, "calls": len(calls), "real": sum(train.labels), "negatives": len(train.labels) - sum(train.labels), "floor": floor, "coef": head.coef.tolist()}, "corpora": {}}
    if args.ship:
        from grouped_sim.discriminator.judge import JudgeCard, save_judge, shipped_judge_path

        card = JudgeCard(config=config, anchors=anchors, floor=floor, source=f"{corpora[train_name]} (the coherence role split's judge calls)",
                         split={"train": sorted(d.id for d in calls), "heldout": sorted({u["dialogue_id"] for u in units})},
                         trained_on={"calls": len(calls), "real": sum(train.labels), "made_bad": len(train.labels) - sum(train.labels)})
        save_judge(shipped_judge_path(), head, card)
        print(f"shipped judge written to {shipped_judge_path()}")
    for name, (units, calls, anchors) in per_corpus.items():
        contexts = [transcript_text([Turn(**t) for t in u["history"]]) for u in units]
        scores = {}
        for kind in KINDS:
            idx = [k for k, u in enumerate(units) if u.get(kind)]
            got = load_readings(cached_readings(OUT / f"{name}.{kind}.readings.jsonl", [contexts[k] for k in idx], [units[k][kind] for k in idx], anchors, read, config))
            p = head.predict(features(got, floor))
            scores[kind] = {units[k]["id"]: float(x) for k, x in zip(idx, p)}
        table["corpora"][name] = report_corpus(name, units, scores, bootstrap_ci, fast_auc)
    (OUT / "table.json").write_text(json.dumps(table, indent=2))


def report_corpus(name, units, scores, bootstrap_ci, fast_auc) -> dict:
    """ROC-AUC of real vs each control (paired by context, bootstrap over calls), mean P, acceptance."""
    import numpy as np

    out = {}
    real = scores["real"]
    for kind in KINDS:
        by_call: dict[str, list[tuple[float, float]]] = {}
        for u in units:
            if u["id"] in scores[kind] and u["id"] in real:
                by_call.setdefault(u["dialogue_id"], []).append((real[u["id"]], scores[kind][u["id"]]))
        calls = list(by_call.values())

        def auc(units_):
            pairs = [p for unit in units_ for p in unit]
            return fast_auc([1] * len(pairs) + [0] * len(pairs), [a for a, _ in pairs] + [b for _, b in pairs]) if pairs else None

        def accept(units_):
            vals = [b for unit in units_ for _, b in unit]
            return float(np.mean([v >= 0.5 for v in vals])) if vals else None

        def mean_of(units_):
            vals = [b for unit in units_ for _, b in unit]
            return float(np.mean(vals)) if vals else None

        def gap(units_):  # the kind's mean P minus the real replies' to the same contexts
            pairs = [p for unit in units_ for p in unit]
            return float(np.mean([b - a for a, b in pairs])) if pairs else None

        n = sum(len(c) for c in calls)
        row = {"n_replies": n, "n_calls": len(calls), "mean_p": mean_of(calls), "mean_p_ci": bootstrap_ci(calls, mean_of),
               "gap_to_real": gap(calls), "gap_to_real_ci": bootstrap_ci(calls, gap),
               "acceptance": accept(calls), "acceptance_ci": bootstrap_ci(calls, accept)}
        if kind != "real":
            row.update({"auc_real_vs": auc(calls), "auc_ci": bootstrap_ci(calls, auc)})
        out[kind] = row
        auc_text = f"AUC {row['auc_real_vs']:.3f} [{row['auc_ci'][0]:.2f}, {row['auc_ci'][1]:.2f}]" if kind != "real" and row.get("auc_ci") else ""
        gap_text = f"gap {row['gap_to_real']:+.3f} [{row['gap_to_real_ci'][0]:+.2f}, {row['gap_to_real_ci'][1]:+.2f}]" if row.get("gap_to_real_ci") else ""
        print(f"{name:9s} {kind:9s} n={n:3d} ({len(calls)} calls) mean P {row['mean_p']:.3f} accept {row['acceptance']:.2f} {gap_text} {auc_text}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--corpus", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--calls", type=int, default=None)
    c.add_argument("--per-call", type=int, default=5)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--kinds", default="old,new")
    e = sub.add_parser("evaluate")
    e.add_argument("--name", action="append", required=True, help="corpus names (the first trains the head)")
    e.add_argument("--corpus", action="append", required=True, help="their corpora, in the same order")
    e.add_argument("--train-calls", type=int, default=30)
    e.add_argument("--per-call", type=int, default=3)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--max-calls", type=int, default=None, help="validate on the first N held-out calls of each corpus only")
    e.add_argument("--ship", action="store_true", help="write the trained head as the shipped judge (grouped_sim/data/scorers/coherence-llm-judge)")
    args = parser.parse_args()
    {"collect": collect, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    main()
