"""Nothing lost: a run killed with SIGKILL mid-way and resumed has every dialogue exactly once,
with the same ids and the same text as a run that was never interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.runtime.conftest import CLI, SCRIPTED


def _dialogues(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "dialogues.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def _simulate(out: Path, config: Path, env: dict, extra: list[str] | None = None) -> list[str]:
    return CLI + ["simulate", "--out", str(out), "--mode", "prompt-only", "--profiles", "3", "--seed", "5",
                  "--salesman", SCRIPTED, "--config", str(config), "--concurrency", "1"] + (extra or [])


def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path: Path, fast_config_file: Path, sub_env: dict) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run(_simulate(clean, fast_config_file, sub_env), env=sub_env, check=True, capture_output=True, timeout=300)

    proc = subprocess.Popen(_simulate(killed, fast_config_file, sub_env), env=sub_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    out = killed / "dialogues.jsonl"
    while time.time() < deadline and proc.poll() is None:
        if out.is_file() and out.read_text(encoding="utf-8").count("\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _dialogues(killed)
    assert 1 <= len(before) < 3

    done = subprocess.run(CLI + ["simulate", "--resume", str(killed)], env=sub_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _dialogues(killed)
    ids = [d["id"] for d in after]
    assert len(ids) == len(set(ids)) == 3
    reference = {d["id"]: d for d in _dialogues(clean)}
    assert set(ids) == set(reference)
    for d in after:  # deterministic given the seed: the same calls, word for word
        assert [t["text"] for t in d["turns"]] == [t["text"] for t in reference[d["id"]]["turns"]]
    # What was written before the kill was kept, not redone.
    assert after[: len(before)] == before
    summary = json.loads((killed / "run.json").read_text(encoding="utf-8"))
    assert summary["dialogues"] == 3 and summary["resumed"]["kept"] == len(before)


def test_rerun_same_command_finishes_instead_of_repeating(tmp_path: Path, fast_config_file: Path, sub_env: dict) -> None:
    run = tmp_path / "run"
    cmd = _simulate(run, fast_config_file, sub_env, ["--profiles", "1"])
    subprocess.run(cmd, env=sub_env, check=True, capture_output=True, timeout=300)
    first = _dialogues(run)
    again = subprocess.run(cmd, env=sub_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert _dialogues(run) == first
    other = subprocess.run(cmd[:-2] + ["--profiles", "2"], env=sub_env, capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and "holds a different run" in " ".join((other.stdout + other.stderr).split())
