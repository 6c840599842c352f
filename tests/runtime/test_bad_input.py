"""Bad input anywhere is one clear line naming file/line/field, exit code 2, and nothing written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.runtime.conftest import CLI


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=120)


def _flat(proc: subprocess.CompletedProcess) -> str:
    return " ".join((proc.stdout + proc.stderr).split())


@pytest.fixture()
def cases(tmp_path: Path, corpus_path: Path) -> dict[str, tuple[list[str], str]]:
    lines = corpus_path.read_text(encoding="utf-8").splitlines()
    bad_corpus = tmp_path / "corpus.jsonl"
    broken = json.loads(lines[2])
    broken["turns"][0]["role"] = "narrator"
    bad_corpus.write_text("\n".join([lines[0], lines[1], json.dumps(broken)]) + "\n", encoding="utf-8")
    bad_profiles = tmp_path / "profiles.jsonl"
    bad_profiles.write_text('{"summary": "Owner of a cafe", "age": 30}\n{"summary": "Retired teacher", "age": 7}\n', encoding="utf-8")
    bad_config = tmp_path / "config.yaml"
    bad_config.write_text("max_turns: 3\nruntime:\n  concurrency: 0\n", encoding="utf-8")
    not_a_store = tmp_path / "store.txt"
    not_a_store.write_text("not a folder", encoding="utf-8")
    return {
        "corpus line": (["--corpus", str(bad_corpus)], f"{bad_corpus}:3: field 'turns.0.role'"),
        "profile file": (["--profiles-file", str(bad_profiles), "--mode", "prompt-only"], f"{bad_profiles}:2: field 'age'"),
        "config": (["--config", str(bad_config), "--mode", "prompt-only"], f"{bad_config}: field 'runtime.concurrency'"),
        "model spec": (["--customer", "hf-smollm2", "--mode", "prompt-only"], "missing backend prefix"),
        "salesman spec": (["--salesman", "python:no_such_module_xyz:fn", "--mode", "prompt-only"], "cannot import 'no_such_module_xyz'"),
        "store path": (["--sop-db", str(not_a_store)], "no SOP store here"),
        "missing store": (["--sop-db", str(tmp_path / "nowhere")], "no SOP store here"),
        "resume folder": (["--resume", str(tmp_path)], "plan.json missing"),
    }


def test_bad_input_exits_2_with_location_and_writes_nothing(tmp_path: Path, cases: dict, sub_env: dict) -> None:
    for name, (args, expected) in cases.items():
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        extra = [] if "--resume" in args else ["--out", str(out)]
        proc = _run(["simulate", *extra, "--profiles", "1", *args], sub_env)
        assert proc.returncode == 2, f"{name}: exit {proc.returncode}: {proc.stderr[-800:]}"
        assert expected in _flat(proc), f"{name}: {_flat(proc)[-400:]}"
        assert "Traceback" not in proc.stderr, name
        assert not out.exists(), f"{name}: left {sorted(p.name for p in out.iterdir())}"
