"""Training the customer model: SFT on D_sim, then GRPO with the multi-level reward (paper §3.2.2).

Both stages train a LoRA adapter (peft) over a plain copy of the base model on the text the
customer reads where it will run: the prompt is the call so far ending in "Customer:" (the
transcript a transformers customer reads, or with SFT's `form="script_prompt"` the prefix-caching
script a llama.cpp customer reads: `form`) and the completion is the
real reply (completion-only loss). The result is a folder that the model spec
`hf:BASE+ADAPTER_DIR` loads, so `simulate --customer hf:smollm2+DIR` runs the trained customer;
`train export-lora` takes it to llama.cpp.

Defaults follow the paper's Table 6 (user simulator: 2 epochs, warmup 0.1, KL coefficient 0.04)
scaled to a 135M model with LoRA: LoRA needs a larger learning rate than the 5e-6 of a full
fine-tune of a 32B model, and a CPU smoke run needs short generations and small groups.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.discriminator.rewards import RewardConfig
from grouped_sim.errors import InputError
from grouped_sim.io import LineError, iter_jsonl, write_json_atomic
from grouped_sim.models.finetune import TRAINING_FILE, BaseWeights, LoraParams, OnLog, RunParams, SFTParams, TrainLog, base_weights, finish, load_policy, sft_args, train, trl_args

REQUIRED_COLUMNS = ("prompt", "completion")
PromptColumn = Literal["prompt", "script_prompt"]
"""Where a customer model will run decides the text it must be trained on (customer_prompt.render):
transformers reads the transcript ("prompt"), llama.cpp the prefix-caching script ("script_prompt")."""
FORM_HELP = (
    "the D_sim column trained on: 'prompt', the transcript a transformers (hf:) customer reads; 'script_prompt', the "
    "prefix-caching layout a llama.cpp customer reads (train on it for an adapter that `train export-lora` takes to llama.cpp)"
)


class CustomerSFTConfig(SFTParams):
    """Supervised fine-tuning on D_sim (UserLM-style next-customer-turn prediction)."""

    base: str = Field("hf:smollm2", description="hf: spec of the base model (hf:BASE+ADAPTER continues that adapter)")
    epochs: float = Field(2.0, gt=0.0, description="Table 6: 2")
    learning_rate: float = Field(2e-4, gt=0.0, description="LoRA rate; Table 6's 5e-6 is for full fine-tuning of 32B")
    grad_accum: int = Field(1, ge=1)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Table 6: 0.1")
    lora: LoraParams = LoraParams()
    holdout: float = Field(0.0, ge=0.0, lt=1.0, description="share of DIALOGUES left out of training (the discriminator's split rule), so a later evaluation sees unseen calls")
    form: PromptColumn = Field("prompt", description=FORM_HELP)


class CustomerGRPOConfig(RunParams):
    """GRPO with the pattern, format and semantic rewards (Appendix C)."""

    base: str = Field("hf:smollm2", description="hf: spec; hf:BASE+SFT_ADAPTER starts from (and keeps training) the SFT adapter")
    max_steps: int = Field(200, ge=1)
    learning_rate: float = Field(2e-5, gt=0.0, description="LoRA rate; Table 6 uses 5e-6 for full fine-tuning")
    beta: float = Field(0.04, ge=0.0, description="KL coefficient (Table 6: 0.04)")
    num_generations: int = Field(4, ge=2, description="group size G")
    prompts_per_step: int = Field(2, ge=1, description="distinct prompts per optimisation step")
    max_completion_length: int = Field(24, ge=4, description="tokens per sampled reply")
    temperature: float = Field(0.95, gt=0.0, description="Table 8: 0.95")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Table 8: 0.95")
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    rewards: RewardConfig = RewardConfig()
    lora: LoraParams = LoraParams()
    use_vllm: bool | None = Field(None, description="None: use vLLM when it is installed and a GPU is present")
    form: PromptColumn = Field("prompt", description=FORM_HELP)


class TrainSummary(BaseModel):
    """What a training run did; written to `training.json` in the adapter folder."""

    stage: str
    adapter_dir: str
    spec: str
    base: str
    base_folder: str
    examples: int
    steps: int
    seconds: float
    first_loss: float | None = None
    last_loss: float | None = None
    reward_first: float | None = None
    reward_last: float | None = None
    heldout_dialogues: list[str] = Field(default_factory=list, description="dialogue ids kept out of training (evaluate on these)")
    config: dict[str, Any]


def load_d_sim(path: Path | str, columns: Sequence[str] = REQUIRED_COLUMNS, limit: int | None = None) -> list[dict[str, Any]]:
    """Read D_sim.jsonl (or the folder holding it); every row needs the given string columns."""
    path = Path(path)
    if path.is_dir():
        path = path / "D_sim.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: D_sim not found; build it with `grouped-sim sop mine` (or grouped_sim.sop_db.datasets.write_datasets)")
    rows: list[dict[str, Any]] = []
    for line_no, row in iter_jsonl(path):
        for column in columns:
            if not isinstance(row.get(column), str):
                again = " (mined by an older grouped-sim: mine the corpus again with `grouped-sim sop mine`)" if column == "script_prompt" and "prompt" in row else ""
                raise LineError(path, line_no, column, "missing or not a string" + again)
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise InputError(f"{path}: no training rows")
    return rows


def split_holdout(rows: Sequence[dict[str, Any]], share: float, seed: int) -> tuple[list[dict[str, Any]], set[str]]:
    """(training rows, held-out dialogue ids): whole dialogues are held out, never single turns.

    Uses the discriminator's deterministic split, so the same share and seed name the same calls
    in training, in `benchmarks/train_customer.py` and in the discriminator's own split.
    """
    from grouped_sim.discriminator.model import heldout_dialogues

    if share <= 0:
        return list(rows), set()
    ids = [str(r.get("dialogue_id") or str(r.get("id", "")).split(":")[0]) for r in rows]
    held = heldout_dialogues(ids, share, seed)
    kept = [r for r, d in zip(rows, ids) if d not in held]
    if not kept:
        raise InputError(f"holdout {share} leaves no training rows")
    return kept, held


def _summary(stage: str, trainer: Any, out: Path, base: BaseWeights, rows: int, started: float, cfg: BaseModel, log: TrainLog, reward_key: str | None, heldout: Sequence[str] = ()) -> TrainSummary:
    done = finish(trainer, out, log, started)
    r_first, r_last = log.first_last(reward_key) if reward_key else (None, None)
    summary = TrainSummary(
        stage=stage,
        adapter_dir=str(out),
        spec=f"hf:{base.name}+{out.resolve()}",
        base=base.name,
        base_folder=str(base.folder),
        examples=rows,
        **done,
        reward_first=r_first,
        reward_last=r_last,
        heldout_dialogues=sorted(heldout),
        config=cfg.model_dump(mode="json"),
    )
    write_json_atomic(out / TRAINING_FILE, summary.model_dump(mode="json"))
    return summary


def train_sft(rows: Sequence[dict[str, Any]], out_dir: Path | str, cfg: CustomerSFTConfig | None = None, on_log: OnLog | None = None) -> TrainSummary:
    """LoRA SFT of the customer model on D_sim prompt/completion pairs (loss on the reply only)."""
    from datasets import Dataset
    from trl import SFTTrainer

    cfg = cfg or CustomerSFTConfig()
    started = time.monotonic()
    rows, heldout = split_holdout(rows, cfg.holdout, cfg.seed)
    base = base_weights(cfg.base)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = TrainLog(out, on_log)
    model, tokenizer = load_policy(base, cfg.bf16)
    dataset = Dataset.from_list([{"prompt": r[cfg.form], "completion": r["completion"]} for r in rows])
    # warmup_steps: a float in [0, 1) is a ratio of total steps (transformers 5)
    args = sft_args(out, cfg, gradient_accumulation_steps=cfg.grad_accum, warmup_steps=cfg.warmup_ratio, lr_scheduler_type="cosine", packing=False)
    trainer = train(SFTTrainer, model=model, args=args, dataset=dataset, tokenizer=tokenizer, lora=None if base.adapter else cfg.lora, log=log)
    return _summary("sft", trainer, out, base, len(rows), started, cfg, log, None, heldout)


def vllm_available() -> bool:
    """vLLM generation in GRPO needs the [vllm] extra and a CUDA GPU."""
    import importlib.util

    import torch

    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def train_grpo(
    rows: Sequence[dict[str, Any]],
    out_dir: Path | str,
    discriminator_dir: Path | str | None,
    cfg: CustomerGRPOConfig | None = None,
    on_log: OnLog | None = None,
) -> TrainSummary:
    """GRPO of the customer model with the pattern/format/semantic rewards on D_sim prompts.

    Each row needs `prompt`, `reference` (y*) and `context` (c). Without a discriminator the pattern
    weight must be 0.
    """
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from grouped_sim.discriminator.rewards import reward_functions

    cfg = cfg or CustomerGRPOConfig()
    started = time.monotonic()
    scorer = None
    if discriminator_dir is not None:
        from grouped_sim.discriminator.model import DiscriminatorScorer

        scorer = DiscriminatorScorer(discriminator_dir)
    elif cfg.rewards.w_pattern > 0:
        raise InputError("GRPO needs --discriminator for the pattern reward (or set rewards.w_pattern to 0)")
    funcs, weights = reward_functions(scorer, cfg.rewards)
    base = base_weights(cfg.base)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = TrainLog(out, on_log)
    model, tokenizer = load_policy(base, cfg.bf16)
    dataset = Dataset.from_list([{"prompt": r[cfg.form], "reference": r["reference"], "context": r["context"]} for r in rows])
    use_vllm = vllm_available() if cfg.use_vllm is None else cfg.use_vllm
    if use_vllm and not vllm_available():
        raise InputError("use_vllm needs the [vllm] extra and a CUDA GPU")
    args = trl_args(
        GRPOConfig,
        out,
        cfg,
        beta=cfg.beta,
        num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.num_generations * cfg.prompts_per_step,
        gradient_accumulation_steps=1,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        reward_weights=weights,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps (transformers 5)
        use_vllm=use_vllm,
        vllm_mode="colocate",
    )
    trainer = train(GRPOTrainer, model=model, args=args, dataset=dataset, tokenizer=tokenizer, lora=None if base.adapter else cfg.lora, log=log, reward_funcs=funcs)
    return _summary("grpo", trainer, out, base, len(rows), started, cfg, log, "reward")
