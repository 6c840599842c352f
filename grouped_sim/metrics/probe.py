"""The matched-pair probe's figures: each held-out real customer against their simulated twin.

A row is one real held-out call and the simulation of the same customer (their profile, the real
salesman's moves replayed). Every figure compares the simulated side with the real side of the
same rows, with a bootstrap interval over rows and the human-vs-human noise floor: the same figure
between two random halves of the real calls. For decision agreement, where no second real person
answers the same call, the noise floor is how often a real customer's decision agrees with the
decision of the most similar other real customer (nearest profile) in the other half.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from scipy.stats import wasserstein_distance

from grouped_sim.errors import count
from grouped_sim.metrics.decisions import decision_check, wilson
from grouped_sim.metrics.fidelity import decision_state, state_depth
from grouped_sim.metrics.intervals import SPLITS, Figure, bootstrap_ci, compare_paired, halves, paired_distance

DECISIONS = ("agreed", "refused", "walked_away", "callback", "undecided")
WALK_AWAY = {"walked_away", "refused"}
OUTCOME_DECISION = {"agreed": "agreed", "refused": "refused", "hung_up": "walked_away", "callback": "callback", "unknown": "undecided"}


class ProbeRow(BaseModel):
    """One held-out real customer and their simulated twin."""

    id: str
    archetype: str | None = None
    real: str = Field(description="the real call's decision: agreed, refused, walked_away, callback, undecided")
    sim: str = Field(description="the simulated customer's decision")
    forced: bool = Field(False, description="the script ran out before the simulated customer decided: the manager gave the final decision")
    real_exit: int = Field(description="salesman moves the real customer heard before deciding")
    sim_exit: int = Field(description="salesman moves the simulated customer heard before deciding")
    termination: str = ""
    real_replies: list[str] = Field(default_factory=list, description="the real customer's replies up to the decision")
    sim_replies: list[str] = Field(default_factory=list)
    real_coherence: list[float] | None = None
    sim_coherence: list[float] | None = None
    error: dict[str, str] | None = None
    decided_by: str | None = Field(None, description="where the simulated decision came from: hazard, rules, llm-manager, customer-model-tag, or the end-of-script rule")
    sim_odds: dict[str, float] | None = Field(None, description="P(each decision) of the twin over the whole script, when the manager's decisions are fitted (the twin's call is one draw from it)")


def _rate(rows: Sequence[ProbeRow], side: str, decisions: set[str]) -> float | None:
    return sum(getattr(r, side) in decisions for r in rows) / len(rows) if rows else None


def _words(rows: Sequence[ProbeRow], side: str) -> list[int]:
    return [len(text.split()) for r in rows for text in getattr(r, f"{side}_replies")]


def _w1(a: Sequence[float], b: Sequence[float]) -> float | None:
    return float(wasserstein_distance(a, b)) if len(a) and len(b) else None


def _mean_of(rows: Sequence[ProbeRow], field: str) -> float | None:
    values = [v for r in rows for v in (getattr(r, field) or [])]
    return float(np.mean(values)) if values else None


def _depth(texts: Sequence[str]) -> float | None:
    return float(np.mean([state_depth(decision_state(t)) for t in texts])) if texts else None


def _nonbuyer_depth(rows: Sequence[ProbeRow], side: str) -> float | None:
    texts = [t for r in rows if r.real != "agreed" for t in getattr(r, f"{side}_replies")]
    return _depth(texts)


def agreement_floor(rows: Sequence[ProbeRow], similarity: np.ndarray | None, seed: int = 0) -> float | None:
    """How often a real customer's decision matches their nearest-profile neighbour's in the other half."""
    if similarity is None or len(rows) < 4:
        return None
    rng = np.random.default_rng(seed)
    shares = []
    for _ in range(SPLITS):
        a, b = halves(list(range(len(rows))), rng)
        matched = [rows[i].real == rows[b[int(np.argmax(similarity[i, b]))]].real for i in a]
        shares.append(float(np.mean(matched)))
    return round(float(np.mean(shares)), 4)


def decision_agreement(rows: Sequence[ProbeRow], similarity: np.ndarray | None, seed: int = 0) -> Figure:
    """Share of customers whose simulated decision is the real one (`real` is 1 by definition)."""

    def agree(units: Sequence[ProbeRow]) -> float | None:
        return float(np.mean([r.sim == r.real for r in units])) if units else None

    value = agree(rows)
    ci = bootstrap_ci(rows, agree, seed=seed)
    floor = agreement_floor(rows, similarity, seed)
    beyond = None if ci is None or floor is None else bool(ci[1] < floor)  # worse than another real customer would do
    gap_ci = None if ci is None else [round(ci[0] - 1.0, 4), round(ci[1] - 1.0, 4)]  # `ci` is the gap's, as for every figure
    return Figure(
        sim=None if value is None else round(value, 4), real=1.0, gap=None if value is None else round(value - 1.0, 4), ci=gap_ci, sim_ci=ci,
        noise_floor=floor, n_sim=len(rows), n_real=len(rows), beyond_noise=beyond,
    )


DECISION_FIGURES = ("decision_agreement", "walk_away_rate", "agree_rate", "callback_rate")
NO_DECISIONS = "no held-out real call ends in a decision (every outcome is 'unknown'): nothing to compare the simulated decisions with"


def decision_figures(rows: Sequence[ProbeRow], similarity: np.ndarray | None, seed: int) -> dict[str, Figure]:
    """Decision agreement and the outcome rates; n/a, with why, when no real customer decided."""
    if not any(r.real != "undecided" for r in rows):
        return {key: Figure.unavailable(NO_DECISIONS if rows else "no customers probed", len(rows)) for key in DECISION_FIGURES}
    return {
        "decision_agreement": decision_agreement(rows, similarity, seed),
        "walk_away_rate": compare_paired(rows, lambda u: _rate(u, "sim", WALK_AWAY), lambda u: _rate(u, "real", WALK_AWAY), seed=seed),
        "agree_rate": compare_paired(rows, lambda u: _rate(u, "sim", {"agreed"}), lambda u: _rate(u, "real", {"agreed"}), seed=seed),
        "callback_rate": compare_paired(rows, lambda u: _rate(u, "sim", {"callback"}), lambda u: _rate(u, "real", {"callback"}), seed=seed),
    }


def probe_figures(rows: Sequence[ProbeRow], similarity: np.ndarray | None = None, seed: int = 0) -> dict[str, Figure]:
    """Every aggregate figure of the probe (rows that ended in an error are left out by the caller)."""
    figures = {
        **decision_figures(rows, similarity, seed),
        "exit_turn_w1": paired_distance(
            rows, lambda u: _w1([r.sim_exit for r in u], [r.real_exit for r in u]), lambda a, b: _w1([r.real_exit for r in a], [r.real_exit for r in b]), seed=seed
        ),
        "reply_length_w1": paired_distance(rows, lambda u: _w1(_words(u, "sim"), _words(u, "real")), lambda a, b: _w1(_words(a, "real"), _words(b, "real")), seed=seed),
        "nonbuyer_depth_bias": compare_paired(rows, lambda u: _nonbuyer_depth(u, "sim"), lambda u: _nonbuyer_depth(u, "real"), seed=seed),
    }
    if any(r.sim_coherence for r in rows):
        figures["coherence"] = compare_paired(rows, lambda u: _mean_of(u, "sim_coherence"), lambda u: _mean_of(u, "real_coherence"), seed=seed)
    return figures


def confusion(rows: Sequence[ProbeRow]) -> dict[str, dict[str, int]]:
    """Counts of (real decision → simulated decision)."""
    counts = Counter((r.real, r.sim) for r in rows)
    return {real: {sim: counts[(real, sim)] for sim in DECISIONS} for real in DECISIONS}


def probe_warnings(rows: Sequence[ProbeRow], ok: Sequence[ProbeRow], coherence_off: str | None = None) -> list[str]:
    """What the figures of one variant cannot say, in words (kept in probe.json and on the page)."""
    warnings = []
    if failed := len(rows) - len(ok):
        warnings.append(f"{count(failed, 'simulated call')} of {len(rows)} ended in an error and {'is' if failed == 1 else 'are'} left out of every figure")
    undecided = sum(r.real == "undecided" for r in ok)
    if ok and undecided == len(ok):
        warnings.append(f"{NO_DECISIONS}; decision agreement and the walk-away, agree and callback rates are n/a. Give the corpus's outcomes to probe decisions")
    elif undecided:
        warnings.append(f"{count(undecided, 'held-out real call')} of {len(ok)} {'ends' if undecided == 1 else 'end'} without a decision (outcome 'unknown'): counted as 'undecided' in the decision figures")
    if len(ok) < 4:
        warnings.append(f"{count(len(ok), 'customer')} probed: a noise floor needs at least 4, so no gap is called beyond noise")
    if ok and not any(r.sim_coherence for r in ok) and coherence_off is None:
        warnings.append("coherence not probed: the sim folder has no coherence scorer (too few calls to train one)")
    elif ok and coherence_off:
        warnings.append(f"coherence not probed: {coherence_off}")
    return warnings


def decision_distributions(rows: Sequence[ProbeRow]) -> tuple[list[dict[str, float]], str]:
    """Each twin's P(decision): the fitted odds over its script where every row has them, else its
    one sampled decision as a 0/1 row (said in the label: a single draw scores worse than the
    probabilities it was drawn from)."""
    if rows and all(r.sim_odds for r in rows):
        return [dict(r.sim_odds or {}) for r in rows], "the fitted hazard's odds over each replayed script (the twin's call is one draw from them)"
    return [{r.sim: 1.0} for r in rows], "each twin's one sampled decision (a 0/1 probability)"


def decision_scoring(rows: Sequence[ProbeRow], base_rates: dict[str, float] | None, seed: int) -> dict[str, Any] | None:
    """Rates with intervals, agreement, Brier and log loss of P(agree) against the training calls'
    base rate and majority guess, on the customers whose real decision is known."""
    decided = [r for r in rows if r.real != "undecided"]
    if not decided or not base_rates:
        return None
    distributions, source = decision_distributions(decided)
    return decision_check(distributions, [r.real for r in decided], base_rates, source, seed).model_dump()


def confusion_intervals(rows: Sequence[ProbeRow]) -> dict[str, dict[str, list[float] | None]]:
    """Wilson 95 % interval of each cell as a share of its real row (how sure the matrix is)."""
    counts = confusion(rows)
    return {real: {sim: wilson(n, sum(cells.values())) for sim, n in cells.items()} for real, cells in counts.items() if sum(cells.values())}


def probe_summary(
    rows: Sequence[ProbeRow], similarity: np.ndarray | None = None, seed: int = 0, base_rates: dict[str, float] | None = None, coherence_off: str | None = None
) -> dict[str, Any]:
    """figures, confusion, outcome rates, the majority baseline, the decision scores and warnings
    for one simulated variant. `base_rates` are the training calls' decision shares (probe names);
    `coherence_off` says why coherence was not asked for, when it was not."""
    keep = [i for i, r in enumerate(rows) if r.error is None]
    ok = [rows[i] for i in keep]
    similarity = similarity[np.ix_(keep, keep)] if similarity is not None else None
    decided = any(r.real != "undecided" for r in ok)
    majority = Counter(r.real for r in ok).most_common(1) if decided else []  # no decision to guess: n/a
    return {
        "n": len(ok),
        "errors": len(rows) - len(ok),
        "forced": sum(r.forced for r in ok),
        "figures": {k: v.model_dump() for k, v in probe_figures(ok, similarity, seed).items()},
        "majority_baseline": round(majority[0][1] / len(ok), 4) if majority else None,
        "confusion": confusion(ok),
        "confusion_intervals": confusion_intervals(ok),
        "decisions": decision_scoring(ok, base_rates, seed),
        "decided_by": dict(Counter(r.decided_by or "none" for r in ok)),
        "warnings": probe_warnings(rows, ok, coherence_off),
        "rows": [r.model_dump() for r in rows],
    }
