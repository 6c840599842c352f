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
        pick, n = build_picker(BestOfParams(), None), BestOfParams().n
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
    args = parser.parse_args()
    {"collect": collect}[args.command](args)


if __name__ == "__main__":
    main()
