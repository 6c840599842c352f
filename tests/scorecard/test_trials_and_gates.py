"""simulate --trials and --plan-from (plans and a run with fake participants), and `report
--fail-under` / `compare` on run folders as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from grouped_sim.cli.simulate import _planned_from
from grouped_sim.config import SimulationConfig, SimulatorMode
from grouped_sim.corpus import write_corpus
from grouped_sim.errors import InputError
from grouped_sim.graphs.adapters import CallableSalesman
from grouped_sim.graphs.batch import run_simulation
from grouped_sim.graphs.graph import SimDeps
from grouped_sim.graphs.plan import RunPlan, RunSettings, SimProfile, with_trials
from grouped_sim.schemas import Outcome, Profile

from tests.scorecard.calls import call
from tests.cli_main import run_main

FUNNEL = ["opening", "pitch", "closing_ask"]


def items() -> list[SimProfile]:
    return [SimProfile(profile=Profile(summary=f"Customer {i}", archetype="price-sensitive"), domain="food-delivery", source=f"c{i}") for i in range(2)]


def test_trials_repeat_each_customer_with_its_own_seed() -> None:
    config, settings = SimulationConfig(seed=4), RunSettings(salesman="python:x:y")
    single = RunPlan(settings=settings, config=config, items=with_trials(items(), 1))
    triple = RunPlan(settings=settings, config=config, items=with_trials(items(), 3))
    assert [(i.trial, i.customer) for i in triple.items] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert triple.ids()[:2] == single.ids()  # trial 0 is the single-trial run
    assert len(set(triple.ids())) == 6 and len(set(triple.seeds())) == 6
    with pytest.raises(InputError):
        with_trials(items(), 0)


def test_plan_from_keeps_customers_seeds_and_config(tmp_path: Path) -> None:
    earlier = tmp_path / "a"
    earlier.mkdir()
    plan = RunPlan(settings=RunSettings(salesman="hf:smollm2", sop_db="/db"), config=SimulationConfig(seed=9, max_turns=5), items=with_trials(items(), 2))
    (earlier / "plan.json").write_text(plan.model_dump_json(), encoding="utf-8")
    got_items, settings, config = _planned_from(earlier, "python:agent.py:respond", None, 3, tmp_path / "b")
    assert got_items == plan.items and config.digest() == plan.config.digest() and config.runtime.concurrency == 3
    # The agent's file is recorded by absolute path, so a resume from elsewhere runs the same file.
    assert settings.salesman == f"python:{Path('agent.py').resolve()}:respond" and settings.sop_db == "/db" and settings.plan_from == str(earlier.resolve())
    new_plan = RunPlan(settings=settings, config=config, items=got_items)
    assert new_plan.seeds() == plan.seeds() and set(new_plan.ids()).isdisjoint(plan.ids())
    with pytest.raises(InputError, match="--trials, --max-turns"):
        _planned_from(earlier, "x", None, None, tmp_path / "b", trials=3, max_turns=2)
    with pytest.raises(InputError, match="same folder"):
        _planned_from(earlier, "x", None, None, earlier)


def test_a_run_with_trials_records_them_and_resumes(tmp_path: Path) -> None:
    config = SimulationConfig(mode=SimulatorMode.prompt_only, max_turns=2, role_guard_retries=0)
    settings = RunSettings(salesman="python:scripted", customer="hf:fake")
    deps = SimDeps(
        salesman=CallableSalesman(lambda history, domain, seed: "Would a lower commission help you?", name="scripted"),
        customer=FakeListChatModel(responses=["hmm, how much?", "not sure"]), manager=None, store=None, config=config,
    )
    run = tmp_path / "run"
    summary = run_simulation(with_trials(items(), 2), settings, config, run, deps=deps)
    assert summary["dialogues"] == 4
    written = [json.loads(line) for line in (run / "dialogues.jsonl").read_text().splitlines()]
    assert sorted(d["meta"]["trial"] for d in written) == [0, 0, 1, 1] and len({d["id"] for d in written}) == 4
    again = run_simulation(with_trials(items(), 2), settings, config, run, deps=lambda: pytest.fail("nothing is left to simulate"))
    assert again["resumed"] == {"kept": 4, "ran": 0, "retried_failed": 0}


def test_report_gates_and_compare_pairs_two_agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_corpus(a / "dialogues.jsonl", [call(f"a{i}", "price-sensitive", Outcome.refused, ["opening", "pitch"], seed=i, trial=i % 2) for i in range(6)])
    write_corpus(b / "dialogues.jsonl", [call(f"b{i}", "price-sensitive", Outcome.agreed if i else Outcome.refused, FUNNEL, seed=i, trial=i % 2) for i in range(6)])
    code, text = run_main(["report", str(a), "--coherence", "none", "--fail-under", "conversion=0.25", "--fail-over", "walk_away=0.5"], monkeypatch, capsys)
    assert code == 1
    reason = next(line for line in text.splitlines() if line.startswith("gate failed: "))
    assert "conversion 0.000 [0.000, 0.000] (n=6): upper bound 0.000 < 0.25; walk_away 1.000" in reason
    report = json.loads((a / "report.json").read_text())  # written before the gate failed
    assert report["report_version"] == 2 and report["scorecard"]["calls"] == 6 and report["figures"]["walk_away"]["sim_ci"] == [1.0, 1.0]
    assert (a / "report.html").read_text().index('id="scorecard"') < (a / "report.html").read_text().index('id="summary"')
    code, text = run_main(["report", str(b), "--coherence", "none", "--fail-under", "conversion=0.5", "--fail-under", "bogus=1"], monkeypatch, capsys)
    assert code == 2 and "unknown figure" in text
    code, text = run_main(["report", str(b), "--coherence", "none", "--fail-under", "conversion=0.5"], monkeypatch, capsys)
    assert code == 0 and "gates passed: conversion" in text

    js, page = tmp_path / "cmp.json", tmp_path / "cmp.html"
    code, text = run_main(["compare", str(a), str(b), "--names", "A,B", "--json", str(js), "--html", str(page)], monkeypatch, capsys)
    assert code == 0, text
    table = json.loads(js.read_text())
    conv = next(r for r in table["rows"] if r["key"] == "conversion")
    assert conv["vs_first"]["B"]["diff"] == pytest.approx(5 / 6, abs=1e-3) and conv["vs_first"]["B"]["beyond_noise"] is True
    paired = table["paired"][0]
    assert paired["pairs"] == 6 and paired["customers"] == 1 and paired["figures"]["conversion"]["mcnemar"]["b_only"] == 5
    assert len(paired["won"]) == 1 and paired["won"][0]["a_converted"] == 0 and paired["won"][0]["b_converted"] == 5
    html = page.read_text()
    assert html.count("<svg") == 3 and "B vs A, paired" in html
