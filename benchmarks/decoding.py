"""Customer decoding and best-of-N chosen by measurement, on held-out contexts of the sample corpus.

    .venv/bin/python benchmarks/decoding.py [--contexts 40] [--settings 0.95/0.95,0.7/0.9,0.5/0.9] [--ns 1,2,4]

Contexts: every customer reply after a salesman move in the calls the discriminator's rule holds
out (share 0.2, seed 0: the "test" calls of benchmarks/coherence_scorers.py, never seen by the
shipped adapter, the picker or the judge scorer). For each context the shipped customer
(SmolLM2 + adapter, transcript form, no retrieved examples) answers the real history once per
(temperature/top-p, N) with the same seed; with N > 1 the shipped PICKER scorer chooses, and the
shipped JUDGE scorer (trained on other calls) grades. Figures: judge acceptance (P >= 0.5) and
mean P with 95 % bootstrap intervals over dialogues (contexts of one call move together), reply-length Wasserstein distance to the real
replies of the same contexts, seconds per reply.

Results: benchmarks/results/decoding.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def held_out_contexts(limit: int) -> list[tuple[object, list[object], str]]:
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.discriminator.coherence import reply_turns, split_dialogues

    calls = read_corpus(sample_corpus_path())
    _, held = split_dialogues([c.id for c in calls], 0.2, 0)
    out = []
    for call in (c for c in calls if c.id in set(held)):
        for i in reply_turns(call):
            out.append((call, call.turns[:i], call.turns[i].text))
    return out[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contexts", type=int, default=40)
    parser.add_argument("--settings", default="0.95/0.95,0.7/0.9,0.5/0.9")
    parser.add_argument("--ns", default="1,2,4")
    parser.add_argument("--out", default="benchmarks/results/decoding.json")
    args = parser.parse_args()

    from grouped_sim.config import GenerationParams
    from grouped_sim.data import JUDGE_SCORER, PICKER_SCORER, shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer
    from grouped_sim.graphs.customer import CustomerPrompt, generate_reply
    from grouped_sim.metrics.fidelity import wasserstein
    from grouped_sim.metrics.intervals import bootstrap_ci
    from grouped_sim.models import build_chat_model
    from grouped_sim.config import DEFAULT_CUSTOMER_SPEC
    from grouped_sim.schemas import CustomerAction, Profile
    from grouped_sim.transcript import transcript_text

    contexts = held_out_contexts(args.contexts)
    picker, judge = CoherenceScorer(shipped_scorer_path(PICKER_SCORER)), CoherenceScorer(shipped_scorer_path(JUDGE_SCORER))
    real = [r for _, _, r in contexts]
    real_p = judge.score([transcript_text(h) for _, h, _ in contexts], real)
    groups = [c.id for c, _, _ in contexts]
    rows = [{"setting": "real replies", "n": None, **summary(real_p, real, real, groups, bootstrap_ci, wasserstein), "seconds_per_reply": None}]
    for setting in args.settings.split(","):
        temperature, top_p = (float(x) for x in setting.split("/"))
        model = build_chat_model(DEFAULT_CUSTOMER_SPEC, GenerationParams(temperature=temperature, top_p=top_p, max_new_tokens=40))
        for n in (int(x) for x in args.ns.split(",")):
            pick = (lambda h, r: picker.score([transcript_text(h)] * len(r), r)) if n > 1 else None
            replies, t0 = [], time.perf_counter()
            for k, (call, history, _) in enumerate(contexts):
                profile = call.profile or Profile(summary="a customer")
                inputs = CustomerPrompt(profile=profile.model_copy(update={"buy_propensity": None}), domain=call.domain, history=list(history))
                replies.append(generate_reply(model, inputs, CustomerAction.speak, seed=1000 + k, retries=1, n=n, pick=pick).text)
            seconds = (time.perf_counter() - t0) / len(contexts)
            p = judge.score([transcript_text(h) for _, h, _ in contexts], replies)
            row = {"setting": f"T={temperature} top-p={top_p}", "n": n, **summary(p, replies, real, groups, bootstrap_ci, wasserstein), "seconds_per_reply": round(seconds, 2)}
            row["examples"] = replies[:6]
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "examples"}), flush=True)
    result = {
        "contexts": len(contexts),
        "dialogues": len({c.id for c, _, _ in contexts}),
        "picker": PICKER_SCORER,
        "judge": JUDGE_SCORER,
        "note": "picker and judge were trained on disjoint calls of the sample corpus; the contexts come from a third, held-out set",
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def summary(p: list[float], replies: list[str], real: list[str], groups: list[str], bootstrap_ci, wasserstein) -> dict:
    """Judge figures with intervals from resampling whole dialogues, and the length distance."""
    import numpy as np

    def by_dialogue(values: list[float]) -> list[list[float]]:
        return [[v for v, g in zip(values, groups) if g == key] for key in dict.fromkeys(groups)]

    def pooled_mean(units: list[list[float]]) -> float:
        return float(np.mean([v for unit in units for v in unit]))

    accepted = [float(x >= 0.5) for x in p]
    return {
        "judge_acceptance": round(float(np.mean(accepted)), 3),
        "judge_acceptance_ci": [round(x, 3) for x in bootstrap_ci(by_dialogue(accepted), pooled_mean)],
        "judge_mean_p": round(float(np.mean(p)), 3),
        "judge_mean_p_ci": [round(x, 3) for x in bootstrap_ci(by_dialogue(list(p)), pooled_mean)],
        "mean_words": round(float(np.mean([len(r.split()) for r in replies])), 1),
        "length_w1_to_real": round(wasserstein([len(r.split()) for r in replies], [len(r.split()) for r in real]), 2),
    }


if __name__ == "__main__":
    main()
