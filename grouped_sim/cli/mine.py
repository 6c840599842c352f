"""`grouped-sim sop mine`: raw transcripts → profiles, stage labels, D_gen, D_sim and the SOP store.

Registers itself on the `sop` command group (imported by app.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import console, default_corpus, label, out, progress
from grouped_sim.cli.sop import sop_app


@sop_app.command("mine")
def sop_mine(
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder: mined.jsonl, annotated_corpus.jsonl, D_gen.jsonl, D_sim.jsonl, mine.json.")],
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Raw transcripts, JSONL (profiles and stage labels optional). Default: the sample corpus.")] = None,
    annotator: Annotated[Optional[str], typer.Option("--annotator", help="Chat-model spec that labels SOP stages. Default: kNN tagger over the already labelled turns.")] = None,
    extractor: Annotated[Optional[str], typer.Option("--extractor", help="Chat-model spec that extracts profiles (e.g. hf:smollm2, openai:MODEL@URL). Without it (or when its answer fails its checks) a profile is derived from what the customer said, never from the outcome.")] = None,
    db: Annotated[Optional[Path], typer.Option("--db", help="SOP store to upsert the behaviour chains into. Default: OUT/sop_db.")] = None,
    labelled: Annotated[Optional[Path], typer.Option("--labelled", help="Extra stage-labelled corpus for the kNN tagger (e.g. the sample corpus).")] = None,
    extract: Annotated[str, typer.Option("--extract", help="'missing': extract only where the input has no profile; 'all': re-extract every profile.")] = "missing",
    relabel: Annotated[bool, typer.Option("--relabel", help="Replace stage labels the input already has.")] = False,
    retries: Annotated[int, typer.Option("--retries", min=0, max=10, help="Extra attempts after an invalid profile before the profile is derived from the transcript instead.")] = 2,
    k: Annotated[int, typer.Option("-k", min=1, help="Neighbours voting in the kNN tagger.")] = 3,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="Your stage taxonomy YAML (shape of sop_db/data/taxonomy.yaml). Default: the built-in telemarketing one.")] = None,
    skip_bad_lines: Annotated[bool, typer.Option("--skip-bad-lines", help="Mine the valid dialogues even when some input lines are bad (they are listed, and recorded in mine.json).")] = False,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, max=256, help="Dialogues whose first extraction attempt runs as one batch on our own backends (hf:, vllm:); records are still written as each finishes. Default: 8 on vllm:, 1 on hf: (a padded transformers batch measured 0.8x of one at a time; docs/data-pipeline.md). API models are always asked one call at a time.")] = None,
) -> None:
    """Mine a corpus (the paper's dual-stream pipeline, §3.1).

    Each dialogue's result is appended to OUT/mined.jsonl as it finishes; a rerun with the same
    input and models skips finished dialogues, so a killed run resumes. The whole input is checked
    first: bad lines (a field, a duplicate id, a stage label not in the taxonomy) are listed one by
    one (file:line: field: message) and nothing is written (exit code 2), unless --skip-bad-lines
    asks to mine the valid dialogues anyway.
    """
    from grouped_sim.config import GenerationParams
    from grouped_sim.corpus import read_corpus
    from grouped_sim.io import JsonlAppender
    from grouped_sim.errors import InputError, count
    from grouped_sim.models import build_chat_model, parse_spec
    from grouped_sim.sop_db.mine import MINED, Miner, MineSettings, ProfileExtractor, finish, iter_pending, load_done, read_lenient
    from grouped_sim.sop_db.store import check_store_target
    from grouped_sim.sop_db.tagger import LLMStageAnnotator
    from grouped_sim.sop_db.taxonomy import load_taxonomy

    if extract not in ("missing", "all"):
        raise InputError(f"--extract {extract!r}: expected 'missing' or 'all'")
    for spec in (annotator, extractor):
        if spec:
            parse_spec(spec)
    path = corpus or default_corpus()
    items, bad = read_lenient(path)
    for error in bad:
        label(console, "bad line", "red", str(error))
    if not items:
        raise InputError(f"{path}: no valid dialogue to mine ({count(len(bad), 'bad line')})")
    if bad and not skip_bad_lines:
        raise InputError(f"{path}: {count(len(bad), 'bad line')} (listed above); nothing was written. Fix them, or pass --skip-bad-lines to mine the {count(len(items), 'valid dialogue')}")
    labelled_corpus = read_corpus(labelled) if labelled else None
    store_dir = str(db) if db else str(out_dir / "sop_db")
    check_store_target(store_dir)
    if out_dir.is_file():
        raise InputError(f"{out_dir}: --out is a file, expected a folder")
    settings = MineSettings(extractor=extractor, annotator=annotator, extract=extract, relabel=relabel, retries=retries, k=k, taxonomy=str(taxonomy.resolve()) if taxonomy else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = load_done(out_dir / MINED)
    pending = list(iter_pending(items, done, settings))
    console.print(f"{len(items)} dialogues, {len(items) - len(pending)} already mined, {len(pending)} to do")
    tagger = None
    if pending:
        needs_tagger = annotator is not None or any(t.sop_stage is None for i in pending for t in i.dialogue.turns) or relabel
        if needs_tagger:
            from grouped_sim.sop_db.mine import build_tagger

            tagger = build_tagger(items, settings, labelled_corpus)
            console.print(f"kNN stage tagger over {tagger.size} labelled turns")
        gen = GenerationParams(temperature=0.7, top_p=0.9, max_new_tokens=220)
        extractor_model = ProfileExtractor(build_chat_model(extractor, gen), retries=retries) if extractor else None
        annotator_model = LLMStageAnnotator(build_chat_model(annotator, gen.model_copy(update={"temperature": 0.2, "max_new_tokens": 12})), retries=retries, fallback=tagger, taxonomy=load_taxonomy(settings.taxonomy)) if annotator else None
        miner = Miner(settings, tagger, extractor_model, annotator_model)
        with JsonlAppender(out_dir / MINED) as sink, progress() as bar:
            task = bar.add_task("dialogues", total=len(pending))
            chunk = batch_size or default_batch_size(extractor)
            for start in range(0, len(pending), chunk):
                for record in miner.mine_chunk(pending[start : start + chunk]):
                    sink.write_line(record.model_dump_json())
                    done[record.key] = record
                    if record.profile_status == "derived" and record.profile_attempts:
                        label(console, "extraction failed, profile derived", "yellow", f"{path}:{record.line} ({record.id}): {record.profile_reason}")
                    bar.advance(task)
    keys = {f"{i.digest}:{settings.key()}" for i in items}
    records = [r for key, r in done.items() if key in keys]
    with progress() as bar:
        task = bar.add_task("storing chains", total=len(records))
        summary = finish(out_dir, records, bad, settings, store_dir, on_store_progress=lambda n: bar.advance(task, n))
    out.print(f"{summary['dialogues']} dialogues mined into {out_dir}: profiles {summary['profiles']}, stage labels {summary['stage_sources']}")
    out.print(f"D_gen {summary['datasets']['D_gen']} records, D_sim {summary['datasets']['D_sim']} records; store {store_dir}: {summary['store']['chains']} chains")
    if bad:
        label(console, "warning:", "yellow", f"{path}: {count(len(bad), 'bad line')} skipped (listed above, and in {out_dir / 'mine.json'}); {count(len(items), 'valid dialogue')} mined")


def default_batch_size(extractor: str | None) -> int:
    """8 on vLLM, which retires each row when it finishes. 1 elsewhere: an hf: model runs a padded
    transformers batch to its longest answer (0.8x of one call at a time, docs/data-pipeline.md;
    8 paid off only on the lean decoder, since removed), and API models are asked one call at a time."""
    from grouped_sim.models import parse_spec

    return 8 if extractor and parse_spec(extractor).backend == "vllm" else 1
