"""`grouped-sim train profile-sft`: fine-tune the profile model on D_gen (registers on `train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grouped_sim.cli.common import console, out
from grouped_sim.cli.train import train_app


@train_app.command("profile-sft")
def train_profile_sft_cmd(
    data: Annotated[Path, typer.Option("--data", help="D_gen.jsonl from `sop mine` (or its folder).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Adapter folder; use it as --model hf:BASE+OUT in `profiles generate`.")],
    base: Annotated[str, typer.Option("--base", help="Base model spec: hf:smollm2 (materialised from GGUF once, cached) or hf:/path/to/model.")] = "hf:smollm2",
    epochs: Annotated[float, typer.Option("--epochs", help="Passes over D_gen.")] = 3.0,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Stop after this many optimiser steps (-1: run the epochs); a few steps is a CPU smoke run.")] = -1,
    learning_rate: Annotated[float, typer.Option("--lr", help="Learning rate of the LoRA adapter.")] = 2e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 4,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """SFT with TRL's SFTTrainer and a LoRA adapter (peft) on (instruction → profile) pairs.

    On a CPU a few steps on the embedded model is a smoke run; on a GPU the same command trains a
    real model (bf16).
    """
    from grouped_sim.profiles.training import ProfileSFTConfig, train_profile_sft

    config = ProfileSFTConfig(base=base, epochs=epochs, max_steps=max_steps, learning_rate=learning_rate, batch_size=batch_size, seed=seed)
    console.print(f"training profile model: base {base}, data {data}")
    summary = train_profile_sft(data, out_dir, config)
    out.print(f"adapter saved to {out_dir} after {summary['steps']} steps in {summary['seconds']}s (loss {summary['first_loss']} -> {summary['last_loss']})")
    out.print(f"use it: grouped-sim profiles generate --model {summary['spec']} ...")
