"""`grouped-sim discriminator ...`: the pattern discriminator (real vs model-written customer turns)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import default_corpus, out, progress

discriminator_app = typer.Typer(
    help="The pattern discriminator D_φ: tells real customer replies from model-written ones; its P(real) is the GRPO pattern reward and a realism metric.",
    no_args_is_help=True,
)


@discriminator_app.command("data")
def discriminator_data(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for pairs.jsonl and meta.json (re-running resumes).")],
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus JSONL of real calls. Default: the shipped sample corpus.")] = None,
    negatives: Annotated[str, typer.Option("--negatives", help="Model spec of the UNTUNED model that writes the negative replies (chat form, customer persona).")] = "hf:smollm2",
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N customer turns (quick tries).")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Length cap of each negative reply.")] = 32,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Replies generated per batch (local models).")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    hard_negatives: Annotated[int, typer.Option("--hard-negatives", min=0, max=50, help="Per real reply, this many extra pairs whose negative is a real reply from ANOTHER call at the same stage (0: none).")] = 1,
) -> None:
    """Write pairs (context, real customer reply, model reply) for every customer turn of a corpus.

    The model reply comes from an untuned chat model asked to play the customer on the same context:
    polite, helpful and wordy, the bias the discriminator learns to spot. Pairs are appended as they
    are made; a second run skips the turns already done. With --hard-negatives N (default 1), each
    real reply also gets N pairs whose negative is a real reply of another call at the same stage:
    same style, wrong conversation, so realism cannot be won on surface style alone.
    """
    from grouped_sim.discriminator.data import NegativeParams, add_hard_negatives, build_pairs, records_from_dialogues
    from grouped_sim.corpus import read_corpus
    from grouped_sim.models import parse_spec

    parse_spec(negatives)  # a typo fails before anything is read or written
    path = corpus or default_corpus()
    records = records_from_dialogues(read_corpus(path))
    params = NegativeParams(max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
    total = min(len(records), limit) if limit else len(records)
    with progress() as bar:
        task = bar.add_task("negative replies", total=total)
        counts = build_pairs(records, out_dir, negatives=negatives, params=params, limit=limit, source=str(path), on_progress=lambda n: bar.advance(task, n))
    hard = add_hard_negatives(records, out_dir, hard_negatives, seed=seed, limit=limit)
    out.print(
        f"{out_dir}/pairs.jsonl: {counts['written']} pairs written, {counts['already_done']} already there ({counts['wanted']} customer turns in {path}); "
        f"hard negatives from other calls: {hard['written']} written, {hard['already_done']} already there"
    )


@discriminator_app.command("train")
def discriminator_train(
    data: Annotated[Path, typer.Option("--data", help="Folder (or pairs.jsonl) written by `discriminator data`.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the trained model, discriminator.json and eval.json.")],
    backbone: Annotated[str, typer.Option("--backbone", help="'minilm' (shipped encoder, CPU-friendly), 'smollm2', or a local HF model folder.")] = "minilm",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 6,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    learning_rate: Annotated[float, typer.Option("--lr", help="AdamW learning rate.")] = 2e-4,
    holdout: Annotated[float, typer.Option("--holdout", min=0.0, max=0.9, help="Share of DIALOGUES held out for evaluation.")] = 0.1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Fine-tune a sequence classifier P(real | context, reply) with binary cross-entropy.

    The held-out split is by dialogue, never by turn. Prints held-out accuracy and ROC-AUC and saves
    them in eval.json next to the model.
    """
    from grouped_sim.discriminator.data import read_pairs
    from grouped_sim.discriminator.model import DiscriminatorConfig, train_discriminator

    pairs = read_pairs(data)
    cfg = DiscriminatorConfig(backbone=backbone, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, holdout=holdout, seed=seed)
    with progress() as bar:
        task = bar.add_task("training", total=None)

        def on_step(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, description=f"training (loss {loss:.3f})")

        report = train_discriminator(pairs, out_dir, cfg, on_step=on_step)
    acc = "n/a" if report.accuracy is None else f"{report.accuracy:.1%}"
    auc = "n/a" if report.roc_auc is None else f"{report.roc_auc:.3f}"
    out.print(
        f"discriminator saved to {out_dir}: held-out accuracy {acc}, ROC-AUC {auc} "
        f"({report.n_heldout} replies from {report.heldout_dialogues} held-out dialogues; trained on {report.n_train}, {report.seconds:.0f}s)"
    )


@discriminator_app.command("score")
def discriminator_score(
    model: Annotated[Path, typer.Option("--model", help="Folder written by `discriminator train`.")],
    dialogues: Annotated[Path, typer.Option("--dialogues", help="Dialogues JSONL: a simulation run's output or a corpus.")],
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Write one JSON line per customer turn here.")] = None,
) -> None:
    """Score every customer turn of a run or corpus: P(real) given the call so far.

    Prints the mean realism and the share of turns the discriminator takes for real (P >= 0.5).
    """
    import json

    from grouped_sim.discriminator.model import DiscriminatorScorer
    from grouped_sim.corpus import read_corpus
    from grouped_sim.io import JsonlAppender
    from grouped_sim.transcript import transcript_text

    calls = read_corpus(dialogues)  # the input is checked before the model loads
    scorer = DiscriminatorScorer(model)
    rows = []
    for dialogue in calls:
        for index, turn in enumerate(dialogue.turns):
            if turn.role == "customer" and index > 0:
                rows.append((dialogue.id, index, transcript_text(dialogue.turns[:index]), turn.text))
    if not rows:
        out.print(f"{dialogues}: no customer turns to score")
        return
    scores: list[float] = []
    batch = 64
    with progress() as bar:
        task = bar.add_task("scoring turns", total=len(rows))
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            scores.extend(scorer.score([r[2] for r in chunk], [r[3] for r in chunk]))
            bar.advance(task, len(chunk))
    if out_path:
        out_path.unlink(missing_ok=True)
        with JsonlAppender(out_path) as appender:
            for (dialogue_id, index, _ctx, text), p in zip(rows, scores):
                appender.write_line(json.dumps({"dialogue_id": dialogue_id, "turn_index": index, "text": text, "p_real": round(p, 4)}, ensure_ascii=False))
    mean = sum(scores) / len(scores)
    real_share = sum(s >= 0.5 for s in scores) / len(scores)
    out.print(f"{len(scores)} customer turns: mean P(real) {mean:.3f}, judged real {real_share:.1%}" + (f"; per-turn scores in {out_path}" if out_path else ""))
