"""The run folder under faults: one writer at a time, failed dialogues retried, a full disk, a
resume from elsewhere, a changed agent, and keys sent only where they belong.

The customer model is a fake (tests/runtime/fakes.py) plugged in where the CLI builds participants,
so every run here is the real CLI, batch layer and files without loading a model.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from starlette.requests import Request

from tests.runtime.conftest import CLI, HERE, ROOT
from tests.runtime.fakes import invoke, with_fake_customer


@pytest.fixture()
def fake_models(monkeypatch):
    """Every participant the CLI builds gets the fake customer model: no weights load."""
    import grouped_sim.app.build as build

    real = build.build_deps
    monkeypatch.setattr(build, "build_deps", with_fake_customer(real))


@pytest.fixture()
def fast_yaml(tmp_path: Path) -> Path:
    import yaml

    from tests.runtime.conftest import fast_config_dict

    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump({**fast_config_dict(), "runtime": {**fast_config_dict()["runtime"], "checkpoint": False}}), encoding="utf-8")
    return path


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "dialogues.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


def _simulate(run: Path, config: Path, salesman: str, profiles: int = 2) -> list[str]:
    return ["simulate", "--out", str(run), "--mode", "prompt-only", "--profiles", str(profiles), "--seed", "4", "--salesman", salesman, "--config", str(config)]


HOLD = """
import fcntl, os, sys, time
fd = os.open(os.path.join(sys.argv[1], "run.lock"), os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0); os.write(fd, f"{os.getpid()}\\n".encode())
print("held", flush=True)
time.sleep(600)
"""


def test_a_second_writer_fails_at_once_and_the_lock_dies_with_its_holder(tmp_path: Path, fast_yaml: Path, fake_models, capsys, sub_env: dict) -> None:
    run = tmp_path / "run"
    assert invoke(_simulate(run, fast_yaml, f"python:{HERE / 'agents.py'}:scripted"), capsys).code == 0
    before = (run / "dialogues.jsonl").read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        second = subprocess.run(CLI + ["simulate", "--resume", str(run)], env=sub_env, capture_output=True, text=True, timeout=120)
        flat = " ".join((second.stdout + second.stderr).split())
        assert second.returncode == 2, flat
        assert f"(pid {holder.pid}) is writing this run folder" in flat and "Traceback" not in second.stderr
        assert "loading models" not in flat and time.monotonic() - started < 60
        assert (run / "dialogues.jsonl").read_bytes() == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # kill -9 released it: the next writer goes on (the run is finished, so nothing loads)
    again = invoke(["simulate", "--resume", str(run)], capsys)
    assert again.code == 0, again.output
    assert (run / "dialogues.jsonl").read_bytes() == before


def test_failed_dialogues_exit_3_with_counts_and_retry_failed_runs_them_again(tmp_path: Path, fast_yaml: Path, fake_models, capsys, monkeypatch) -> None:
    run = tmp_path / "run"
    args = _simulate(run, fast_yaml, f"python:{HERE / 'agents.py'}:down_while_flagged")
    monkeypatch.setenv("GS_TEST_AGENT_DOWN", "1")
    first = invoke(args, capsys)
    assert first.code == 3 and "2 of 2 dialogues ended in an error (by whose: salesman 2)" in first.output, first.output
    assert f"--resume {run} --retry-failed" in first.output
    ids = [d["id"] for d in _lines(run)]
    assert [d["error"]["who"] for d in _lines(run)] == ["salesman", "salesman"]
    assert invoke(["simulate", "--resume", str(run)], capsys).code == 3  # still failed: never counted as done

    monkeypatch.delenv("GS_TEST_AGENT_DOWN")
    retried = invoke(["simulate", "--resume", str(run), "--retry-failed"], capsys)
    assert retried.code == 0, retried.output
    after = _lines(run)
    assert sorted(d["id"] for d in after) == sorted(ids) and all(d["termination_reason"] != "error" for d in after)
    summary = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert summary["errors"] == {} and summary["resumed"]["retried_failed"] == 2


def _write_half_then_fail(calls: dict, fail_on: int):
    real = os.write

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] == fail_on:
            real(fd, bytes(data[: len(data) // 2]))  # the disk took half the line, then filled up
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    return write


def test_a_full_disk_mid_run_keeps_what_was_flushed_and_removes_half_lines(tmp_path: Path, fast_yaml: Path, fake_models, capsys, monkeypatch) -> None:
    import grouped_sim.io as io

    run = tmp_path / "run"
    args = _simulate(run, fast_yaml, f"python:{HERE / 'agents.py'}:scripted", profiles=3)
    calls = {"n": 0}
    monkeypatch.setattr(io.os, "write", _write_half_then_fail(calls, fail_on=2))
    full = invoke(args, capsys)
    monkeypatch.undo()  # the disk has room again
    assert full.code == 1 and full.traceback is None, full.output
    assert f"{run / 'dialogues.jsonl'}: cannot write it: No space left on device" in full.output
    kept = _lines(run)
    assert len(kept) == 1 and (run / "dialogues.jsonl").read_text(encoding="utf-8").endswith("\n")
    assert not list(tmp_path.rglob("*.tmp"))
    import grouped_sim.app.build as build

    real = build.build_deps
    monkeypatch.setattr(build, "build_deps", with_fake_customer(real))
    done = invoke(["simulate", "--resume", str(run)], capsys)
    assert done.code == 0, done.output
    ids = [d["id"] for d in _lines(run)]
    assert len(ids) == len(set(ids)) == 3 and _lines(run)[0] == kept[0]


def test_a_full_disk_while_writing_a_table_leaves_no_temp_file(tmp_path: Path, capsys, monkeypatch) -> None:
    """report, compare and every whole-file writer share the atomic writer (compare here: no encoder loads)."""
    import grouped_sim.io as io

    run = tmp_path / "run"
    run.mkdir()
    (run / "dialogues.jsonl").write_text("", encoding="utf-8")
    (run / "report.json").write_text(json.dumps({"reference": None, "summary": {"dialogues": 3}}), encoding="utf-8")
    table = tmp_path / "table.md"
    table.write_text("the table from last week\n", encoding="utf-8")
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("table.md.tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(io.os, "fsync", fsync)
    result = invoke(["compare", str(run), str(run), "--names", "a,b", "--markdown", str(table)], capsys)
    assert result.code == 1 and result.traceback is None, result.output
    assert f"{table}: cannot write it: No space left on device" in result.output
    assert not list(tmp_path.glob("*.tmp")) and table.read_text(encoding="utf-8") == "the table from last week\n"


def test_resume_works_from_anywhere_and_refuses_a_changed_agent(tmp_path: Path, fast_yaml: Path, fake_models, capsys, monkeypatch, corpus_path: Path) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    shutil.copy(HERE / "agents.py", work / "my_agent.py")
    shutil.copy(corpus_path, work / "calls.jsonl")
    monkeypatch.chdir(work)
    assert invoke(_simulate(Path("run"), fast_yaml, "python:my_agent.py:scripted", profiles=1), capsys).code == 0
    plan = json.loads((work / "run" / "plan.json").read_text(encoding="utf-8"))
    assert plan["settings"]["salesman"] == f"python:{work / 'my_agent.py'}:scripted"
    assert plan["salesman_code"]["file"] == str(work / "my_agent.py")
    assert invoke(_simulate(Path("replayed"), fast_yaml, "replay:calls.jsonl", profiles=1), capsys).code == 0
    assert json.loads((work / "replayed" / "plan.json").read_text(encoding="utf-8"))["settings"]["salesman"] == f"replay:{work / 'calls.jsonl'}"

    monkeypatch.chdir(elsewhere)
    (work / "run" / "dialogues.jsonl").write_text("", encoding="utf-8")  # as if killed before the first dialogue
    resumed = invoke(["simulate", "--resume", str(work / "run")], capsys)
    assert resumed.code == 0, resumed.output
    assert len(_lines(work / "run")) == 1

    (work / "run" / "dialogues.jsonl").write_text("", encoding="utf-8")
    with (work / "my_agent.py").open("a", encoding="utf-8") as handle:
        handle.write("\n# changed after the run began\n")
    changed = invoke(["simulate", "--resume", str(work / "run")], capsys)
    assert changed.code == 2 and "the salesman's code changed since this run began" in changed.output, changed.output
    assert (work / "run" / "dialogues.jsonl").read_text(encoding="utf-8") == ""


def _agent_recording_headers(seen: list[dict]):
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict:
        seen.append(dict(request.headers))
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, this is Alex."}, "finish_reason": "stop"}]}

    return app


def test_an_endpoint_salesman_sends_only_the_key_named_for_it(tmp_path: Path, fast_yaml: Path, fake_models, capsys, monkeypatch) -> None:
    from tests.runtime.test_servers import serving

    seen: list[dict] = []
    monkeypatch.setenv("OPENAI_API_KEY", "sk-meant-for-openai")
    monkeypatch.setenv("GROUPED_SIM_API_KEY", "meant-for-a-model-server")
    monkeypatch.setenv("MY_AGENT_KEY", "agent-secret")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with serving(_agent_recording_headers(seen)) as url:
        spec = f"endpoint:agent@{url}/v1"
        assert invoke(_simulate(tmp_path / "plain", fast_yaml, spec, profiles=1), capsys).code == 0
        assert seen and all("authorization" not in h for h in seen)
        seen.clear()
        keyed = invoke(_simulate(tmp_path / "keyed", fast_yaml, spec, profiles=1) + ["--salesman-key-env", "MY_AGENT_KEY"], capsys)
        assert keyed.code == 0, keyed.output
        assert seen and all(h.get("authorization") == "Bearer agent-secret" for h in seen)
        assert "agent-secret" not in (tmp_path / "keyed" / "plan.json").read_text(encoding="utf-8")
        missing = invoke(_simulate(tmp_path / "missing", fast_yaml, spec, profiles=1) + ["--salesman-key-env", "NOT_SET_ANYWHERE"], capsys)
        assert missing.code == 2 and "NOT_SET_ANYWHERE is not set" in missing.output and not (tmp_path / "missing").exists()
