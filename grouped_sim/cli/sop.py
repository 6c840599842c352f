"""`grouped-sim sop ...`: build and query the SOP behaviour-chain store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import default_corpus, out, progress, warn

sop_app = typer.Typer(help="The SOP store: behaviour chains of real customers, in Chroma, retrieved by profile.", no_args_is_help=True)


@sop_app.command("build")
def sop_build(
    db: Annotated[Path, typer.Option("--db", help="Folder of the Chroma store (created if missing), or http://host:port of a Chroma server.")],
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus JSONL, one dialogue per line. Default: the shipped sample corpus.")] = None,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="The stage taxonomy the corpus is labelled with (YAML). Default: the built-in one.")] = None,
) -> None:
    """Embed each dialogue's customer profile and store its stage-annotated behaviour chain.

    Upserts by dialogue id, so building twice from the same corpus leaves the same store. Dialogues
    without a profile are indexed by a summary derived from what the customer said. The whole
    corpus is checked first (every line, every stage label) and the store is built beside its
    folder and moved into place when complete: a bad line or a failure leaves no store behind.
    """
    from grouped_sim.corpus import empty_turn_warnings, read_corpus_lines
    from grouped_sim.errors import InputError
    from grouped_sim.sop_db.store import build_store, check_stages
    from grouped_sim.sop_db.taxonomy import load_taxonomy

    path = corpus or default_corpus()
    stages = load_taxonomy(taxonomy)
    lines = read_corpus_lines(path)
    check_stages(lines, path, stages)
    if not lines:
        raise InputError(f"{path}: no dialogues in the corpus; a store with 0 behaviour chains would make every full-mode run retrieve nothing")
    dialogues = [d for _, d in lines]
    with progress() as bar:
        task = bar.add_task("embedding dialogues", total=len(dialogues))
        counts = build_store(str(db), dialogues, on_progress=lambda n: bar.advance(task, n), taxonomy=stages)
    out.print(f"SOP store {db}: {counts['chains']} behaviour chains, {counts['annotated_turns']} annotated turns (from {path})")
    warn(empty_turn_warnings(lines, path, "stored as an empty step of its behaviour chain"))


@sop_app.command("query")
def sop_query(
    db: Annotated[Path, typer.Option("--db", help="Folder of the Chroma store built by `sop build`.")],
    profile: Annotated[str, typer.Option("--profile", help="A customer profile in plain words.")],
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="How many chains to return.")] = 4,
    stage: Annotated[Optional[str], typer.Option("--stage", help="Only chains that reached this SOP stage; show that stage's turns.")] = None,
    domain: Annotated[Optional[str], typer.Option("--domain", help="Only chains from this domain.")] = None,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="The stage taxonomy the store was built with (YAML). Default: the built-in one.")] = None,
) -> None:
    """Print the top-K behaviour chains for a profile (eq. 8 of the paper)."""
    from rich.table import Table
    from rich.text import Text

    from grouped_sim.sop_db.store import SOPStore
    from grouped_sim.sop_db.taxonomy import load_taxonomy

    stages = load_taxonomy(taxonomy)
    if stage is not None:
        stages.check(stage, "--stage")  # before the store opens
    store = SOPStore(db, taxonomy=stages)
    chains = store.retrieve(profile, k=k, stage=stage, domain=domain)
    if not chains:
        out.print("no matching chains")
        return
    for rank, chain in enumerate(chains, start=1):
        table = Table(title=f"#{rank} {chain.id}  ({chain.domain}, {chain.archetype or 'no archetype'}, {chain.outcome}, distance {chain.distance:.3f})", show_lines=False)
        table.add_column("stage", style="cyan", no_wrap=True)
        table.add_column("salesman")
        table.add_column("customer", style="bold")
        for step in chain.steps:
            if stage and step.stage != stage:
                continue
            table.add_row(step.stage or "", step.salesman, step.customer)
        out.print(Text(chain.profile_text, style="dim"))
        out.print(table)


@sop_app.command("propose-stages")
def sop_propose_stages(
    corpus: Annotated[Path, typer.Option("--corpus", help="Your call transcripts, JSONL (stage labels not needed).")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the draft taxonomy YAML (name the stages, set their kind, then: fit --taxonomy FILE).")],
    k: Annotated[int, typer.Option("-k", min=2, max=40, help="How many stages to propose.")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Propose stages for a new domain by clustering the salesman's moves (MiniLM + k-means).

    Writes a draft taxonomy: one stage per cluster, ordered by where in the call its moves tend to
    come, with its most typical moves as examples. Name them, merge or split, and set each stage's
    `kind` (opening, permission, discovery, pitch, question, objection, closing, follow_up, goodbye).
    """
    import yaml

    from grouped_sim.corpus import read_corpus
    from grouped_sim.errors import InputError
    from grouped_sim.io import write_text_atomic
    from grouped_sim.sop_db.propose import propose_taxonomy

    try:
        taxonomy, shares = propose_taxonomy(read_corpus(corpus), k, seed)
    except ValueError as exc:
        raise InputError(f"{corpus}: {exc}") from exc
    header = "# Draft stages proposed by `grouped-sim sop propose-stages` from " + str(corpus) + ".\n# Name each stage, set its kind, merge or split, then pass this file to `grouped-sim fit --taxonomy`.\n"
    body = yaml.safe_dump(taxonomy.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=110)
    write_text_atomic(out_file, header + body)
    for stage, share in zip(taxonomy.stages, shares):
        out.print(f"{stage.id}  {share:.0%} of moves  e.g. {stage.examples[0][:90]}")
    out.print(f"wrote {out_file}")
