"""Which profile extractor should `fit` and `sop mine` use: the derived path or the 1.5B? (issue 22, item 3)

    .venv/bin/python benchmarks/profile_extractor.py [--calls 24] [--model llamacpp:default]

On a seeded draw of sample-corpus calls whose written profile names an archetype (the label), each
extractor reads the call as `fit` reads a held-out customer's (the start of the call, before the
decision: `graphs.fit.pre_decision`) and names the customer's archetype: the derived path (MiniLM
nearest preset description to what the customer said, `profiles/derive.py`) and the 1.5B through
`ProfileExtractor` (the mining prompt, its checks and retries; a failed extraction counts as
wrong, as `fit` would then fall back to the derived profile). Accuracy with Wilson intervals
against the majority label's share. Results: benchmarks/results/profile_extractor.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "profile_extractor.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=24)
    parser.add_argument("--model", default="llamacpp:default")
    args = parser.parse_args()

    from grouped_sim.config import GenerationParams
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.graphs.fit import pre_decision
    from grouped_sim.metrics.decisions import wilson
    from grouped_sim.models import build_chat_model
    from grouped_sim.profiles.derive import derive_profile
    from grouped_sim.sop_db.mine import ProfileExtractor

    labelled = [d for d in read_corpus(sample_corpus_path()) if d.profile is not None and d.profile.archetype]
    calls = random.Random(0).sample(labelled, min(args.calls, len(labelled)))
    views = [pre_decision(d) for d in calls]
    truth = [d.profile.archetype for d in calls]

    started = time.time()
    derived = [derive_profile(v.model_copy(update={"profile": None}), pre_decision=True).archetype for v in views]
    derived_s = time.time() - started

    extractor = ProfileExtractor(build_chat_model(args.model, GenerationParams(temperature=0.7, top_p=0.9, max_new_tokens=220)))
    started, llm, failed = time.time(), [], 0
    for n, view in enumerate(views):
        result = extractor.extract(view.model_copy(update={"profile": None}), seed=n)
        failed += result.status != "ok"
        llm.append(result.profile.archetype if result.profile else None)
        print(f"{n + 1}/{len(views)} {truth[n]} derived={derived[n]} llm={llm[-1]}", flush=True)
    llm_s = time.time() - started

    def row(guesses: list[str | None], seconds: float) -> dict:
        right = sum(g == t for g, t in zip(guesses, truth))
        return {"accuracy": round(right / len(truth), 3), "ci": wilson(right, len(truth)), "right": right, "seconds_per_call": round(seconds / len(truth), 2)}

    majority = Counter(truth).most_common(1)[0][1]
    out = {
        "calls": len(truth), "archetypes": dict(Counter(truth)), "majority_share": round(majority / len(truth), 3),
        "derived": row(derived, derived_s), "llm": {**row(llm, llm_s), "model": args.model, "failed": failed},
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
