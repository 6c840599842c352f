"""`grouped-sim fit`: fit the simulator to a team's real calls (see grouped_sim/graphs/fit.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import console, label, out, print_decision_check, progress, warn


def fit(
    corpus: Annotated[Path, typer.Option("--corpus", help="Your real call transcripts, JSONL (profiles and stage labels optional).")],
    out_dir: Annotated[Path, typer.Option("--out", help="The sim folder to write: split, stage labels, profiles, SOP store, fitted dynamics, fit.json.")],
    holdout: Annotated[float, typer.Option("--holdout", min=0.0, max=0.9, help="Share of DIALOGUES held out (never fitted on) for `grouped-sim probe`.")] = 0.2,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="Your stage taxonomy YAML (shape of sop_db/data/taxonomy.yaml; `kind` says what a stage means). Default: the built-in telemarketing one.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and of the fit.")] = 0,
    extractor: Annotated[Optional[str], typer.Option("--extractor", help="Chat-model spec that extracts profiles (e.g. openai:MODEL@URL). Default: profiles derived from what each customer said, no model.")] = None,
) -> None:
    """Fit the simulator to your calls: one folder with everything `simulate --sim` and `probe` need.

    The corpus is split by dialogue; the held-out calls are never used for fitting. Training calls
    get stage labels (yours, or a kNN tagger over your labelled turns and the taxonomy's examples),
    a profile each (yours, an LLM's, or derived from the customer's own words, never from the
    outcome), an SOP store, and decision dynamics fitted to when and how your customers decide.
    Rerunning the command resumes an interrupted fit and otherwise leaves the folder as it is.
    """
    from grouped_sim.graphs.fit import FitProgress, FitSettings, SimFolder, check_fit, finished_fit, run_fit
    from grouped_sim.models import parse_spec

    if extractor:
        parse_spec(extractor)
    settings = FitSettings(corpus=str(corpus.resolve()), holdout=holdout, taxonomy=str(taxonomy.resolve()) if taxonomy else None, seed=seed, extractor=extractor)
    checked = check_fit(settings, out_dir)
    summary = finished_fit(SimFolder(out_dir), checked.digest)
    if summary is not None:
        out.print(f"{out_dir}: already fitted on this corpus with these settings; every part checked, nothing rewritten")
    else:
        extract = _extractor(extractor) if extractor else None
        with progress() as bar:
            task = bar.add_task("stage labels", total=None)
            hooks = FitProgress(start=lambda name, total: bar.update(task, description=name, completed=0, total=total), advance=lambda n: bar.advance(task, n))
            summary = run_fit(checked, out_dir, extract=extract, progress=hooks)
    _print_summary(out_dir, summary)


def _print_summary(out_dir: Path, summary: dict) -> None:  # type: ignore[type-arg]
    """What the fit learned, what it could not, and what to run next."""
    dyn = summary["dynamics"]
    out.print(f"{out_dir}: {summary['train']} training and {summary['holdout']} held-out calls; profiles {summary['profiles']}")
    if dyn["fitted"]:
        stats = dyn["statistics"]
        out.print(f"decision dynamics fitted ({stats['moves']} moves, decisions {stats['events']}): held-out log loss {stats['cv_log_loss']} vs {stats['cv_null_log_loss']} for class frequencies")
        if stats.get("cv_log_loss_reading") is not None:
            reads = (dyn.get("hazard") or {}).get("reads_replies")
            verdict = "reads what the customer said" if reads else "does not read what the customer said (it did not help out of fold)"
            out.print(f"the hazard {verdict}: held-out log loss {stats['cv_log_loss_reading']} reading replies, {stats['cv_log_loss_plain']} without")
        if stats.get("cv_decisions"):
            out.print("cross-validated over the training calls (each scored by a fit without its fold), as `probe` scores twins:")
            print_decision_check(stats["cv_decisions"])
    else:
        label(console, "decision dynamics not fitted, the prior is used:", "yellow", str(dyn["reason"]))
    for role, scorer in (summary.get("coherence") or {}).items():
        if not scorer.get("trained"):
            label(console, f"no coherence {role} trained:", "yellow", str(scorer.get("reason")))
        warn(f"coherence {role}: {w}" for w in scorer.get("warnings") or [])
    judge = summary.get("judge") or {}
    if judge and not judge.get("made"):
        label(console, "no coherence judge for this domain:", "yellow", str(judge.get("reason")))
    out.print(f"next: grouped-sim simulate --sim {out_dir} --out RUN   |   grouped-sim probe {out_dir}")


def _extractor(spec: str):  # type: ignore[no-untyped-def]
    """An LLM extractor that returns a checked profile or None (the fit then derives one)."""
    from grouped_sim.config import GenerationParams
    from grouped_sim.models import build_chat_model, parse_spec
    from grouped_sim.sop_db.mine import ProfileExtractor

    parse_spec(spec)
    extractor = ProfileExtractor(build_chat_model(spec, GenerationParams(temperature=0.7, top_p=0.9, max_new_tokens=220)))

    def extract(dialogue):  # type: ignore[no-untyped-def]
        result = extractor.extract(dialogue)
        return result.profile if result.status == "ok" else None

    return extract
