"""`grouped-sim train ...`: fine-tune the simulator's models.

`train_app` is the command group; each model's training command lives in its own module and
registers itself on this group (`customer-sft`, `customer-grpo` here; `profile-sft` in
`train_profile.py`). Heavy imports (torch, TRL, peft) happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from grouped_sim.cli.common import out, progress

train_app = typer.Typer(
    help="Fine-tune the simulator's models (LoRA adapters over a Hugging Face base): the customer model (SFT, GRPO) and the profile generator.",
    no_args_is_help=True,
)


def _progress_logger(bar, task, reward: bool):  # type: ignore[no-untyped-def]
    """A trainer log hook that moves the bar and shows the latest loss (and reward)."""

    def on_log(step: int, total: int, logs: dict) -> None:
        parts = [f"loss {logs['loss']:.3f}"] if "loss" in logs else []
        if reward and "reward" in logs:
            parts.append(f"reward {logs['reward']:.3f}")
        bar.update(task, completed=step, total=total, description="training" + (f" ({', '.join(parts)})" if parts else ""))

    return on_log


ServeOn = Annotated[
    str,
    typer.Option(
        "--serve-on",
        help="Where the trained customer will run, which decides the prompt text it is trained on: 'hf' (transformers, "
        "`--customer hf:BASE+OUT`: the transcript) or 'llamacpp' (after `train export-lora`: the prefix-caching script a llama.cpp customer reads).",
    ),
]
PROMPT_COLUMNS = {"hf": "prompt", "llamacpp": "script_prompt"}


def prompt_column(serve_on: str) -> Any:
    """The D_sim column a customer that will run on `serve_on` is trained on."""
    if serve_on not in PROMPT_COLUMNS:
        raise typer.BadParameter(f"{serve_on!r}: expected hf or llamacpp", param_hint="--serve-on")
    return PROMPT_COLUMNS[serve_on]


@train_app.command("customer-sft")
def customer_sft(
    data: Annotated[Path, typer.Option("--data", help="D_sim.jsonl (or its folder), from `sop mine`.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the LoRA adapter, training.json and train_log.jsonl.")],
    base: Annotated[str, typer.Option("--base", help="hf: spec of the base model; hf:BASE+ADAPTER keeps training that adapter.")] = "hf:smollm2",
    epochs: Annotated[float, typer.Option("--epochs", min=0.01, help="Passes over D_sim (paper: 2).")] = 2.0,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Stop after N optimisation steps (-1: run the epochs).")] = -1,
    learning_rate: Annotated[float, typer.Option("--lr", help="Learning rate of the LoRA weights.")] = 2e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1, help="LoRA rank (8 keeps a 135M adapter under 4 MB).")] = 8,
    top_layers: Annotated[Optional[int], typer.Option("--top-layers", min=1, help="Adapt only the top N transformer layers (cheaper on a CPU).")] = None,
    lora_modules: Annotated[str, typer.Option("--lora-modules", help="Comma-separated module names LoRA adapts (add gate_proj,up_proj,down_proj for the MLPs).")] = "q_proj,k_proj,v_proj,o_proj",
    holdout: Annotated[float, typer.Option("--holdout", min=0.0, max=0.9, help="Share of dialogues kept out of training (listed in training.json) for a fair evaluation.")] = 0.0,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Use only the first N rows (smoke runs).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of training and of the held-out split.")] = 0,
    serve_on: ServeOn = "hf",
    bf16: Annotated[bool, typer.Option("--bf16", help="Train in bfloat16 on a CPU too: about twice as fast for the 1.5B where the CPU has AMX; fp32 otherwise (a GPU always uses bf16).")] = False,
) -> None:
    """Supervised fine-tuning of the customer model on D_sim (LoRA, TRL SFTTrainer).

    Trains on the text the customer will read where it runs (--serve-on): the prompt ends in
    "Customer:", the loss is on the real reply only. Prints the spec that loads the result, e.g.
    `simulate --customer hf:smollm2+OUT`.
    """
    from grouped_sim.models.finetune import LoraParams, num_layers
    from grouped_sim.training.customer import CustomerSFTConfig, load_d_sim, train_sft

    form = prompt_column(serve_on)
    rows = load_d_sim(data, columns=(form, "completion"), limit=limit)
    layers = None
    if top_layers:
        total_layers = num_layers(base)
        layers = list(range(max(0, total_layers - top_layers), total_layers))
    modules = [m.strip() for m in lora_modules.split(",") if m.strip()]
    if not modules:
        raise typer.BadParameter("name at least one module", param_hint="--lora-modules")
    cfg = CustomerSFTConfig(
        base=base,
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        holdout=holdout,
        seed=seed,
        form=form,
        bf16=bf16,
        lora=LoraParams(r=lora_r, alpha=2 * lora_r, layers=layers, target_modules=modules),
    )
    with progress() as bar:
        task = bar.add_task("training", total=None)
        summary = train_sft(rows, out_dir, cfg, on_log=_progress_logger(bar, task, reward=False))
    out.print(f"customer SFT: {summary.steps} steps on {summary.examples} examples in {summary.seconds:.0f}s, loss {summary.first_loss} -> {summary.last_loss}")
    if summary.heldout_dialogues:
        out.print(f"held out {len(summary.heldout_dialogues)} dialogues (listed in {out_dir / 'training.json'})")
    out.print(f"use it with: --customer {summary.spec}")


@train_app.command("customer-grpo")
def customer_grpo(
    data: Annotated[Path, typer.Option("--data", help="D_sim.jsonl (or its folder): prompt, reference and context columns.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the LoRA adapter, training.json and train_log.jsonl (reward curve).")],
    discriminator: Annotated[Optional[Path], typer.Option("--discriminator", help="Folder from `discriminator train` (pattern reward). Required unless --w-pattern 0.")] = None,
    base: Annotated[str, typer.Option("--base", help="hf: spec; hf:smollm2+SFT_DIR starts from the SFT adapter and keeps training it.")] = "hf:smollm2",
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Optimisation steps.")] = 200,
    learning_rate: Annotated[float, typer.Option("--lr")] = 2e-5,
    beta: Annotated[float, typer.Option("--beta", min=0.0, help="KL coefficient (paper: 0.04).")] = 0.04,
    num_generations: Annotated[int, typer.Option("--num-generations", min=2, help="Group size G.")] = 4,
    prompts_per_step: Annotated[int, typer.Option("--prompts-per-step", min=1)] = 2,
    max_completion_length: Annotated[int, typer.Option("--max-completion-length", min=4, help="Tokens per sampled reply.")] = 24,
    w_pattern: Annotated[float, typer.Option("--w-pattern", min=0.0, help="Weight of the discriminator reward.")] = 1.0,
    w_format: Annotated[float, typer.Option("--w-format", min=0.0, help="Weight of the length reward.")] = 1.0,
    w_semantic: Annotated[float, typer.Option("--w-semantic", min=0.0, help="Weight of the semantic reward.")] = 1.0,
    use_vllm: Annotated[Optional[bool], typer.Option("--vllm/--no-vllm", help="vLLM generation (default: when installed and a GPU is present).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Use only the first N rows (smoke runs).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    serve_on: ServeOn = "hf",
) -> None:
    """GRPO of the customer model with the pattern, format and semantic rewards (TRL GRPOTrainer, LoRA).

    Each reward's curve is logged to train_log.jsonl as training runs.
    """
    from grouped_sim.training.customer import CustomerGRPOConfig, load_d_sim, train_grpo
    from grouped_sim.discriminator.rewards import RewardConfig

    form = prompt_column(serve_on)
    rows = load_d_sim(data, columns=(form, "reference", "context"), limit=limit)
    cfg = CustomerGRPOConfig(
        base=base,
        max_steps=max_steps,
        learning_rate=learning_rate,
        beta=beta,
        num_generations=num_generations,
        prompts_per_step=prompts_per_step,
        max_completion_length=max_completion_length,
        rewards=RewardConfig(w_pattern=w_pattern, w_format=w_format, w_semantic=w_semantic),
        use_vllm=use_vllm,
        seed=seed,
        form=form,
    )
    with progress() as bar:
        task = bar.add_task("training", total=max_steps)
        summary = train_grpo(rows, out_dir, discriminator, cfg, on_log=_progress_logger(bar, task, reward=True))
    out.print(f"customer GRPO: {summary.steps} steps in {summary.seconds:.0f}s, reward {summary.reward_first} -> {summary.reward_last}")
    out.print(f"use it with: --customer {summary.spec}")


@train_app.command("export-lora")
def export_lora(
    adapter: Annotated[str, typer.Option("--adapter", help="PEFT LoRA folder (adapter_config.json + adapter_model.safetensors), e.g. from `train customer-sft`; or customer-sft, the shipped one.")],
    out_file: Annotated[Path, typer.Option("--out", help="The GGUF LoRA adapter to write (written beside, then moved into place).")],
    base: Annotated[Optional[str], typer.Option("--base", help="The GGUF base it will run on: llamacpp:smollm2, llamacpp:/path/model.gguf, or hf:MODEL with GGUF weights. Default: the base in the adapter's training.json.")] = None,
) -> None:
    """Write a trained LoRA adapter as a GGUF LoRA adapter, so llama.cpp runs it (`llamacpp:MODEL+OUT`).

    Training writes PEFT folders; llama.cpp reads only GGUF adapters. The base's GGUF is read to
    name, order and shape-check every tensor, so an adapter for another model is refused here.
    """
    from grouped_sim.errors import InputError
    from grouped_sim.models.lora_gguf import adapter_folder, export_lora, llamacpp_spec

    if out_file.is_dir():
        raise InputError(f"--out {out_file}: a folder; name the .gguf file to write")
    summary = export_lora(adapter_folder(adapter), out_file, base)
    layers = f"layers {summary.layers[0]}-{summary.layers[-1]}" if summary.layers else "no layers"
    out.print(
        f"wrote {summary.out} ({summary.bytes / 1e6:.1f} MB): {summary.pairs} LoRA pairs, rank {summary.rank}, alpha {summary.alpha:g}, "
        f"{layers}, {', '.join(summary.modules)}; base {summary.base.name} ({summary.architecture})"
    )
    out.print(f"use it with: {llamacpp_spec(summary.base, summary.out)}")
