"""SOP retrieval and stage tagging latency (p50/p95) at 1k, 10k and 100k stored behaviour chains.

    .venv/bin/python benchmarks/retrieval.py [--sizes 1000 10000 100000] [--queries 60] [--repeats 3]
        [--stage price_objection] [--stores DIR] [--no-check]

Each store is a real embedded Chroma store (the same collections and metadata `sop build` writes).
To reach 100k chains without embedding 100k texts, records are the sample corpus's chains with
their real MiniLM profile vectors jittered (Gaussian noise, renormalised); the annotated-turns
collection gets each chain's salesman moves the same way (about 5.4 per chain: 544k at 100k
chains), plus the taxonomy's examples. Queries go through `SOPStore.retrieve` and
`SOPStore.tag_stage` exactly as the simulator calls them: unfiltered, with a domain filter (what
every simulated turn asks), with a domain and a stage filter (`sop query --stage`), and tagging a
salesman move. The first pass over the queries embeds each text ("first"); later passes find it in
the embedding cache, as every turn after a dialogue's first does ("cached").

The synthetic store copies each of the 75 sample chains about 1,333 times at 100k, so the nearest
candidates of a profile are copies of one or two calls: when those calls never reached the stage,
the over-fetch holds no match and retrieval falls back to Chroma's filtered query. The share that
fell back is recorded, with the p50 of the queries the over-fetch served and of those that fell back. Unless --no-check, every filtered retrieval is also compared with Chroma's
own filtered query (the chains retrieval must equal). --stores keeps the built stores there and
reuses them on the next run. Results: benchmarks/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

RESULTS = Path(__file__).parent / "results"
BATCH = 5000
NOISE = 0.05


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def corpus_records() -> dict[str, Any]:
    """The sample corpus as store records: profile texts, vectors and chain metadata; moves likewise."""
    import numpy as np

    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.embeddings import embed
    from grouped_sim.sop_db.store import chain_steps, derive_profile_text

    corpus = read_corpus(sample_corpus_path())
    texts = [derive_profile_text(d) for d in corpus]
    metas, moves = [], []
    for index, d in enumerate(corpus):
        steps = chain_steps(d)
        meta = {"domain": d.domain, "archetype": (d.profile.archetype if d.profile else "") or "", "outcome": d.outcome.value,
                "n_steps": len(steps), "chain": json.dumps([s.model_dump() for s in steps]), "has_profile": d.profile is not None}
        for stage in {s.stage for s in steps if s.stage}:
            meta[f"stage_{stage}"] = True
        metas.append(meta)
        moves.append([(i, s.salesman, {"stage": s.stage, "customer": s.customer, "domain": d.domain, "archetype": meta["archetype"]})
                      for i, s in enumerate(steps) if s.salesman and s.stage])
    move_texts = [text for chain in moves for _, text, _ in chain]
    return {"corpus": corpus, "texts": texts, "metas": metas, "moves": moves, "move_texts": move_texts,
            "base": np.asarray(embed(texts), dtype=np.float32), "move_base": np.asarray(embed(move_texts), dtype=np.float32)}


def jitter(rng: Any, vectors: Any) -> Any:
    out = vectors + rng.normal(0, NOISE, size=vectors.shape).astype(vectors.dtype)
    return out / (out ** 2).sum(axis=1, keepdims=True) ** 0.5


def build_chains(store: Any, size: int, data: dict[str, Any]) -> None:
    """The same records (and random stream) as earlier runs of this benchmark, so figures compare."""
    import numpy as np

    rng = np.random.default_rng(0)
    for lo in range(0, size, BATCH):
        idx = np.arange(lo, min(size, lo + BATCH)) % len(data["texts"])
        store.chains.upsert(ids=[f"syn-{i}" for i in range(lo, lo + len(idx))], embeddings=jitter(rng, data["base"][idx]).tolist(),
                            documents=[data["texts"][i] for i in idx], metadatas=[data["metas"][i] for i in idx])


def build_turns(store: Any, size: int, data: dict[str, Any]) -> None:
    """Every synthetic chain's salesman moves, as `sop build` annotates them, in batches of ~BATCH."""
    import numpy as np

    rng = np.random.default_rng(1)
    starts = np.cumsum([0] + [len(m) for m in data["moves"]])
    ids, rows, metas = [], [], []
    for chain in range(size):
        base = chain % len(data["moves"])
        for offset, (step, _, meta) in enumerate(data["moves"][base]):
            ids.append(f"syn-{chain}:{step}")
            rows.append(starts[base] + offset)
            metas.append({**meta, "dialogue_id": f"syn-{chain}"})
        if len(ids) >= BATCH or chain == size - 1:
            store.turns.upsert(ids=ids, embeddings=jitter(rng, data["move_base"][rows]).tolist(),
                               documents=[data["move_texts"][r] for r in rows], metadatas=metas)
            ids, rows, metas = [], [], []
    store._upsert_taxonomy_examples()


def open_store(size: int, data: dict[str, Any], stores: Path | None) -> tuple[Any, float, Path]:
    """The store of `size` chains: reused from --stores when built there before, else built (seconds)."""
    from grouped_sim.sop_db.store import SOPStore, is_store_folder

    folder = stores / f"chains-{size}" if stores else Path(tempfile.mkdtemp(prefix=f"gs-ret-{size}-"))
    if stores and is_store_folder(folder) and (folder / "complete").is_file():
        return SOPStore(folder), 0.0, folder
    shutil.rmtree(folder, ignore_errors=True)
    store = SOPStore(folder, create=True)
    start = time.perf_counter()
    build_chains(store, size, data)
    build_turns(store, size, data)
    (folder / "complete").write_text("built\n")
    return store, time.perf_counter() - start, folder


