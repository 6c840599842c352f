"""A failing backend is retried, then the dialogue is written as an error that says whose it was,
and the run goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grouped_sim.models.base import LocalChatModel
from langchain_core.outputs import ChatResult
from pydantic import ConfigDict

from tests.runtime.conftest import HERE, SCRIPTED


class DownForOneProfile(LocalChatModel):
    """The real embedded model, except its backend fails on every call about one customer."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    inner: Any
    marker: str
    failures: int = 0

    @property
    def _llm_type(self) -> str:
        return "down-for-one"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        if any(self.marker in str(m.content) for m in messages):
            self.failures += 1
            raise TimeoutError("customer backend timed out")
        return self.inner._generate(messages, stop, None, **kwargs)


def _read(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()]


def test_failing_customer_model_is_retried_blamed_and_the_run_goes_on(tmp_path: Path, fast_config, items, embedded_llama) -> None:
    from grouped_sim.app.build import build_deps
    from grouped_sim.graphs.batch import run_simulation
    from grouped_sim.graphs.plan import RunSettings

    config = fast_config.model_copy(update={"runtime": fast_config.runtime.model_copy(update={"retries": 2})})
    chosen = items[:3]
    flaky = DownForOneProfile(inner=embedded_llama.model_copy(update={"max_new_tokens": 8}), marker=chosen[0].profile.summary[:40])
    settings = RunSettings(salesman=SCRIPTED)
    summary = run_simulation(chosen, settings, config, tmp_path / "run", deps=build_deps(settings, config, customer=flaky))
    dialogues = _read(tmp_path / "run")
    assert len(dialogues) == 3
    failed = [d for d in dialogues if d["termination_reason"] == "error"]
    assert len(failed) == 1 and failed[0]["profile"]["summary"] == chosen[0].profile.summary
    assert failed[0]["error"]["who"] == "customer"
    assert failed[0]["error"]["type"] == "TimeoutError" and "timed out" in failed[0]["error"]["message"]
    assert flaky.failures == 3  # one try and two retries
    assert all(d["termination_reason"] != "error" and len(d["turns"]) >= 2 for d in dialogues if d not in failed)
    assert summary["errors"] == {"customer": 1}


def test_failing_salesman_is_blamed_on_the_salesman(tmp_path: Path, fast_config, items) -> None:
    import sys

    from grouped_sim.app.build import build_deps
    from grouped_sim.graphs.batch import run_simulation
    from grouped_sim.graphs.plan import RunSettings

    settings = RunSettings(salesman=f"python:{HERE / 'agents.py'}:broken")
    deps = build_deps(settings, fast_config)
    agents = sys.modules[deps.salesman.fn.__module__]  # the module the python: adapter loaded
    before = agents.CALLS["n"]
    summary = run_simulation(items[:2], settings, fast_config, tmp_path / "run", deps=deps)
    dialogues = _read(tmp_path / "run")
    assert [d["error"]["who"] for d in dialogues] == ["salesman", "salesman"]
    assert all(d["error"]["type"] == "ConnectionError" and d["outcome"] == "unknown" for d in dialogues)
    assert summary["errors"] == {"salesman": 2}
    assert agents.CALLS["n"] - before == 2 * (fast_config.runtime.retries + 1)  # every call was retried
