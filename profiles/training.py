"""Training the profile model (paper §3.2.1, Appendix A): SFT with a LoRA adapter on D_gen.

D_gen records carry the instruction as a chat `prompt` and the profile JSON as the chat
`completion`, so TRL's SFTTrainer trains on the completion only, in the model's chat template.
The result is an adapter folder: `profiles generate --model hf:BASE+OUT` uses it. A GGUF base
(the embedded model) is first materialised once as a plain safetensors model (cached), because
peft and TRL need ordinary weights.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.errors import InputError
from grouped_sim.io import LineError, iter_jsonl, write_json_atomic


class ProfileSFTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: str = Field("hf:smollm2", description="hf: spec of the base model")
    epochs: float = Field(3.0, gt=0.0)
    max_steps: int = Field(-1, description="stop after this many steps (-1: run the epochs)")
    learning_rate: float = Field(2e-4, gt=0.0, description="a LoRA rate")
    batch_size: int = Field(4, ge=1)
    max_length: int = Field(768, ge=64)
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    seed: int = 0


def load_d_gen(path: Path | str) -> list[dict[str, Any]]:
    """D_gen.jsonl (or the folder holding it); each row needs chat-form `prompt` and `completion`."""
    path = Path(path)
    if path.is_dir():
        path = path / "D_gen.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: D_gen not found; build it with `grouped-sim sop mine --out DIR`")
    rows = []
    for line_no, row in iter_jsonl(path):
        for column in ("prompt", "completion"):
            value = row.get(column)
            if not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)):
                raise LineError(path, line_no, column, "expected a list of chat messages")
        rows.append({"prompt": row["prompt"], "completion": row["completion"]})
    if not rows:
        raise InputError(f"{path}: no training rows")
    return rows


def base_folder(spec: str) -> Path:
    from grouped_sim.models.materialize import materialize_plain
    from grouped_sim.models.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.backend != "hf" or parsed.adapter:
        raise InputError(f"--base {spec!r}: profile SFT needs a plain local model (hf:smollm2 or hf:/path/to/model)")
    return materialize_plain(parsed.model)


def train_profile_sft(data: Path | str, out_dir: Path | str, config: ProfileSFTConfig) -> dict[str, Any]:
    """Train a LoRA adapter on D_gen and save it with its tokenizer and a training.json summary."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    rows = load_d_gen(data)
    folder = base_folder(config.base)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=config.seed,
        completion_only_loss=True,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(),
        disable_tqdm=True,
    )
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer, peft_config=lora)
    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts over the progress bar
    started = time.time()
    trainer.train()
    trainer.model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    summary = {
        "stage": "profile-sft",
        "adapter_dir": str(out),
        "spec": f"{config.base}+{out}",
        "base_folder": str(folder),
        "examples": len(rows),
        "steps": trainer.state.global_step,
        "seconds": round(time.time() - started, 1),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "config": config.model_dump(),
    }
    write_json_atomic(out / "training.json", summary)
    return summary
