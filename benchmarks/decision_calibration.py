"""How fitted twins decide, on training calls (cross-validated) and held-out calls, per corpus (issue 23).

    grouped-sim fit --corpus grouped_sim/data/sample_corpus.jsonl --out runs/i23/sample-fit --holdout 0.2
    .venv/bin/python benchmarks/decision_calibration.py --name sample --sim runs/i23/sample-fit [--name ... --sim ...]
    .venv/bin/python benchmarks/decision_calibration.py --write-mostly-refuse runs/i23/mostly-refuse.jsonl   # the opposite base rate

For every sim folder: the cross-validated decision check `fit` wrote (each training call scored by
a hazard fitted without its fold) and the same check on the held-out calls, where each customer's
P(decision) is the distribution their fitted twin draws from over the replayed real script (the
manager tags each move as in a probe; no text is generated, so this takes seconds, and the twin's
actual call is one draw from it). Rates against the real ones with Wilson intervals, agreement
against the training calls' majority guess, Brier score and log loss of P(agree) against the base
rate. Results: benchmarks/results/decision_calibration.json (one key per --name), a table on stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "decision_calibration.json"


def held_out_check(sim: Path) -> dict:
    from grouped_sim.config import SimulationConfig
    from grouped_sim.graphs.fit import SimFolder
    from grouped_sim.graphs.graph import ManagerDeps, retrieve_chains
    from grouped_sim.graphs.manager import LightManager
    from grouped_sim.graphs.probe import probe_cases, script_distribution
    from grouped_sim.metrics.decisions import decision_check
    from grouped_sim.metrics.probe import OUTCOME_DECISION
    from grouped_sim.sop_db.store import SOPStore

    folder = SimFolder(sim)
    store = SOPStore(folder.store, taxonomy=folder.load_taxonomy())
    dynamics = folder.load_dynamics()
    deps = ManagerDeps(manager=LightManager(store, fitted=dynamics), store=store, config=SimulationConfig())
    distributions, real = [], []
    for case in probe_cases(folder, None):
        decision = OUTCOME_DECISION[case.dialogue.outcome.value]
        if decision == "undecided":
            continue
        # no twin here: a hazard that reads replies reads the real customer's own answers
        distributions.append(script_distribution(deps, case, retrieve_chains(deps, case.item.profile, case.item.domain, case.item.source), case.script()))
        real.append(decision)
    rates = {OUTCOME_DECISION[o]: share for o, share in dynamics.base_rates.items()}
    return decision_check(distributions, real, rates, "the fitted twin's distribution over the replayed script").model_dump()


def table(name: str, checks: dict[str, dict]) -> str:
    lines = [f"### {name}", "", "| calls | n | outcome | twins | real [95 %] | inside |", "|---|---:|---|---:|---:|---|"]
    for where, check in checks.items():
        for r in check["rates"]:
            ci = r["real_ci"] or [0, 0]
            lines.append(f"| {where} | {check['n']} | {r['outcome']} | {r['predicted']:.3f} | {r['real']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | {'yes' if r['within'] else 'no'} |")
    lines += ["", "| calls | same decision [95 %] | majority guess | Brier P(agree) [95 %] | base rate's | beats it |", "|---|---:|---:|---:|---:|---|"]
    for where, check in checks.items():
        s, same = check["scores"], check["same_decision"]
        lines.append(
            f"| {where} | {same['value']:.3f} [{same['ci'][0]:.3f}, {same['ci'][1]:.3f}] | {check['majority_same']:.3f} | "
            f"{s['brier']['value']:.3f} [{s['brier']['ci'][0]:.3f}, {s['brier']['ci'][1]:.3f}] | {s['brier_base_rate']['value']:.3f} | {s['beats_base_rate']} |"
        )
    notes = [f"- {where}: {check['note']}" for where, check in checks.items() if check.get("note")]
    return "\n".join(lines + ([""] + notes if notes else []))


def write_mostly_refuse(path: Path) -> None:
    """The sample corpus with the opposite base rate: every refused and hung-up call, 5 of the 13
    agreed and 4 of the 13 callbacks (seed 0), shuffled."""
    import random

    from grouped_sim.data import sample_corpus_path

    calls = [json.loads(line) for line in Path(sample_corpus_path()).read_text().splitlines() if line.strip()]
    rng = random.Random(0)
    kept = [c for c in calls if c["outcome"] in ("refused", "hung_up")]
    kept += rng.sample([c for c in calls if c["outcome"] == "agreed"], 5) + rng.sample([c for c in calls if c["outcome"] == "callback"], 4)
    rng.shuffle(kept)
    path.write_text("".join(json.dumps(c) + "\n" for c in kept))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", action="append", default=[])
    parser.add_argument("--sim", action="append", default=[], type=Path)
    parser.add_argument("--write-mostly-refuse", type=Path, help="write the mostly-refuse corpus here and stop")
    args = parser.parse_args()
    if args.write_mostly_refuse:
        write_mostly_refuse(args.write_mostly_refuse)
        return
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name, sim in zip(args.name, args.sim):
        fit = json.loads((sim / "fit.json").read_text())
        checks = {"training (cross-validated)": fit["dynamics"]["statistics"]["cv_decisions"], "held-out": held_out_check(sim)}
        results[name] = {"sim": str(sim), "corpus": fit["settings"]["corpus"], "train": fit["train"], "holdout": fit["holdout"], **checks}
        print(table(name, checks), "\n")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
