"""Training the customer model: SFT on D_sim, then GRPO with the multi-level reward (paper §3.2.2).

Both stages train a LoRA adapter (peft) over a plain copy of the base model, in the TRANSCRIPT form
the simulator uses for local models: the prompt is the call so far ending in "Customer:" and the
completion is the real reply (completion-only loss). The result is a folder that the model spec
`hf:BASE+ADAPTER_DIR` loads, so `simulate --customer hf:smollm2+DIR` runs the trained customer.

Defaults follow the paper's Table 6 (user simulator: 2 epochs, warmup 0.1, KL coefficient 0.04)
scaled to a 135M model with LoRA: LoRA needs a larger learning rate than the 5e-6 of a full
fine-tune of a 32B model, and a CPU smoke run needs short generations and small groups.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.discriminator.rewards import RewardConfig
from grouped_sim.errors import InputError
from grouped_sim.io import JsonlAppender, LineError, iter_jsonl, write_json_atomic

TRAINING_FILE = "training.json"
LOG_FILE = "train_log.jsonl"
REQUIRED_COLUMNS = ("prompt", "completion")


class LoraParams(BaseModel):
    """LoRA shape. r=8 on the attention projections keeps a SmolLM2-135M adapter under 4 MB."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(8, ge=1, le=256)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    layers: list[int] | None = Field(None, description="adapt only these layer indices (None: all); top layers only makes CPU backward passes cheaper")


class CustomerSFTConfig(BaseModel):
    """Supervised fine-tuning on D_sim (UserLM-style next-customer-turn prediction)."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field("hf:smollm2", description="hf: spec of the base model (hf:BASE+ADAPTER continues that adapter)")
    epochs: float = Field(2.0, gt=0.0, description="Table 6: 2")
    max_steps: int = Field(-1, description="stop after this many steps (-1: run the epochs)")
    learning_rate: float = Field(2e-4, gt=0.0, description="LoRA rate; Table 6's 5e-6 is for full fine-tuning of 32B")
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Table 6: 0.1")
    max_length: int = Field(1024, ge=32, description="prompt + completion tokens; longer examples are cut")
    lora: LoraParams = LoraParams()
    holdout: float = Field(0.0, ge=0.0, lt=1.0, description="share of DIALOGUES left out of training (the discriminator's split rule), so a later evaluation sees unseen calls")
    seed: int = 0
    logging_steps: int = Field(1, ge=1, description="log (and append to train_log.jsonl) every N steps")


class CustomerGRPOConfig(BaseModel):
    """GRPO with the pattern, format and semantic rewards (Appendix C)."""

    model_config = ConfigDict(extra="forbid")

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
    seed: int = 0
    logging_steps: int = Field(1, ge=1)


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
                raise LineError(path, line_no, column, "missing or not a string")
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


def base_model(spec: str) -> tuple[Path, str | None, str]:
    """(plain model folder, adapter to continue or None, base part of the spec) for an hf: spec."""
    from grouped_sim.models.materialize import materialize_plain
    from grouped_sim.models.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.backend != "hf":
        raise InputError(f"--base {spec!r}: training needs a local model (hf:smollm2 or hf:/path/to/model)")
    if parsed.adapter and not (Path(parsed.adapter).expanduser() / "adapter_config.json").is_file():
        raise InputError(f"--base {spec!r}: {parsed.adapter} is not a LoRA adapter folder (no adapter_config.json)")
    return materialize_plain(parsed.model, log=False), parsed.adapter, parsed.model


def _lora_config(params: LoraParams) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=params.r, lora_alpha=params.alpha, lora_dropout=params.dropout, target_modules=list(params.target_modules), layers_to_transform=params.layers, task_type="CAUSAL_LM")


def _load_policy(folder: Path, adapter: str | None) -> tuple[Any, Any]:
    """Base model (fp32 on CPU, bf16 on GPU) and tokenizer; with `adapter`, that adapter made trainable."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(Path(adapter).expanduser()), is_trainable=True)
    return model, tokenizer


class _LogCallback:
    """Appends every trainer log to train_log.jsonl as it happens and feeds the progress bar."""

    def __init__(self, path: Path, on_log: Callable[[int, int, dict[str, float]], None] | None) -> None:
        from transformers import TrainerCallback

        outer = self
        self.path = path
        self.on_log = on_log
        self.logs: list[dict[str, Any]] = []

        class _Callback(TrainerCallback):
            def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
                if not logs:
                    return
                entry = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
                outer.logs.append(entry)
                with JsonlAppender(outer.path) as appender:
                    appender.write_line(json.dumps(entry))
                if outer.on_log:
                    outer.on_log(state.global_step, state.max_steps, entry)

        self.callback = _Callback()


