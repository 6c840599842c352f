"""`grouped-sim discriminator ...`: the pattern discriminator (real vs model-written customer turns)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from grouped_sim.cli.common import default_corpus, fmt, out, progress, warn
from grouped_sim.cli.executor import ExecutorOption, RayAddressOption, RayCpusOption, RayGpusOption, RayWorkersOption, chunk_map, ray_settings

discriminator_app = typer.Typer(
    help="The pattern discriminator D_φ: tells real customer replies from model-written ones; its P(real) is the GRPO pattern reward and a realism metric.",
    no_args_is_help=True,
)


@discriminator_app.command("data")
def discriminator_data(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for pairs.jsonl and meta.json (re-running resumes).")],
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus JSONL of real calls. Default: the shipped sample corpus.")] = None,
    negatives: Annotated[str, typer.Option("--negatives", help="Model spec that writes the negative replies: the UNTUNED model in chat form (default), or the simulator's customer (hf:smollm2+customer-sft) with --form transcript.")] = "hf:smollm2",
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N customer turns (quick tries).")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", min=1, help="Length cap of each negative reply (default: 32 in chat form, the simulator's customer cap in transcript form).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Contexts per batched call in chat form (local models).")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    hard_negatives: Annotated[int, typer.Option("--hard-negatives", min=0, max=50, help="Per real reply, this many extra pairs whose negative is a real reply from ANOTHER call at the same stage (0: none).")] = 1,
    form: Annotated[str, typer.Option("--form", help="chat: the model plays a customer persona in its chat template; transcript: it continues the simulator's customer prompt, and its replies are cleaned and guarded as the simulator's are.")] = "chat",
    per_context: Annotated[int, typer.Option("--per-context", min=1, max=64, help="Model replies per context, drawn in one batched call.")] = 1,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_workers: RayWorkersOption = None,
    ray_cpus: RayCpusOption = None,
    ray_gpus: RayGpusOption = None,
) -> None:
    """Write pairs (context, real customer reply, model reply) for every customer turn of a corpus.

    By default the model reply comes from an untuned chat model asked to play the customer on the
    same context: polite, helpful and wordy, the bias the paper's discriminator learns to spot. With
    --form transcript --negatives hf:smollm2+customer-sft the replies are what the simulator's own
    customer says there (its prompt, sampling, cleaning and role guard): the strong negatives the
    shipped realism scorers are trained on. Pairs are appended as they are made; a second run skips
    the turns already done. With --hard-negatives N (default 1), each real reply also gets N pairs
    whose negative is a real reply of another call at the same stage. With --executor ray the
    model replies are drawn on Ray workers (each loads the model once, one batched call at a time);
    this process writes the same pairs.jsonl in the same order.
    """
    from grouped_sim.config import SimulationConfig
    from grouped_sim.corpus import read_corpus
    from grouped_sim.discriminator.data import NegativeParams, add_hard_negatives, build_pairs, records_from_dialogues
    from grouped_sim.errors import InputError
    from grouped_sim.graphs.customer import said_reply
    from grouped_sim.models import parse_spec

    parse_spec(negatives)  # a typo fails before anything is read or written
    remote = chunk_map(ray_settings(executor, ray_address, ray_workers, ray_cpus, ray_gpus))
    if form not in ("chat", "transcript"):
        raise InputError(f"--form {form!r}: expected chat or transcript")
    path = corpus or default_corpus()
    records = records_from_dialogues(read_corpus(path))
    customer = SimulationConfig().customer
    cap = max_new_tokens or (customer.max_new_tokens if form == "transcript" else 32)
    params = NegativeParams(max_new_tokens=cap, batch_size=batch_size, seed=seed, form=form, per_context=per_context)  # type: ignore[arg-type]
    total = min(len(records), limit) if limit else len(records)
    with progress() as bar:
        task = bar.add_task("contexts", total=total)
        counts = build_pairs(
            records, out_dir, negatives=negatives, params=params, limit=limit, source=str(path), on_progress=lambda n: bar.advance(task, n),
            clean=said_reply if form == "transcript" else None, remote=remote,
        )
    hard = add_hard_negatives(records, out_dir, hard_negatives, seed=seed, limit=limit)
    dropped = f", {counts['dropped']} model replies dropped by the simulator's guard" if counts["dropped"] else ""
    out.print(
        f"{out_dir}/pairs.jsonl: {counts['written']} pairs written, {counts['already_done']} contexts already there ({counts['wanted']} customer turns in {path}){dropped}; "
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
    head: Annotated[bool, typer.Option("--head", help="Train a small realism head over the frozen packaged MiniLM (a few KB, as the shipped realism scorers) instead of fine-tuning a backbone.")] = False,
    split: Annotated[Optional[Path], typer.Option("--split", help="With --head: JSON with \"train\" and \"heldout\" dialogue ids (or a scorer card, to retrain on its split); overrides --holdout.")] = None,
    vector: Annotated[bool, typer.Option("--vector/--no-vector", help="With --head: also read the reply's own MiniLM vector (needs more data).")] = False,
) -> None:
    """Fine-tune a sequence classifier P(real | context, reply) with binary cross-entropy, or with
    --head fit a logistic head over the frozen packaged MiniLM.

    The held-out split is by dialogue, never by turn. Prints held-out accuracy and ROC-AUC and saves
    them next to the model (eval.json; a head's card).
    """
    from grouped_sim.discriminator.data import read_pairs
    from grouped_sim.discriminator.model import DiscriminatorConfig, train_discriminator

    pairs = read_pairs(data)
    if head:
        _train_head(pairs, data, out_dir, holdout, seed, split, vector)
        return
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


def _train_head(pairs: list[dict], data: Path, out_dir: Path, holdout: float, seed: int, split: Path | None, vector: bool) -> None:
    """`discriminator train --head`: the realism head of `grouped_sim.discriminator.realism`."""
    from grouped_sim.discriminator.coherence import chosen_split
    from grouped_sim.discriminator.realism import RealismConfig, train_realism
    from grouped_sim.discriminator.data import read_meta

    ids = sorted({p["dialogue_id"] for p in pairs})
    train_ids, held_ids, rule = chosen_split(split, ids, holdout, seed)
    folder = data if data.is_dir() else data.parent
    meta = read_meta(folder)
    with progress() as bar:
        task = bar.add_task("embedding texts", total=None)
        model = train_realism(
            pairs, train_ids, held_ids, RealismConfig(vector=vector, seed=seed), source={"pairs": str(data), **meta}, split_rule=rule,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    model.save(out_dir)
    n, held = model.card["n"], model.card["heldout"]
    if held:
        out.print(
            f"realism head saved to {out_dir}: held-out ROC-AUC {fmt(held['roc_auc'], held['roc_auc_ci'])}"
            + f", real reply ranked above the model's {fmt(held['rank_accuracy'])} ({n['heldout_real_replies']} real and {n['heldout_model_replies']} model replies "
            f"from {n['heldout_dialogues']} held-out dialogues; trained on {n['train_real_replies']} real and {n['train_model_replies']} model replies)"
        )
    else:
        out.print(f"realism head saved to {out_dir}: trained on {n['train_real_replies']} real and {n['train_model_replies']} model replies; nothing held out")
    warn(model.card["warnings"])


@discriminator_app.command("score")
def discriminator_score(
    model: Annotated[Path, typer.Option("--model", help="Folder written by `discriminator train` (a fine-tuned model or a --head), or a shipped realism scorer folder.")],
    dialogues: Annotated[Path, typer.Option("--dialogues", help="Dialogues JSONL: a simulation run's output or a corpus.")],
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Write one JSON line per customer turn here.")] = None,
) -> None:
    """Score every customer turn of a run or corpus: P(real) given the call so far.

    Prints the mean realism and the share of turns the discriminator takes for real (P >= 0.5).
    """
    import json

    from grouped_sim.corpus import read_corpus
    from grouped_sim.discriminator.realism import load_realism_scorer
    from grouped_sim.io import JsonlAppender
    from grouped_sim.transcript import transcript_text

    calls = read_corpus(dialogues)  # the input is checked before the model loads
    scorer = load_realism_scorer(model)
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
