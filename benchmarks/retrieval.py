"""SOP retrieval latency (p50/p95) at 1k, 10k and 100k stored behaviour chains.

    .venv/bin/python benchmarks/retrieval.py [--sizes 1000 10000 100000] [--queries 60] [--repeats 3]

Each store is a real embedded Chroma store (the same collections and metadata `sop build` writes).
To reach 100k chains without embedding 100k texts, records are the sample corpus's chains with
their real MiniLM profile vectors jittered (Gaussian noise, renormalised); queries go through
`SOPStore.retrieve` exactly as the simulator calls it: embed the profile text, HNSW query with a
domain filter, parse the chains. The first pass over the queries embeds each text ("first"); later
passes find it in the embedding cache, as every turn after a dialogue's first does ("cached").
Results: benchmarks/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.embeddings import embed
    from grouped_sim.sop_db.store import SOPStore, chain_steps, derive_profile_text

    corpus = read_corpus(sample_corpus_path())
    texts = [derive_profile_text(d) for d in corpus]
    base = np.asarray(embed(texts), dtype=np.float32)
    metas = []
    for d in corpus:
        steps = chain_steps(d)
        meta = {"domain": d.domain, "archetype": (d.profile.archetype if d.profile else "") or "", "outcome": d.outcome.value,
                "n_steps": len(steps), "chain": json.dumps([s.model_dump() for s in steps]), "has_profile": d.profile is not None}
        for stage in {s.stage for s in steps if s.stage}:
            meta[f"stage_{stage}"] = True
        metas.append(meta)
    queries = [(d.profile.as_text(), d.domain) for d in corpus if d.profile][: args.queries]
    rng = np.random.default_rng(0)
    results = {}
    for size in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix=f"gs-ret-{size}-"))
        store = SOPStore(folder, create=True)
        start = time.perf_counter()
        for lo in range(0, size, 5000):
            n = min(5000, size - lo)
            idx = np.arange(lo, lo + n) % len(corpus)
            vecs = base[idx] + rng.normal(0, 0.05, size=(n, base.shape[1])).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            store.chains.upsert(ids=[f"syn-{i}" for i in range(lo, lo + n)], embeddings=vecs.tolist(),
                                documents=[texts[i] for i in idx], metadatas=[metas[i] for i in idx])
        build = time.perf_counter() - start
        store.retrieve(queries[0][0], k=4, domain=queries[0][1])  # warm-up: index load, encoder
        passes = []
        for _ in range(args.repeats + 1):
            lat = []
            for text, domain in queries:
                t0 = time.perf_counter()
                store.retrieve(text, k=4, domain=domain)
                lat.append((time.perf_counter() - t0) * 1000)
            passes.append(lat)
        first, cached = passes[0], passes[1:]
        results[str(size)] = {"chains": store.count(), "build_seconds": round(build, 1),
                              "first_p50_ms": round(percentile(first, 0.5), 2), "first_p95_ms": round(percentile(first, 0.95), 2),
                              "p50_ms": round(statistics.median(percentile(x, 0.5) for x in cached), 2),
                              "p95_ms": round(statistics.median(percentile(x, 0.95) for x in cached), 2),
                              "p50_per_repeat": [round(percentile(x, 0.5), 2) for x in cached]}
        print(size, results[str(size)], flush=True)
    out = {"benchmark": "sop_retrieval", "k": 4, "queries": len(queries), "repeats": args.repeats,
           "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}, "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "retrieval.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
