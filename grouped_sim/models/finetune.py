"""The trainer setup every fine-tuning run shares: customer SFT, customer GRPO and profile SFT.

Each run trains a LoRA adapter (peft) with a TRL trainer over a plain copy of a local base model
(a GGUF base, such as the embedded model, is materialised once as safetensors, because peft and
TRL need ordinary weights). What they share is here, once:

- `base_weights(spec)`: the plain base folder (and an adapter to keep training) of an hf: spec;
- `LoraParams` and `lora_config`: the adapter's shape;
- `load_policy`: the base model (fp32 on CPU, bf16 on a GPU) and its tokenizer with a pad token;
- `trl_args`: the TRL config fields every run sets the same way (no checkpoints, no reporting,
  CPU or bf16 GPU, quiet); `sft_args` adds what both SFT stages share;
- `TrainLog`: a callback appending every trainer log to `train_log.jsonl` as it happens;
- `train`: build the trainer, drop its log printer, train; `finish`: save the adapter and say
  how it went.

What differs stays with each stage: its data, its learning schedule, its rewards, its summary.
Heavy imports (torch, transformers, peft, TRL) happen inside the functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.errors import InputError
from grouped_sim.io import JsonlAppender

TRAINING_FILE = "training.json"
LOG_FILE = "train_log.jsonl"

OnLog = Callable[[int, int, dict[str, float]], None]


class LoraParams(BaseModel):
    """LoRA shape. r=8 on the attention projections keeps a SmolLM2-135M adapter under 4 MB."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(8, ge=1, le=256)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    layers: list[int] | None = Field(None, description="adapt only these layer indices (None: all); top layers only makes CPU backward passes cheaper")


class RunParams(BaseModel):
    """What every fine-tuning run is configured with; each stage's config extends it."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field("hf:smollm2", description="hf: spec of the base model")
    max_steps: int = Field(-1, description="stop after this many steps (-1: run the epochs)")
    learning_rate: float = Field(2e-4, gt=0.0, description="a LoRA rate")
    seed: int = 0
    logging_steps: int = Field(1, ge=1, description="log (and append to train_log.jsonl) every N steps")
    bf16: bool = Field(
        False,
        description="bfloat16 weights and arithmetic on a CPU too (a GPU always trains in bf16): twice as fast for the 1.5B on a CPU "
        "with AMX (131 s against about 250 s a step of 8 calls); elsewhere it may be slower than fp32",
    )


class SFTParams(RunParams):
    """What both SFT stages (customer, profile) are configured with."""

    epochs: float = Field(2.0, gt=0.0)
    batch_size: int = Field(8, ge=1)
    max_length: int = Field(1024, ge=32, description="prompt + completion tokens; longer examples are cut")


@dataclass(frozen=True)
class BaseWeights:
    """Where training starts: a plain model folder, an adapter to keep training (or None), the spec's model part."""

    folder: Path
    adapter: str | None
    name: str


def base_weights(spec: str, *, allow_adapter: bool = True, log: bool = False) -> BaseWeights:
    """The plain base of an hf: spec, materialised once; `hf:BASE+ADAPTER` continues ADAPTER when allowed."""
    from grouped_sim.models.materialize import materialize_plain
    from grouped_sim.models.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.backend != "hf" or (parsed.adapter and not allow_adapter):
        plain = "a plain local model" if not allow_adapter else "a local model"
        raise InputError(f"--base {spec!r}: training needs {plain} (hf:smollm2 or hf:/path/to/model)")
    if parsed.adapter and not (Path(parsed.adapter).expanduser() / "adapter_config.json").is_file():
        raise InputError(f"--base {spec!r}: {parsed.adapter} is not a LoRA adapter folder (no adapter_config.json)")
    return BaseWeights(folder=materialize_plain(parsed.model, log=log), adapter=parsed.adapter, name=parsed.model)


