"""`train profile-sft`: a CPU smoke run of TRL SFT + LoRA on D_gen, and the adapter loads as a spec."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grouped_sim.cli.app import app
from grouped_sim.schemas import Dialogue
from grouped_sim.sop_db.datasets import write_datasets

pytestmark = pytest.mark.slow


def test_profile_sft_smoke_run_saves_a_loadable_adapter(corpus: list[Dialogue], tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_datasets([d for d in corpus if d.profile is not None][:4], data)
    adapter = tmp_path / "adapter"
    result = CliRunner().invoke(app, ["train", "profile-sft", "--data", str(data / "D_gen.jsonl"), "--out", str(adapter), "--max-steps", "2", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((adapter / "training.json").read_text())
    assert summary["steps"] == 2 and summary["examples"] == 4
    assert math.isfinite(summary["first_loss"]) and math.isfinite(summary["last_loss"])
    assert (adapter / "adapter_config.json").is_file()
    # the same log callback as customer training: one line per logged step
    logged = [json.loads(line) for line in (adapter / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logged if "loss" in e] == [1, 2] and logged[0]["loss"] == summary["first_loss"]
    # it records the prompt it learnt, so the generator can serve exactly that one
    from grouped_sim.prompts import prompt_version

    assert (summary["prompt"], summary["prompt_version"]) == ("d_gen_instruction", prompt_version("profile"))

    from grouped_sim.config import GenerationParams
    from grouped_sim.models import build_chat_model

    model = build_chat_model(f"hf:smollm2+{adapter}", GenerationParams(max_new_tokens=4, temperature=0.0))
    assert isinstance(model.invoke("Write one customer profile.").content, str)

    out = tmp_path / "profiles.jsonl"
    result = CliRunner().invoke(app, ["profiles", "generate", "--model", f"hf:smollm2+{adapter}", "--archetype", "status-quo", "-n", "1", "--max-attempts", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_name(out.name + ".report.json").read_text())
    assert report["prompt"] == "d_gen_instruction" and report["candidates"] == 1


def test_bad_d_gen_line_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "D_gen.jsonl"
    bad.write_text('{"prompt": [{"role": "user", "content": "x"}], "completion": "not a list"}\n')
    result = CliRunner().invoke(app, ["train", "profile-sft", "--data", str(bad), "--out", str(tmp_path / "a")])
    assert result.exit_code != 0
    assert f"{bad}:1: field 'completion'" in str(result.exception)