def _first_last(logs: list[dict[str, Any]], key: str) -> tuple[float | None, float | None]:
    values = [e[key] for e in logs if key in e and isinstance(e[key], (int, float)) and math.isfinite(e[key])]
    return (values[0], values[-1]) if values else (None, None)


def _finish(
    stage: str,
    trainer: Any,
    out: Path,
    base_name: str,
    folder: Path,
    rows: int,
    started: float,
    cfg: BaseModel,
    logs: list[dict[str, Any]],
    reward_key: str | None,
    heldout: Sequence[str] = (),
) -> TrainSummary:
    trainer.save_model(str(out))
    spec = f"hf:{base_name}+{out.resolve()}"
    first_loss, last_loss = _first_last(logs, "loss")
    r_first, r_last = _first_last(logs, reward_key) if reward_key else (None, None)
    summary = TrainSummary(
        stage=stage,
        adapter_dir=str(out),
        spec=spec,
        base=base_name,
        base_folder=str(folder),
        examples=rows,
        steps=int(trainer.state.global_step),
        seconds=round(time.monotonic() - started, 1),
        first_loss=first_loss,
        last_loss=last_loss,
        reward_first=r_first,
        reward_last=r_last,
        heldout_dialogues=sorted(heldout),
        config=cfg.model_dump(mode="json"),
    )
    write_json_atomic(out / TRAINING_FILE, summary.model_dump(mode="json"))
    return summary


def train_sft(rows: Sequence[dict[str, Any]], out_dir: Path | str, cfg: CustomerSFTConfig | None = None, on_log: Callable[[int, int, dict[str, float]], None] | None = None) -> TrainSummary:
    """LoRA SFT of the customer model on D_sim prompt/completion pairs (loss on the reply only)."""
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    cfg = cfg or CustomerSFTConfig()
    started = time.monotonic()
    rows, heldout = split_holdout(rows, cfg.holdout, cfg.seed)
    folder, adapter, base_name = base_model(cfg.base)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / LOG_FILE).unlink(missing_ok=True)
    model, tokenizer = _load_policy(folder, adapter)
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    gpu = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps (transformers 5)
        lr_scheduler_type="cosine",
        max_length=cfg.max_length,
        completion_only_loss=True,
        packing=False,
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        use_cpu=not gpu,
        bf16=gpu,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    log = _LogCallback(out / LOG_FILE, on_log)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=None if adapter else _lora_config(cfg.lora),
        callbacks=[log.callback],
    )
    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts over our progress bar
    trainer.train()
    return _finish("sft", trainer, out, base_name, folder, len(rows), started, cfg, log.logs, None, heldout)


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
    on_log: Callable[[int, int, dict[str, float]], None] | None = None,
) -> TrainSummary:
    """GRPO of the customer model with the pattern/format/semantic rewards on D_sim prompts.

    Each row needs `prompt`, `reference` (y*) and `context` (c). Without a discriminator the pattern
    weight must be 0.
    """
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback
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
    folder, adapter, base_name = base_model(cfg.base)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / LOG_FILE).unlink(missing_ok=True)
    model, tokenizer = _load_policy(folder, adapter)
    dataset = Dataset.from_list([{"prompt": r["prompt"], "reference": r["reference"], "context": r["context"]} for r in rows])
    gpu = torch.cuda.is_available()
    use_vllm = vllm_available() if cfg.use_vllm is None else cfg.use_vllm
    if use_vllm and not vllm_available():
        raise InputError("use_vllm needs the [vllm] extra and a CUDA GPU")
    args = GRPOConfig(
        output_dir=str(out / "checkpoints"),
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        beta=cfg.beta,
        num_generations=cfg.num_generations,
        per_device_train_batch_size=cfg.num_generations * cfg.prompts_per_step,
        gradient_accumulation_steps=1,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        reward_weights=weights,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps (transformers 5)
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        use_cpu=not gpu,
        bf16=gpu,
        use_vllm=use_vllm,
        vllm_mode="colocate",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    log = _LogCallback(out / LOG_FILE, on_log)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=None if adapter else _lora_config(cfg.lora),
        callbacks=[log.callback],
    )
    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts over our progress bar
    trainer.train()
    return _finish("grpo", trainer, out, base_name, folder, len(rows), started, cfg, log.logs, "reward")


def num_layers(spec: str) -> int:
    """Transformer layers of the base model (for 'adapt only the top N layers')."""
    from transformers import AutoConfig

    folder, _adapter, _name = base_model(spec)
    return int(AutoConfig.from_pretrained(folder).num_hidden_layers)
