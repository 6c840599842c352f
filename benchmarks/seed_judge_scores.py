"""Ship the judge's scores of the sample corpus's reference draw, so `make demo` does not read them.

`report --reference sample_corpus.jsonl` grades up to --coherence-calls real calls with the shipped
judge anchored on the sample corpus. Reading them takes minutes on 2 cores; the scores depend only
on the judge, its anchors and the text, so they are the same on every machine. This copies them
from this machine's score cache (fill it first: run `make demo`, or `grouped-sim report` with the
sample corpus as reference) into the package's seed file, which `ScoreCache` reads first.

    .venv/bin/python benchmarks/seed_judge_scores.py [--calls 20]
"""

from __future__ import annotations

import argparse
import json

from grouped_sim.corpus import read_corpus
from grouped_sim.data import sample_corpus_path
from grouped_sim.discriminator.judge import CoherenceJudge, ScoreCache, prompt_of, shipped_judge_path
from grouped_sim.metrics.coherence import draw_calls, reply_contexts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20, help="report's --coherence-calls")
    args = parser.parse_args()
    corpus = read_corpus(sample_corpus_path())
    judge = CoherenceJudge(shipped_judge_path()).anchored(corpus)
    digest = judge.digest()
    calls = draw_calls(corpus, args.calls, frozenset(judge.card.split.get("train", [])))
    cache = ScoreCache(digest)
    keys = [ScoreCache.key(prompt_of(c, judge.card.config.context_turns), r) for d in calls for c, r in reply_contexts(d)]
    missing = [k for k in keys if k not in cache]
    if missing:
        raise SystemExit(f"{len(missing)} of {len(keys)} reference replies are not in this machine's cache ({cache.path}); run make demo first")
    target = shipped_judge_path() / f"scores-{digest}.jsonl"
    target.write_text("".join(json.dumps({"k": k, "p": round(cache[k], 6)}) + "\n" for k in dict.fromkeys(keys)), encoding="utf-8")
    print(f"wrote {len(set(keys))} scores of {len(calls)} calls to {target}")


if __name__ == "__main__":
    main()
