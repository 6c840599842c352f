"""Training the profile model (paper §3.2.1, Appendix A): SFT with a LoRA adapter on D_gen.

D_gen records carry the instruction as a chat `prompt` and the profile JSON as the chat
`completion`, so TRL's SFTTrainer trains on the completion only, in the model's chat template.
The result is an adapter folder for `profiles generate --model hf:BASE+OUT`. Its training.json
records that it learnt the D_gen instruction (`"prompt": "d_gen_instruction"` and the profile
prompt file's version), so the generator serves it that instruction (`trained_prompt`). The
trainer setup (base materialisation, LoRA, tokenizer, TRL arguments, train_log.jsonl) is the one
every fine-tuning run shares, `grouped_sim.models.finetune`; the D_gen loading is this module's own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import Field

from grouped_sim.errors import InputError
from grouped_sim.io import LineError, iter_jsonl, read_json, write_json_atomic
from grouped_sim.models.finetune import TRAINING_FILE, LoraParams, SFTParams, TrainLog, base_weights, finish, load_policy, sft_args, train
from grouped_sim.profile_prompt import D_GEN_PROMPT
from grouped_sim.prompts import prompt_version


class ProfileSFTConfig(SFTParams):
    epochs: float = Field(3.0, gt=0.0)
    batch_size: int = Field(4, ge=1)
    max_length: int = Field(768, ge=64)
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)


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


def train_profile_sft(data: Path | str, out_dir: Path | str, config: ProfileSFTConfig) -> dict[str, Any]:
    """Train a LoRA adapter on D_gen; save it with its tokenizer, train_log.jsonl and a training.json summary."""
    rows = load_d_gen(data)  # bad input fails before the training stack even imports
    from datasets import Dataset
    from trl import SFTTrainer

    base = base_weights(config.base, allow_adapter=False, log=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log = TrainLog(out)
    model, tokenizer = load_policy(base, config.bf16)
    lora = LoraParams(r=config.lora_r, alpha=config.lora_alpha)
    trainer = train(SFTTrainer, model=model, args=sft_args(out, config), dataset=Dataset.from_list(rows), tokenizer=tokenizer, lora=lora, log=log)
    done = finish(trainer, out, log, started)
    summary = {
        "stage": "profile-sft",
        "adapter_dir": str(out),
        "spec": f"{config.base}+{out}",
        "base_folder": str(base.folder),
        "examples": len(rows),
        **done,
        # What the adapter learnt to answer: the generator serves it exactly this prompt (trained_prompt).
        "prompt": D_GEN_PROMPT,
        "prompt_version": prompt_version("profile"),
        "config": config.model_dump(),
    }
    write_json_atomic(out / TRAINING_FILE, summary)
    return summary


def trained_prompt(adapter_dir: Path | str) -> dict[str, Any] | None:
    """{"prompt", "prompt_version"} when `adapter_dir` holds a profile-sft adapter trained on D_gen, else None."""
    path = Path(adapter_dir).expanduser() / TRAINING_FILE
    if not path.is_file():
        return None
    info = read_json(path, "training summary")
    if not isinstance(info, dict) or info.get("prompt") != D_GEN_PROMPT:
        return None
    return {"prompt": D_GEN_PROMPT, "prompt_version": info.get("prompt_version")}
