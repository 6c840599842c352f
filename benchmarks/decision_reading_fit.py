"""Does `fit` keep a hazard that reads what the customer said, and what does it change held out? (issue 23, item 3)

    .venv/bin/python benchmarks/decision_reading_fit.py sample=runs/i23/sample-fit refuse=runs/i23/refuse-fit inspired=runs/i23/inspired-fit

For each sim folder (made by `grouped-sim fit ... --holdout 0.2` before the hazard could read
replies): refit the dynamics from its training calls as `fit` now does (the plain hazard and one
that also reads the cue-rule decision state of the customer's earlier answers, each over the C grid,
the one with the lower cross-validated log loss kept), write them into a copy of the folder, and
run the held-out decision check of `decision_calibration.py` on the old and the new dynamics. The
held-out distributions read the real customers' own answers (no text is generated; in a probe a
hazard that reads replies reads the twin's). Results: benchmarks/results/decision_reading_fit.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "decision_reading_fit.json"
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    from decision_calibration import held_out_check
    from decision_reading import training_calls

    from grouped_sim.graphs.fitting import fit_dynamics
    from grouped_sim.io import write_json_atomic

    out = {}
    for arg in sys.argv[1:]:
        name, sim = arg.split("=", 1)
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / name
            shutil.copytree(sim, copy)
            _, facts, taxonomy, _ = training_calls(Path(sim))
            fitted = fit_dynamics(facts, taxonomy, seed=0)
            write_json_atomic(copy / "dynamics.json", fitted.model_dump(mode="json"))
            stats = fitted.statistics
            out[name] = {
                "training_calls": len(facts), "reads_replies": fitted.hazard.reads_replies,
                "cv_log_loss_plain": stats.cv_log_loss_plain, "cv_log_loss_reading": stats.cv_log_loss_reading, "cv_null_log_loss": stats.cv_null_log_loss,
                "cv_decisions": stats.cv_decisions.model_dump(mode="json") if stats.cv_decisions else None,
                "held_out_plain_fit": held_out_check(Path(sim)), "held_out_new_fit": held_out_check(copy),
            }
        row = out[name]
        before, after = row["held_out_plain_fit"], row["held_out_new_fit"]
        print(f"{name}: reads replies {row['reads_replies']} (cv log loss {row['cv_log_loss_reading']} reading vs {row['cv_log_loss_plain']} plain); "
              f"held out same decision {before['same_decision']['value']} -> {after['same_decision']['value']} {after['same_decision']['ci']} vs majority {after['majority_same']} ({after['n']} calls)")
    RESULTS.write_text(json.dumps(out, indent=1, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