def timed(call: Callable[[Any], Any], args: list[Any], repeats: int) -> tuple[dict[str, Any], list[float]]:
    """A first pass (it embeds texts not seen yet), then `repeats` cached passes; and each query's
    median cached latency."""
    passes = []
    for _ in range(repeats + 1):
        lat = []
        for a in args:
            t0 = time.perf_counter()
            call(a)
            lat.append((time.perf_counter() - t0) * 1000)
        passes.append(lat)
    first, cached = passes[0], passes[1:]
    figures = {"first_p50_ms": round(percentile(first, 0.5), 2), "first_p95_ms": round(percentile(first, 0.95), 2),
               "p50_ms": round(statistics.median(percentile(x, 0.5) for x in cached), 2),
               "p95_ms": round(statistics.median(percentile(x, 0.95) for x in cached), 2),
               "p50_per_repeat": [round(percentile(x, 0.5), 2) for x in cached]}
    return figures, [statistics.median(q) for q in zip(*cached)]


def falls_back(store: Any, queries: list[tuple[str, str]], stage: str) -> list[bool]:
    """Per stage-filtered query: did its over-fetch hold too few matches (so Chroma's filter ran)?"""
    n, out = 4, []
    for text, domain in queries:
        wide = store.chains.query(query_texts=[text], n_results=n * store.OVERFETCH, include=["distances"])
        out.append(len(store._passing(wide["ids"][0], wide["distances"][0], [{f"stage_{stage}": True}, {"domain": domain}], n)) < n)
    return out


def split_by_fallback(figures: dict[str, Any], per_query: list[float], fell: list[bool]) -> None:
    """Add the share that fell back and the p50 of each group to the stage-filtered figures."""
    figures["fallback_share"] = round(sum(fell) / len(fell), 3)
    for name, group in (("overfetch", [t for t, f in zip(per_query, fell) if not f]), ("fallback", [t for t, f in zip(per_query, fell) if f])):
        figures[f"p50_ms_{name}"] = round(percentile(group, 0.5), 2) if group else None


def same_as_chroma(store: Any, queries: list[tuple[str, str]], stage: str) -> dict[str, int]:
    """How many filtered retrievals equal Chroma's own filtered query (ids in order)."""
    same = {"domain": 0, "domain_stage": 0}
    for text, domain in queries:
        for kind, where in (("domain", {"domain": domain}), ("domain_stage", {"$and": [{f"stage_{stage}": True}, {"domain": domain}]})):
            want = store.chains.query(query_texts=[text], n_results=4, where=where, include=["distances"])["ids"][0]
            got = store.retrieve(text, k=4, domain=domain, stage=stage if kind == "domain_stage" else None)
            same[kind] += [c.id for c in got] == want
    return same


def measure(store: Any, data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from grouped_sim.embeddings import _QUERIES

    queries = [(d.profile.as_text(), d.domain) for d in data["corpus"] if d.profile][: args.queries]
    moves = data["move_texts"][:: max(1, len(data["move_texts"]) // args.queries)][: args.queries]
    load_before = os.getloadavg()[0]
    _QUERIES.clear()  # each size's first pass embeds its texts, as a new process would
    out = {
        "retrieve_domain": timed(lambda q: store.retrieve(q[0], k=4, domain=q[1]), queries, args.repeats)[0],
        "retrieve": timed(lambda q: store.retrieve(q[0], k=4), queries, args.repeats)[0],
        "tag_stage": timed(lambda m: store.tag_stage(m, k=5), moves, args.repeats)[0],
    }
    out["retrieve_domain_stage"], per_query = timed(lambda q: store.retrieve(q[0], k=4, domain=q[1], stage=args.stage), queries, args.repeats)
    split_by_fallback(out["retrieve_domain_stage"], per_query, falls_back(store, queries, args.stage))
    for kind in ("retrieve", "retrieve_domain_stage"):  # their first pass found the texts already embedded
        out[kind].pop("first_p50_ms"), out[kind].pop("first_p95_ms")
    out["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    if not args.no_check:
        out["same_as_chroma_filtered_query"] = {**same_as_chroma(store, queries, args.stage), "of": len(queries)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stage", default="price_objection", help="stage of the stage-filtered retrieval")
    parser.add_argument("--stores", type=Path, default=None, help="keep the built stores here and reuse them")
    parser.add_argument("--no-check", action="store_true", help="skip comparing with Chroma's filtered query")
    args = parser.parse_args()

    data = corpus_records()
    results = {}
    for size in args.sizes:
        store, build, folder = open_store(size, data, args.stores)
        store.retrieve(data["texts"][0], k=4, domain="food-delivery")  # warm-up: index load, encoder
        store.tag_stage(data["move_texts"][0])
        results[str(size)] = {"chains": store.count(), "annotated_turns": store.turns.count(), "build_seconds": round(build, 1), **measure(store, data, args)}
        print(size, json.dumps(results[str(size)]), flush=True)
        if args.stores is None:
            shutil.rmtree(folder, ignore_errors=True)
    out = {"benchmark": "sop_retrieval", "k": 4, "tag_k": 5, "stage": args.stage, "queries": args.queries, "repeats": args.repeats,
           "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}, "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "retrieval.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
