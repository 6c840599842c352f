"""Does the hazard decide better when it reads what the customer said? (issue 23, item 3)

    .venv/bin/python benchmarks/decision_reading.py --sim runs/i23/sample-fit

Adds features of the customer's replies *before* each salesman move (never the reply to it: at
run time the manager decides before the customer model answers) to the fitted hazard's, and
compares the cross-validated decision check (each training call scored by a fit without its fold,
the same folds for every arm) for C in {0.3, 1, 3}:

- `base`: the hazard as `fit` fits it (stage, turn, pushes, objections, archetype, neighbours);
- `states`: + the share of earlier replies read as resistance, deliberation and commitment by the
  cue rules of `grouped_sim.metrics.fidelity.decision_state`, and the last reply's state;
- `lean`: + the mean over earlier replies of a MiniLM-embedding logistic model's P(the call ends
  agreed), trained out of fold on the training calls' replies.

Results: benchmarks/results/decision_reading.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "decision_reading.json"
STATES = ("resistance", "deliberation", "commitment")


def training_calls(sim: Path):  # type: ignore[no-untyped-def]
    from grouped_sim.graphs.fit import SimFolder, call_facts
    from grouped_sim.graphs.fitting import base_rates
    from grouped_sim.sop_db.store import SOPStore

    folder = SimFolder(sim)
    taxonomy = folder.load_taxonomy()
    ids, profiles = set(folder.read_split().train), {r.id: r for r in folder.load_profiles("train")}
    train = [d.model_copy(update={"profile": profiles[d.id].profile}) for d in folder.annotated_dialogues() if d.id in ids]
    rates = base_rates([d.outcome.value for d in train])
    return train, call_facts(train, SOPStore(folder.store, taxonomy=taxonomy), taxonomy, 4, rates), taxonomy, rates


def replies_before(train) -> list[list[str]]:  # type: ignore[no-untyped-def]
    from grouped_sim.graphs.dynamics import move_answers

    return [move_answers(d.turns) for d in train]


def state_features(replies: list[list[str]]):  # type: ignore[no-untyped-def]
    from grouped_sim.metrics.fidelity import decision_state

    def at(call: int, move: int) -> list[float]:
        before = [decision_state(r) for r in replies[call][: move - 1] if r.strip()]
        shares = [sum(b == s for b in before) / len(before) if before else 0.0 for s in STATES]
        return shares + [float(bool(before) and before[-1] == s) for s in STATES]

    return at


def lean_features(train, replies: list[list[str]], folds, base: float):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    from grouped_sim.embeddings import embed

    flat = [(c, m, text) for c, texts in enumerate(replies) for m, text in enumerate(texts) if text.strip()]
    vectors = np.asarray(embed([t for _, _, t in flat]))
    agreed = np.array([train[c].outcome.value == "agreed" for c, _, _ in flat])
    lean: dict[tuple[int, int], float] = {}
    for fold in folds:
        test = np.isin([c for c, _, _ in flat], fold)
        model = LogisticRegression(C=0.3, max_iter=2000).fit(vectors[~test], agreed[~test])
        for (c, m, _), p in zip([f for f, t in zip(flat, test) if t], model.predict_proba(vectors[test])[:, 1]):
            lean[(c, m)] = float(p)

    def at(call: int, move: int) -> list[float]:
        values = [lean[(call, m)] for m in range(move - 1) if (call, m) in lean]
        return [float(np.mean(values)) if values else base]

    return at


def check(calls, taxonomy, rates, extra, c: float, seed: int = 0) -> dict:  # type: ignore[no-untyped-def]
    from grouped_sim.graphs.dynamics import HazardModel, move_features, outcome_distribution
    from grouped_sim.graphs.fitting import DECISIONS, _fit, _folds, training_rows
    from grouped_sim.metrics.decisions import decision_check

    rows, labels, groups = training_rows(calls, taxonomy)
    shape = HazardModel(classes=[], stages=sorted({r.stage for r in rows if r.stage}), archetypes=sorted({r.archetype for r in rows if r.archetype}), coef=[], intercept=[])

    def vector(call: int, move: int) -> list[float]:
        facts = calls[call]
        return shape.vector(move_features(taxonomy, facts.stages[:move], facts.archetype, facts.propensity)) + extra(call, move)

    where = [(g, move) for g, move in zip(groups, _moves_of(calls, groups))]
    x = np.array([vector(call, move) for call, move in where])
    distributions, real = [], []
    for fold in _folds(groups, seed):
        test = np.isin(groups, fold)
        model = _fit(x[~test], [label for label, t in zip(labels, test) if not t], c)
        for call in fold:
            if calls[call].outcome not in DECISIONS:
                continue
            moves = max(1, min(calls[call].decision_move, len(calls[call].stages)))
            probs = model.predict_proba(np.array([vector(call, m) for m in range(1, moves + 1)]))
            distributions.append(outcome_distribution([dict(zip(model.classes_, p)) for p in probs]))
            real.append(calls[call].outcome)
    return decision_check(distributions, real, rates, "cross-validated", seed).model_dump()


def _moves_of(calls, groups: list[int]) -> list[int]:  # type: ignore[no-untyped-def]
    """The move number of each training row (rows of one call come in move order from 1)."""
    moves, previous, count = [], None, 0
    for g in groups:
        count = count + 1 if g == previous else 1
        previous = g
        moves.append(count)
    return moves


def main() -> None:
    from grouped_sim.graphs.fitting import _folds, training_rows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", type=Path, required=True)
    args = parser.parse_args()
    train, calls, taxonomy, rates = training_calls(args.sim)
    replies = replies_before(train)
    _, _, groups = training_rows(calls, taxonomy)
    arms = {"base": lambda call, move: [], "states": state_features(replies), "lean": lean_features(train, replies, _folds(groups, 0), rates.get("agreed", 0.0))}
    results = {}
    print("| arm | C | same decision [95 %] | majority | Brier P(agree) | base rate's | Brier difference [95 %] |\n|---|---:|---:|---:|---:|---:|---:|")
    for name, extra in arms.items():
        for c in (0.3, 1.0, 3.0):
            r = check(calls, taxonomy, rates, extra, c)
            results[f"{name} C={c}"] = r
            s, same = r["scores"], r["same_decision"]
            print(
                f"| {name} | {c} | {same['value']:.3f} [{same['ci'][0]:.3f}, {same['ci'][1]:.3f}] | {r['majority_same']:.3f} | {s['brier']['value']:.3f} | "
                f"{s['brier_base_rate']['value']:.3f} | {s['brier_gain']['value']:+.3f} [{s['brier_gain']['ci'][0]:+.3f}, {s['brier_gain']['ci'][1]:+.3f}] |"
            )
    RESULTS.write_text(json.dumps({"sim": str(args.sim), "n": next(iter(results.values()))["n"], "arms": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
