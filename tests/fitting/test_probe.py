"""`grouped-sim probe`: held-out real customers against their simulated twins, figure by figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from grouped_sim.metrics.probe import ProbeRow, agreement_floor, confusion, probe_summary

CLI = [sys.executable, "-c", "from grouped_sim.cli.app import main; main()"]
FIGURES = {"decision_agreement", "walk_away_rate", "agree_rate", "exit_turn_w1", "reply_length_w1"}


def row(i: int, real: str, sim: str, real_exit: int = 3, sim_exit: int = 3) -> ProbeRow:
    return ProbeRow(id=f"d-{i}", real=real, sim=sim, real_exit=real_exit, sim_exit=sim_exit, real_replies=["no", "not now thanks"], sim_replies=["how much is it?"])


def test_confusion_and_agreement_with_the_human_noise_floor() -> None:
    rows = [row(0, "agreed", "agreed"), row(1, "agreed", "refused"), row(2, "walked_away", "walked_away"), row(3, "walked_away", "agreed")]
    table = confusion(rows)
    assert table["agreed"]["agreed"] == 1 and table["agreed"]["refused"] == 1 and table["walked_away"]["agreed"] == 1
    twins = np.array([[1, 0.9, 0, 0], [0.9, 1, 0, 0], [0, 0, 1, 0.9], [0, 0, 0.9, 1]])
    # nearest neighbours share the decision: another real person would agree whenever the pair is split
    assert 0.5 < agreement_floor(rows, twins) <= 1.0
    summary = probe_summary(rows, twins)
    assert summary["figures"]["decision_agreement"]["sim"] == 0.5 and summary["majority_baseline"] == 0.5
    walk = summary["figures"]["walk_away_rate"]
    assert walk["sim"] == 0.5 and walk["real"] == 0.5 and walk["gap"] == 0.0  # refused and walked away both count
    agree = summary["figures"]["agree_rate"]
    assert agree["sim"] == 0.5 and agree["real"] == 0.5


def test_probe_writes_figures_with_intervals_and_noise_floors(fitted_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "fast.yaml"
    config.write_text(yaml.safe_dump({"customer": {"max_new_tokens": 6}, "role_guard_retries": 0, "best_of": {"n": 1}}), encoding="utf-8")
    out = tmp_path / "probe"
    done = subprocess.run(
        # The 135M customer and the fit's MiniLM scorer run the same code as the 1.5B and the judge, in
        # a tenth of the time (the judge's own reading is tested in tests/report and tests/discriminator).
        CLI + ["probe", str(fitted_dir), "--n", "4", "--config", str(config), "--out", str(out), "--customer", "llamacpp:smollm2", "--coherence", str(fitted_dir / "coherence" / "judge")],
        capture_output=True, text=True, timeout=600, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads((out / "probe.json").read_text())
    assert probe["n"] == 4 and probe["variant"] == "fitted"
    assert FIGURES <= set(probe["figures"])
    for name in FIGURES:
        figure = probe["figures"][name]
        assert {"sim", "real", "gap", "ci", "noise_floor"} <= set(figure) and figure["sim"] is not None
    assert len(probe["rows"]) == 4 and all(r["real"] and r["sim"] and isinstance(r["forced"], bool) for r in probe["rows"])
    assert all(r["sim_exit"] <= r["real_exit"] for r in probe["rows"] if r["error"] is None)  # the replay stops at the real decision
    assert (out / "probe.html").read_text().count("<details>") == 4
    # Every decision says where it came from; a fitted twin's P(decision) over its script is scored
    # against the training calls' base rate and majority guess, and drawn in the reliability diagram.
    fitted = probe["variants"]["fitted"]
    assert json.loads((fitted_dir / "dynamics.json").read_text())["fitted"]
    assert all(r["decided_by"] in {"hazard", "hazard (end of script)", "customer-model-tag"} for r in probe["rows"] if r["error"] is None)
    assert all(abs(sum(r["sim_odds"].values()) - 1) < 1e-3 for r in probe["rows"] if r["error"] is None)
    assert fitted["decisions"]["probability"].startswith("the fitted hazard") and fitted["decisions"]["scores"]["brier_base_rate"]["value"] > 0
    assert sum(fitted["decided_by"].values()) == 4 and "reliability of P(agree)" in (out / "probe.html").read_text()
    ended = [json.loads(line) for line in (out / "fitted" / "dialogues.jsonl").read_text().splitlines()]
    for call in ended:
        if call["termination_reason"] in {"customer_agreed", "customer_refused", "customer_hung_up", "callback_arranged"}:
            assert call["meta"]["decision"]["by"] in {"hazard", "customer-model-tag"} and call["meta"]["decision"]["move"] >= 1
    coherence = probe["figures"]["coherence"]  # scored by the fit's own scorer, on real and simulated replies
    assert 0 < coherence["real"] < 1 and 0 < coherence["sim"] < 1
    # Everything goes under --out, the runs too: the sim folder is left as it was.
    assert (out / "fitted" / "dialogues.jsonl").is_file() and (out / "scripts.jsonl").is_file() and not (fitted_dir / "probe").exists()
    again = subprocess.run(CLI + ["probe", str(fitted_dir), "--n", "3", "--config", str(config), "--out", str(out), "--customer", "llamacpp:smollm2"], capture_output=True, text=True, timeout=300)
    said = " ".join(again.stderr.split())
    assert again.returncode == 2 and f"{out / 'fitted'}: holds a probe of other customers or settings" in said and "pass a new --out folder" in said


def test_a_probe_of_calls_without_outcomes_says_so_instead_of_printing_decisions() -> None:
    from grouped_sim.report.probe_html import render_probe_html

    rows = [row(i, "undecided", "refused") for i in range(5)]
    summary = probe_summary(rows, np.eye(5))
    for name in ("decision_agreement", "walk_away_rate", "agree_rate", "callback_rate"):
        figure = summary["figures"][name]
        assert figure["sim"] is None and figure["gap"] is None and figure["beyond_noise"] is None and "every outcome is 'unknown'" in figure["why"]
    assert summary["majority_baseline"] is None
    assert any("decision agreement and the walk-away, agree and callback rates are n/a" in w for w in summary["warnings"])
    page = render_probe_html({"sim_folder": "sim", "n": 5, "customer": "c", "warnings": summary["warnings"], "variants": {"fitted": summary}})
    assert "id='warnings'" in page and "n/a: no held-out real call ends in a decision" in page


def test_too_few_customers_for_a_noise_floor_are_never_beyond_noise() -> None:
    rows = [row(0, "agreed", "refused"), row(1, "agreed", "refused"), row(2, "agreed", "refused")]
    summary = probe_summary(rows, np.eye(3))
    agree = summary["figures"]["agree_rate"]
    assert agree["gap"] == -1.0 and agree["noise_floor"] is None and agree["beyond_noise"] is None
    assert any("a noise floor needs at least 4" in w for w in summary["warnings"])
