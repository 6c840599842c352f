"""`grouped-sim sop mine` wall time with the embedded model, one call at a time vs batched first attempts.

    .venv/bin/python benchmarks/mining_batch.py [--dialogues 8] [--repeats 2] [--role extractor|annotator]
        [--retries 2] [--run NAME=BATCH ...]   # e.g. --run b1=1 --run b8=8; NAME= (no batch) runs without --batch-size

--role calls times the model calls alone, in one process (no imports, model load or store build
in the figure): the first extraction attempts of --dialogues dialogues one call at a time vs in
chunks of 2, 4 and 8, and the annotator's first answers for every turn of 3 dialogues one at a time
vs one batch per dialogue, each checked for identical text row by row.

Otherwise it runs the real command on the first --dialogues of the sample corpus in a fresh folder each time:
`--extractor hf:smollm2 --extract all` (every dialogue's profile extracted, up to 220 new tokens a
try, --retries more tries after an invalid answer), or `--annotator hf:smollm2 --relabel` (every turn labelled). A run named without a
batch size leaves --batch-size out, so the same script times a checkout from before batching.
Each run records its wall times, the profiles' statuses and attempts, and a digest of what was
mined (profiles or labels) so runs can be compared for identical output. Results merge into
benchmarks/results/mining_batch.json under the role with its retries (e.g. extractor-retries2) and
the run's name.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "mining_batch.json"
CLI = Path(sys.executable).parent / "grouped-sim"


def sample(n: int, folder: Path) -> Path:
    from grouped_sim.data import sample_corpus_path

    lines = sample_corpus_path().read_text(encoding="utf-8").splitlines()[:n]
    path = folder / "sample.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mined_digest(out: Path, role: str) -> tuple[str, dict]:
    """A digest of what the model produced, and the summary's profile figures."""
    records = [json.loads(line) for line in (out / "mined.jsonl").read_text(encoding="utf-8").splitlines()]
    records.sort(key=lambda r: r["line"])
    if role == "extractor":
        made = [(r["id"], r["profile_status"], r["profile_attempts"], (r["dialogue"].get("profile") or {}).get("summary"),
                 r["dialogue"]["meta"]["profile_extraction"]["errors"]) for r in records]  # the errors quote what the model wrote
    else:
        made = [(r["id"], [(t.get("sop_stage"), t.get("meta", {}).get("stage_source")) for t in r["dialogue"]["turns"]]) for r in records]
    summary = json.loads((out / "mine.json").read_text(encoding="utf-8"))
    figures = {"profiles": summary["profiles"], "stage_sources": summary["stage_sources"], "attempts": sum(r["profile_attempts"] for r in records)}
    return hashlib.sha256(json.dumps(made).encode()).hexdigest()[:12], figures


def run_once(corpus: Path, role: str, batch: str, retries: int) -> tuple[float, str, dict]:
    out = Path(tempfile.mkdtemp(prefix="gs-mine-"))
    args = [str(CLI), "sop", "mine", "--corpus", str(corpus), "--out", str(out / "m"), "--retries", str(retries)]
    args += ["--extractor", "hf:smollm2", "--extract", "all"] if role == "extractor" else ["--annotator", "hf:smollm2", "--relabel"]
    if batch:
        args += ["--batch-size", batch]
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    digest, figures = mined_digest(out / "m", role)
    shutil.rmtree(out, ignore_errors=True)
    return wall, digest, figures


def timed_rows(call: Callable[[], list[str]], repeats: int) -> tuple[list[float], list[str]]:
    walls, texts = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        texts = call()
        walls.append(round(time.perf_counter() - start, 1))
    return walls, texts


def time_extraction(n: int, repeats: int) -> dict[str, Any]:
    from grouped_sim.config import GenerationParams
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.models import build_chat_model
    from grouped_sim.sop_db.mine import ProfileExtractor, extraction_source

    extractor = ProfileExtractor(build_chat_model("hf:smollm2", GenerationParams(temperature=0.7, top_p=0.9, max_new_tokens=220)))
    dialogues = [extraction_source(d) for d in read_corpus(sample_corpus_path())[:n]]
    extractor.ask(dialogues[0], 0)  # warm-up
    out: dict[str, Any] = {"dialogues": n, "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    walls, alone = timed_rows(lambda: [extractor.ask(d, i) for i, d in enumerate(dialogues)], repeats)
    tokenizer = extractor.model.loaded.tokenizer
    out["answer_tokens"] = [len(tokenizer(a)["input_ids"]) for a in alone]
    out["one_at_a_time_s"] = walls
    for size in (2, 4, 8):
        walls, batched = timed_rows(lambda: [a for s in range(0, n, size) for a in extractor.first_answers([(dialogues[i], i) for i in range(s, min(n, s + size))])], repeats)
        out[f"batch_{size}_s"] = walls
        out[f"batch_{size}_identical_rows"] = sum(a == b for a, b in zip(alone, batched))
    return out


def time_annotation(repeats: int) -> dict[str, Any]:
    from grouped_sim.config import GenerationParams
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.models import build_chat_model
    from grouped_sim.sop_db.tagger import LLMStageAnnotator, find_stage

    annotator = LLMStageAnnotator(build_chat_model("hf:smollm2", GenerationParams(temperature=0.2, top_p=0.9, max_new_tokens=12)))
    dialogues = read_corpus(sample_corpus_path())[:3]
    annotator.ask(dialogues[0], 0, 0)  # warm-up
    out: dict[str, Any] = {"dialogues": 3, "turns": sum(len(d.turns) for d in dialogues), "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    out["one_at_a_time_s"], alone = timed_rows(lambda: [annotator.ask(d, i, 0) for d in dialogues for i in range(len(d.turns))], repeats)
    out["batch_per_dialogue_s"], batched = timed_rows(lambda: [a for d in dialogues for a in annotator.first_answers(d)], repeats)
    out["identical_rows"] = sum(a == b for a, b in zip(alone, batched))
    out["answers_naming_a_stage"] = sum(find_stage(a, annotator.taxonomy) is not None for a in alone)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--role", choices=["extractor", "annotator", "calls"], default="extractor")
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument("--run", action="append", default=[], help="NAME=BATCH (BATCH empty: no --batch-size flag)")
    args = parser.parse_args()

    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"benchmark": "mining_batch", "roles": {}}
    if args.role == "calls":
        results["calls"] = {"extractor": time_extraction(args.dialogues, args.repeats), "annotator": time_annotation(args.repeats), "cpus": os.cpu_count()}
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results["calls"], indent=2))
        return
    folder = Path(tempfile.mkdtemp(prefix="gs-mine-bench-"))
    corpus = sample(args.dialogues, folder)
    for spec in args.run or ["b1=1", "b8=8"]:
        name, _, batch = spec.partition("=")
        walls, digests, figures, loads = [], [], {}, []
        for _ in range(args.repeats):
            loads.append(round(os.getloadavg()[0], 2))
            wall, digest, figures = run_once(corpus, args.role, batch, args.retries)
            walls.append(round(wall, 1))
            digests.append(digest)
            print(name, args.role, wall, digest, figures, flush=True)
        results["roles"].setdefault(f"{args.role}-retries{args.retries}", {})[name] = {
            "dialogues": args.dialogues, "batch_size": int(batch) if batch else None, "wall_s": walls, "median_s": round(statistics.median(walls), 1),
            "output_digests": digests, **figures, "load_avg_1m_at_start": loads, "cpus": os.cpu_count(),
        }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
