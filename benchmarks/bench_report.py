"""How long `grouped-sim report` takes without a judge: metrics + HTML for N dialogues.

Run by hand:  .venv/bin/python benchmarks/bench_report.py [N]
Uses the sample corpus (repeated to reach N dialogues, ids made unique) as the run and the corpus
itself as the reference. The report encodes each distinct reply text once, so with a repeated
corpus the encoder sees only the distinct texts (printed); the rest (TLV, IRS by turn, SNR,
TF-IDF, Wasserstein, decision states, HTML) runs over all N dialogues.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from grouped_sim.corpus import read_corpus  # noqa: E402
from grouped_sim.data import sample_corpus_path  # noqa: E402
from grouped_sim.embeddings import embed  # noqa: E402
from grouped_sim.report import compute_report, render_html  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    corpus = read_corpus(sample_corpus_path())
    run = [corpus[i % len(corpus)].model_copy(update={"id": f"{corpus[i % len(corpus)].id}-{i}"}) for i in range(n)]
    t0 = time.perf_counter()
    embed(["warm up"])
    t1 = time.perf_counter()
    ids = ["opening", "identity_permission", "needs_discovery", "pitch", "product_question", "price_objection", "trust_objection", "timing_objection", "competitor_comparison", "closing_ask", "follow_up", "goodbye"]
    report = compute_report(run, taxonomy_ids=ids, reference=corpus, reference_name="sample")
    t2 = time.perf_counter()
    page = render_html(report, run)
    t3 = time.perf_counter()
    turns = report["summary"]["customer_turns"]
    distinct = len({t.text for d in run + corpus for t in d.customer_turns()})
    print(f"encoder load: {t1 - t0:.1f} s")
    print(f"metrics: {n} dialogues ({turns} customer turns, {distinct} distinct texts) + {len(corpus)} reference in {t2 - t1:.1f} s ({n / (t2 - t1):.0f} dialogues/s)")
    print(f"html: {len(page) / 1024:.0f} KiB in {t3 - t2:.2f} s")


if __name__ == "__main__":
    main()
