"""CPU smoke runs of customer SFT and GRPO on the embedded model: real TRL, real rewards, real loading.

A few optimisation steps on two short D_sim rows, LoRA on the top two layers only (cheap backward
pass). They check what a user relies on: finite losses, the three real rewards logged, an adapter
that `hf:smollm2+DIR` loads with its trained weights and that generates a customer reply.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grouped_sim.cli.app import app
from tests.cli_main import run_main


@pytest.fixture(scope="session")
def d_sim_dir(tmp_path_factory, corpus) -> Path:
    """D_sim of the sample corpus, the two shortest prompts first (keeps CPU steps cheap)."""
    from grouped_sim.io import write_jsonl
    from grouped_sim.sop_db.datasets import d_sim_records

    rows = sorted((r for d in corpus for r in d_sim_records(d)), key=lambda r: len(r["prompt"]))
    out = tmp_path_factory.mktemp("dsim")
    write_jsonl(out / "D_sim.jsonl", rows)
    return out


@pytest.fixture(scope="session")
def sft_dir(tmp_path_factory, d_sim_dir) -> Path:
    out = tmp_path_factory.mktemp("sft") / "adapter"
    result = CliRunner().invoke(
        app,
        ["train", "customer-sft", "--data", str(d_sim_dir), "--out", str(out), "--limit", "2", "--max-steps", "2", "--batch-size", "2", "--top-layers", "2", "--lr", "1e-3"],
    )
    assert result.exit_code == 0, result.output
    assert "--customer hf:smollm2+" in result.output
    return out


@pytest.fixture(scope="session")
def tiny_discriminator(tmp_path_factory, d_sim_dir) -> Path:
    """A MiniLM discriminator trained a few steps on real replies vs assistant-style ones written here."""
    from grouped_sim.training.customer import load_d_sim
    from grouped_sim.discriminator.model import DiscriminatorConfig, train_discriminator

    helpful = [
        "Thank you so much for calling! I'd be delighted to hear more about your wonderful offer.",
        "Absolutely, I would love to help. Could you please tell me more about the options available?",
        "That sounds fantastic! Please go ahead and explain everything in detail, I have plenty of time.",
        "Of course! I'm always happy to learn about new services. What are the main benefits?",
    ]
    rows = load_d_sim(d_sim_dir, limit=8)
    pairs = [{"dialogue_id": r["dialogue_id"], "context": r["context"], "positive": r["reference"], "negative": helpful[i % 4]} for i, r in enumerate(rows)]
    out = tmp_path_factory.mktemp("disc")
    train_discriminator(pairs, out, DiscriminatorConfig(epochs=1, batch_size=8, holdout=0.0, max_length=64, context_turns=1))
    return out


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "train_log.jsonl").read_text().splitlines()]


def test_sft_trains_a_small_adapter_with_finite_loss(sft_dir) -> None:
    logs = _log(sft_dir)
    losses = [e["loss"] for e in logs if "loss" in e]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    summary = json.loads((sft_dir / "training.json").read_text())
    assert summary["stage"] == "sft" and summary["steps"] == 2
    assert summary["config"]["lora"]["layers"] == [28, 29]
    weights = sft_dir / "adapter_model.safetensors"
    assert weights.is_file() and weights.stat().st_size < 4_000_000


def test_sft_adapter_loads_with_its_trained_weights_and_generates(sft_dir, d_sim_dir) -> None:
    import torch
    from safetensors.torch import load_file

    from grouped_sim.config import GenerationParams
    from grouped_sim.models import build_chat_model

    saved = {k: v for k, v in load_file(str(sft_dir / "adapter_model.safetensors")).items() if "lora_B" in k}
    assert saved and any(v.abs().sum() > 0 for v in saved.values()), "LoRA B is still zero: nothing was learned"
    model = build_chat_model(f"hf:smollm2+{sft_dir}", GenerationParams(max_new_tokens=8, temperature=0.0))
    params = dict(model.loaded.model.named_parameters())
    for key, value in saved.items():
        loaded_key = key.replace(".weight", ".default.weight")
        assert torch.equal(params[loaded_key].detach().cpu(), value.float()), key
    prompt = json.loads((d_sim_dir / "D_sim.jsonl").read_text().splitlines()[0])["prompt"]
    reply = model.generate_texts([prompt], stop=["\n"], seed=0)[0]
    assert isinstance(reply, str)
    base = build_chat_model("hf:smollm2", GenerationParams(max_new_tokens=8, temperature=0.0))
    assert model.loaded is not base.loaded  # the adapter is a different model, not the cached base


def test_grpo_runs_with_the_three_real_rewards_and_continues_the_sft_adapter(tmp_path, d_sim_dir, sft_dir, tiny_discriminator) -> None:
    out = tmp_path / "grpo"
    result = CliRunner().invoke(
        app,
        [
            "train", "customer-grpo", "--data", str(d_sim_dir), "--out", str(out), "--discriminator", str(tiny_discriminator),
            "--base", f"hf:smollm2+{sft_dir}", "--limit", "2", "--max-steps", "1", "--num-generations", "2",
            "--prompts-per-step", "1", "--max-completion-length", "8", "--no-vllm",
        ],
    )
    assert result.exit_code == 0, result.output
    logs = _log(out)
    step = next(e for e in logs if "reward" in e)
    for name in ("pattern_reward", "format_reward", "semantic_reward"):
        key = f"rewards/{name}/mean"
        assert key in step and math.isfinite(step[key]), f"{key} missing from {sorted(step)}"
    assert 0.0 <= step["rewards/pattern_reward/mean"] <= 1.0
    assert math.isfinite(step["loss"])
    summary = json.loads((out / "training.json").read_text())
    assert summary["stage"] == "grpo" and summary["config"]["beta"] == 0.04
    # it kept training the SFT adapter (same LoRA shape), so the result is again an hf:smollm2+DIR spec
    assert json.loads((out / "adapter_config.json").read_text())["layers_to_transform"] == [28, 29]
    assert summary["spec"].startswith("hf:smollm2+")


def test_holdout_keeps_whole_dialogues_out_of_training(corpus) -> None:
    from grouped_sim.training.customer import split_holdout
    from grouped_sim.discriminator.model import heldout_dialogues
    from grouped_sim.sop_db.datasets import d_sim_records

    rows = [r for d in corpus for r in d_sim_records(d)]
    kept, held = split_holdout(rows, 0.1, seed=0)
    assert held == heldout_dialogues([r["dialogue_id"] for r in rows], 0.1, 0)  # the benchmark's split
    assert len(held) == round(0.1 * len(corpus))
    assert not {r["dialogue_id"] for r in kept} & held
    assert len(kept) + sum(r["dialogue_id"] in held for r in rows) == len(rows)
    assert split_holdout(rows, 0.0, seed=0) == (rows, set())


def test_grpo_without_a_discriminator_is_a_clear_error(tmp_path, d_sim_dir) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "from grouped_sim.cli.app import main; main()", "train", "customer-grpo", "--data", str(d_sim_dir), "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "--discriminator" in " ".join((proc.stdout + proc.stderr).split())


def test_bad_d_sim_line_names_file_line_and_field(tmp_path) -> None:
    from grouped_sim.training.customer import load_d_sim
    from grouped_sim.errors import InputError

    (tmp_path / "D_sim.jsonl").write_text('{"prompt": "Customer:", "completion": " no"}\n{"prompt": "x"}\n')
    with pytest.raises(InputError, match=r"D_sim.jsonl:2: field 'completion'"):
        load_d_sim(tmp_path)


def test_a_customer_trained_for_llama_cpp_learns_the_text_a_llama_cpp_customer_reads(corpus, tmp_path, monkeypatch, capsys) -> None:
    """A llama.cpp customer reads the prefix-caching script, not the transcript transformers reads:
    D_sim's script_prompt is that text for the same call so far, which `--serve-on llamacpp` trains
    on (SFT and GRPO); a D_sim mined before the column existed is refused with the command that
    remakes it."""
    from grouped_sim.graphs.customer import CustomerPrompt, render
    from grouped_sim.models import build_chat_model
    from grouped_sim.sop_db.datasets import d_sim_records, profile_of

    dialogue = corpus[0]
    record = list(d_sim_records(dialogue))[1]
    inputs = CustomerPrompt(profile=profile_of(dialogue), domain=dialogue.domain, history=dialogue.turns[: record["turn_index"]])
    llama, transformers = build_chat_model("llamacpp:smollm2"), build_chat_model("hf:smollm2")
    assert render(llama, inputs)[0][0].content == record["script_prompt"]
    assert render(transformers, inputs)[0][0].content == record["prompt"]

    (tmp_path / "D_sim.jsonl").write_text(json.dumps({"prompt": record["prompt"], "completion": record["completion"]}) + "\n")
    code, output = run_main(["train", "customer-sft", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--serve-on", "llamacpp"], monkeypatch, capsys)
    flat = " ".join(output.split())
    assert code == 2 and "D_sim.jsonl:1: field 'script_prompt'" in flat and "grouped-sim sop mine" in flat
    assert not (tmp_path / "out").exists()
    code, output = run_main(["train", "customer-grpo", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--serve-on", "llamacpp", "--w-pattern", "0"], monkeypatch, capsys)
    assert code == 2 and "field 'script_prompt'" in " ".join(output.split()) and not (tmp_path / "out").exists()


def test_bf16_on_a_cpu_loads_and_trains_in_bfloat16(tmp_path) -> None:
    """`--bf16` halves a CPU step of the 1.5B on AMX cores: the weights and TRL's arithmetic both
    switch, and a run without it keeps fp32 arithmetic (the fp32 weights: the smoke runs above)."""
    import torch
    from trl import SFTConfig

    from grouped_sim.models.finetune import SFTParams, base_weights, load_policy, trl_args

    base = base_weights("hf:smollm2")
    assert load_policy(base, bf16=True)[0].dtype == torch.bfloat16
    args = trl_args(SFTConfig, tmp_path, SFTParams(bf16=True))
    assert args.bf16 and args.use_cpu
    assert not trl_args(SFTConfig, tmp_path, SFTParams()).bf16
