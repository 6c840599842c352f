"""`grouped-sim judge ...`: the coherence judge (does a customer reply make sense at this point of the call?)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import console, default_corpus, out

judge_app = typer.Typer(
    help="The coherence judge: P(a customer reply makes sense at this point of the call), read by a language model token by token. "
    "It is what `report` and `probe` grade coherence with; see docs/judge.md for how it was validated.",
    no_args_is_help=True,
)


def _ci(ci: list[float] | None) -> str:
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


@judge_app.command("train")
def judge_train(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the judge (head.npz, judge.json); written whole or not at all.")],
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus JSONL of real calls. Default: the shipped sample corpus.")] = None,
    holdout: Annotated[float, typer.Option("--holdout", min=0.0, max=0.9, help="Share of CALLS held out for the card's ROC-AUC.")] = 0.2,
    calls: Annotated[int, typer.Option("--calls", min=3, help="Training calls read at most (each costs a few seconds a reply on a CPU).")] = 30,
    per_call: Annotated[int, typer.Option("--per-call", min=1, max=20, help="Real replies read per call (each with a shuffled and an other-call version).")] = 3,
    reader: Annotated[str, typer.Option("--reader", help="The llamacpp model that reads replies: an embedded name (default: the 1.5B) or a GGUF path.")] = "default",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split, the anchors and the made-bad replies.")] = 0,
) -> None:
    """Train a coherence judge on real calls: real replies against the same replies with their words
    shuffled and real replies of other calls, read by the language model after the call so far and
    after a few other calls (docs/judge.md). No model writes any training reply."""
    import random

    from grouped_sim.corpus import read_corpus
    from grouped_sim.discriminator.judge import JudgeConfig, save_judge, train_judge
    from grouped_sim.discriminator.model import heldout_dialogues
    from grouped_sim.models.llamacpp import ContinuationReader

    from grouped_sim.discriminator.judge import CARD_FILE
    from grouped_sim.errors import InputError

    if out_dir.exists() and not (out_dir / CARD_FILE).is_file() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir}: exists and is not a judge folder; choose another --out (nothing was read yet)")
    path = corpus or default_corpus()
    dialogues = read_corpus(path)
    if not dialogues:
        raise InputError(f"{path}: no dialogues in the corpus; the judge learns from real replies")
    ids = sorted(d.id for d in dialogues)
    held = sorted(heldout_dialogues(ids, holdout, seed)) if holdout > 0 else []
    train = sorted(random.Random(seed).sample([i for i in ids if i not in set(held)], min(calls, len(ids) - len(held))))
    config = JudgeConfig(reader=reader, seed=seed)
    read = ContinuationReader(reader, max_tokens=config.max_reply_tokens).logprobs
    head, card = train_judge(dialogues, train, held[: max(3, calls // 3)], config, read, per_call=per_call, source=str(path), on_progress=lambda m: console.print(m + " ..."))
    save_judge(out_dir, head, card)
    held_figures = card.heldout
    if held_figures:
        out.print(
            f"judge saved to {out_dir}: held-out ROC-AUC real vs shuffled {held_figures['auc_real_vs_shuffled']}{_ci(held_figures['auc_real_vs_shuffled_ci'])}, "
            f"real vs another call's reply {held_figures['auc_real_vs_other']}{_ci(held_figures['auc_real_vs_other_ci'])} "
            f"({held_figures['real']} real replies of {held_figures['calls']} held-out calls); real replies accepted {held_figures['real_acceptance']}"
        )
    else:
        out.print(f"judge saved to {out_dir} (no held-out calls: --holdout 0)")
    for warning in card.warnings:
        console.print(f"warning: {warning}")
