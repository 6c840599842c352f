"""`grouped-sim sop mine`: raw transcripts → profiles, stage labels, D_gen, D_sim and the SOP store.

Registers itself on the `sop` command group (imported by app.py).
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Optional

import typer

from grouped_sim.cli.common import console, default_corpus, label, out, progress
from grouped_sim.cli.executor import ExecutorOption, RayAddressOption, RayCpusOption, RayGpusOption, RayWorkersOption, chunk_map, ray_settings
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
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, max=256, help="Dialogues whose first extraction attempt runs as one batch on our own backends (hf:, vllm:); records are still written as each finishes. Default: 8 on vllm:, 1 on hf: (a padded transformers batch measured 0.8x of one at a time; docs/data-pipeline.md). API models are always asked one call at a time. With --executor ray, one such chunk is what a worker is sent at a time.")] = None,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_workers: RayWorkersOption = None,
    ray_cpus: RayCpusOption = None,
    ray_gpus: RayGpusOption = None,
) -> None:
    """Mine a corpus (the paper's dual-stream pipeline, §3.1).

    Each dialogue's result is appended to OUT/mined.jsonl as it finishes; a rerun with the same
    input and models skips finished dialogues, so a killed run resumes. The whole input is checked
    first: bad lines (a field, a duplicate id, a stage label not in the taxonomy) are listed one by
    one (file:line: field: message) and nothing is written (exit code 2), unless --skip-bad-lines
    asks to mine the valid dialogues anyway. With --executor ray the dialogues are mined on Ray
    workers, each loading the models once; this process writes the same files in the same order.
    """
    from grouped_sim.corpus import read_corpus
    from grouped_sim.errors import InputError, count
    from grouped_sim.models import parse_spec
    from grouped_sim.sop_db.mine import MINED, MineRecipe, MineSettings, finish, iter_pending, load_done, needs_tagger, read_lenient, tagger_pool
    from grouped_sim.sop_db.store import check_store_target

    ray = ray_settings(executor, ray_address, ray_workers, ray_cpus, ray_gpus)
    remote = chunk_map(ray)  # Ray missing: fails here, before anything is read or written
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
    if pending:
        recipe = MineRecipe(settings=settings, pool=tagger_pool(items, labelled_corpus) if needs_tagger(pending, settings) else None)
        chunk = batch_size or default_batch_size(extractor)
        chunks = [pending[start : start + chunk] for start in range(0, len(pending), chunk)]
        write_mined(out_dir / MINED, mined_records(recipe, chunks, remote), done, path, len(pending))
    keys = {f"{i.digest}:{settings.key()}" for i in items}
    records = [r for key, r in done.items() if key in keys]
    with progress() as bar:
        task = bar.add_task("storing chains", total=len(records))
        summary = finish(out_dir, records, bad, settings, store_dir, on_store_progress=lambda n: bar.advance(task, n))
    out.print(f"{summary['dialogues']} dialogues mined into {out_dir}: profiles {summary['profiles']}, stage labels {summary['stage_sources']}")
    out.print(f"D_gen {summary['datasets']['D_gen']} records, D_sim {summary['datasets']['D_sim']} records; store {store_dir}: {summary['store']['chains']} chains")
    if bad:
        label(console, "warning:", "yellow", f"{path}: {count(len(bad), 'bad line')} skipped (listed above, and in {out_dir / 'mine.json'}); {count(len(items), 'valid dialogue')} mined")


def mined_records(recipe: Any, chunks: list[Any], remote: Callable[[Any, list[Any]], Iterator[Any]] | None) -> Iterator[Any]:
    """Each chunk's records, in input order: mined here (the models load in this process), or with
    --executor ray (`remote`, cli/executor.py chunk_map) on Ray workers that each build the same
    Miner from `recipe`."""
    if remote is not None:
        console.print(f"mining {len(chunks)} chunks on Ray workers")
        for records in remote(recipe, chunks):
            yield from records
        return
    miner = recipe.miner()
    if miner.tagger is not None:
        console.print(f"kNN stage tagger over {miner.tagger.size} labelled turns")
    for items in chunks:
        yield from miner.mine_chunk(items)


def write_mined(path: Path, records: Iterator[Any], done: dict[str, Any], corpus: Path, total: int) -> None:
    """Append each record to mined.jsonl as it comes (the one writer, in input order), so a killed
    run resumes after the last record written."""
    from grouped_sim.io import JsonlAppender

    with JsonlAppender(path) as sink, progress() as bar:
        task = bar.add_task("dialogues", total=total)
        for record in records:
            sink.write_line(record.model_dump_json())
            done[record.key] = record
            if record.profile_status == "derived" and record.profile_attempts:
                label(console, "extraction failed, profile derived", "yellow", f"{corpus}:{record.line} ({record.id}): {record.profile_reason}")
            bar.advance(task)


def default_batch_size(extractor: str | None) -> int:
    """8 on vLLM, which retires each row when it finishes. 1 elsewhere: an hf: model runs a padded
    transformers batch to its longest answer (0.8x of one call at a time, docs/data-pipeline.md;
    8 paid off only on the lean decoder, since removed), and API models are asked one call at a time."""
    from grouped_sim.models import parse_spec

    return 8 if extractor and parse_spec(extractor).backend == "vllm" else 1
