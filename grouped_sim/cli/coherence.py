"""`grouped-sim coherence ...`: the coherence scorer (does a customer reply answer THIS context?)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.errors import count
from grouped_sim.cli.common import default_corpus, fmt, out, progress, warn

coherence_app = typer.Typer(
    help="The coherence scorer: P(a customer reply answers this call), learned from a corpus by telling each real reply from replies of other calls at the same stage.",
    no_args_is_help=True,
)


@coherence_app.command("train")
def coherence_train(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the scorer (head.npz, coherence.json); written whole or not at all.")],
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus JSONL of real calls. Default: the shipped sample corpus.")] = None,
    holdout: Annotated[float, typer.Option("--holdout", min=0.0, max=0.9, help="Share of DIALOGUES held out for the accuracy and ROC-AUC in the card.")] = 0.2,
    split: Annotated[Optional[Path], typer.Option("--split", help="JSON with \"train\" and \"heldout\" lists of dialogue ids (or a scorer card, to retrain on its split); overrides --holdout.")] = None,
    negatives: Annotated[int, typer.Option("--negatives", min=1, max=50, help="Replies of other calls at the same stage per real reply.")] = 3,
    context_turns: Annotated[int, typer.Option("--context-turns", min=2, max=64, help="Turns of the call so far the scorer reads.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and of the negatives.")] = 0,
) -> None:
    """Train a coherence scorer on a corpus: the frozen packaged MiniLM plus a small logistic head.

    Each customer reply that follows a salesman move is a positive; replies from other calls at
    the same stage are its negatives. The held-out figures come from held-out dialogues only.
    """
    from grouped_sim.corpus import read_corpus
    from grouped_sim.discriminator.coherence import CoherenceConfig, chosen_split, train_coherence

    path = corpus or default_corpus()
    dialogues = read_corpus(path)
    ids = [d.id for d in dialogues]
    train_ids, held_ids, rule = chosen_split(split, ids, holdout, seed)
    config = CoherenceConfig(negatives=negatives, context_turns=context_turns, seed=seed)
    with progress() as bar:
        task = bar.add_task("embedding texts", total=None)
        model = train_coherence(
            dialogues, train_ids, held_ids, config, source=str(path), split_rule=rule,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    model.save(out_dir)
    n, held = model.card["n"], model.card["heldout"]
    if held:
        out.print(
            f"coherence scorer saved to {out_dir}: held-out ROC-AUC {fmt(held['roc_auc'], held['roc_auc_ci'])}, accuracy {fmt(held['accuracy'])}, "
            f"real reply ranked above another call's {fmt(held['rank_accuracy'])} "
            f"({held['pairs']} pairs from {count(held['dialogues'], 'held-out dialogue')}; trained on {n['train_pairs']} pairs from {n['train_dialogues']})"
        )
    else:
        out.print(f"coherence scorer saved to {out_dir}: trained on {n['train_pairs']} pairs from {n['train_dialogues']} dialogues; nothing held out, so no held-out figures")
    warn(model.card["warnings"])


@coherence_app.command("score")
def coherence_score(
    dialogues: Annotated[Path, typer.Option("--dialogues", help="Dialogues JSONL: a simulation run's dialogues.jsonl or a corpus.")],
    model: Annotated[Optional[Path], typer.Option("--model", help="Scorer folder from `coherence train`. Default: the shipped judge scorer.")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Write one JSON line per scored customer reply here.")] = None,
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0, help="P at or above which a reply counts as accepted.")] = 0.5,
) -> None:
    """Score every customer reply that follows a salesman move: P(it answers the call so far).

    Prints the mean P and the acceptance share (P >= threshold), each with a 95 % bootstrap
    interval over dialogues.
    """
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import shipped_scorer_path
    from grouped_sim.discriminator.coherence import CoherenceScorer
    from grouped_sim.io import write_jsonl
    from grouped_sim.metrics.coherence import dialogue_scores, reply_contexts, reply_indices, summarise

    scorer = CoherenceScorer(model or shipped_scorer_path())
    calls = read_corpus(dialogues)
    total = sum(len(reply_contexts(d)) for d in calls)
    if total == 0:
        out.print(f"{dialogues}: no customer reply follows a salesman move; nothing to score")
        return
    with progress() as bar:
        task = bar.add_task("scoring replies", total=total)

        def score(contexts: list[str], replies: list[str]) -> list[float]:
            got = scorer.score(contexts, replies)
            bar.advance(task, len(got))
            return got

        scores = dialogue_scores(calls, score, batch=64)
    if out_path:
        rows = (
            {"dialogue_id": d.id, "turn_index": i, "text": d.turns[i].text, "p_coherent": round(p, 4)}
            for d, ps in zip(calls, scores)
            for i, p in zip(reply_indices(d), ps)
        )
        write_jsonl(out_path, rows)
    s = summarise(scores, threshold)
    out.print(
        f"{s['replies']} customer replies in {s['dialogues']} dialogues: mean P(coherent) {fmt(s['mean'], s['mean_ci'])}, "
        f"accepted (P >= {threshold:g}) {fmt(s['acceptance'], s['acceptance_ci'])}" + (f"; per-reply scores in {out_path}" if out_path else "")
    )