def num_layers(spec: str) -> int:
    """Transformer layers of the base model (for 'adapt only the top N layers')."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(base_weights(spec).folder).num_hidden_layers)


def lora_config(params: LoraParams) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=params.r, lora_alpha=params.alpha, lora_dropout=params.dropout, target_modules=list(params.target_modules), layers_to_transform=params.layers, task_type="CAUSAL_LM")


def gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def load_policy(base: BaseWeights, bf16: bool = False) -> tuple[Any, Any]:
    """Base model (fp32 on CPU unless `bf16`, bf16 on GPU) and tokenizer; with an adapter, that adapter made trainable."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(base.folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base.folder, dtype=torch.bfloat16 if bf16 or gpu() else torch.float32)
    if base.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(Path(base.adapter).expanduser()), is_trainable=True)
    return model, tokenizer


def trl_args(config_cls: type, out: Path, params: RunParams, **stage: Any) -> Any:
    """A TRL config (SFTConfig, GRPOConfig): what every run sets alike, the run's params, the stage's own fields."""
    on_gpu = gpu()
    common = {"output_dir": str(out / "checkpoints"), "save_strategy": "no", "report_to": [], "disable_tqdm": True, "dataloader_num_workers": 0}
    device = {"use_cpu": not on_gpu, "bf16": on_gpu or params.bf16}
    run = {"max_steps": params.max_steps, "learning_rate": params.learning_rate, "seed": params.seed, "logging_steps": params.logging_steps}
    return config_cls(**common, **device, **run, **stage)


def sft_args(out: Path, params: SFTParams, **stage: Any) -> Any:
    """TRL SFTConfig for prompt/completion data, the loss on the completion only."""
    from trl import SFTConfig

    sft = {"num_train_epochs": params.epochs, "per_device_train_batch_size": params.batch_size, "max_length": params.max_length, "completion_only_loss": True}
    return trl_args(SFTConfig, out, params, **sft, **stage)


class TrainLog:
    """Appends every trainer log to OUT/train_log.jsonl as it happens (a fresh file per run) and feeds `on_log`."""

    def __init__(self, out: Path, on_log: OnLog | None = None) -> None:
        from transformers import TrainerCallback

        outer = self
        self.path = out / LOG_FILE
        self.path.unlink(missing_ok=True)
        self.on_log = on_log
        self.logs: list[dict[str, Any]] = []

        class _Callback(TrainerCallback):
            def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
                if not logs:
                    return
                entry = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
                outer.logs.append(entry)
                with JsonlAppender(outer.path) as appender:
                    appender.write_record(entry)
                if outer.on_log:
                    outer.on_log(state.global_step, state.max_steps, entry)

        self.callback = _Callback()

    def first_last(self, key: str) -> tuple[float | None, float | None]:
        """The first and last finite value of `key` in the logs (loss, reward), or (None, None)."""
        values = [e[key] for e in self.logs if key in e and isinstance(e[key], (int, float)) and math.isfinite(e[key])]
        return (values[0], values[-1]) if values else (None, None)


def train(trainer_cls: type, *, model: Any, args: Any, dataset: Any, tokenizer: Any, lora: LoraParams | None, log: TrainLog, **stage: Any) -> Any:
    """Build the TRL trainer (a new LoRA adapter unless `lora` is None: the model already has one) and train it."""
    from transformers import PrinterCallback

    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(lora) if lora is not None else None,
        callbacks=[log.callback],
        **stage,
    )
    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts over our progress bar
    trainer.train()
    return trainer


def finish(trainer: Any, out: Path, log: TrainLog, started: float) -> dict[str, Any]:
    """Save the adapter (and tokenizer) into `out`; steps, seconds and first/last loss of the run."""
    trainer.save_model(str(out))
    first_loss, last_loss = log.first_last("loss")
    return {"steps": int(trainer.state.global_step), "seconds": round(time.monotonic() - started, 1), "first_loss": first_loss, "last_loss": last_loss}
