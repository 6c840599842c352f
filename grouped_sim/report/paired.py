"""Agent A vs agent B on the same customers: paired differences, call by call.

Two runs made with `simulate --plan-from` (or any two runs of the same profiles) are paired by
customer (a hash of profile and domain) and trial. Each figure is B minus A over the pairs; its
95 % interval comes from a cluster bootstrap that resamples customers with all their trials (the
trials of one customer are not independent), and the noise floor is the same figure between two
random halves of A's own customers: a difference is beyond noise when its interval excludes 0
and it is larger than that floor. Conversion also gets McNemar's exact test on the discordant
pairs (pairs are taken as independent there, so with trials it is a little optimistic: the
cluster interval is the one that decides). Pairs where either call failed for a reason not the
agent's (customer model, manager, store, infrastructure) are left out and counted, as
tau2-bench's paired report does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from grouped_sim.errors import count
from grouped_sim.metrics.intervals import Vectorised, difference, noise_floor, paired_ci
from grouped_sim.report.scorecard import HABITS, ScorecardContext, call_records

Pair = tuple[dict[str, Any], dict[str, Any]]
RATES = (("conversion", "agreed"), ("conversion_with_callback", "converted"), ("walk_away", "walked"), ("cut_off", "cut_off"))


def pair_key(records: Sequence[dict[str, Any]]) -> dict[tuple[str, int, int], dict[str, Any]]:
    """(customer, trial, k-th such call by seed) -> record: the same customer may be planned twice."""
    out: dict[tuple[str, int, int], dict[str, Any]] = {}
    ordered = sorted(records, key=lambda r: (r["customer"], r["trial"], str(r["seed"]), r["id"]))
    seen: dict[tuple[str, int], int] = {}
    for r in ordered:
        k = (r["customer"], r["trial"])
        seen[k] = seen.get(k, -1) + 1
        out[(r["customer"], r["trial"], seen[k])] = r
    return out


class PairedMean(Vectorised):
    """Mean of B - A (or of A alone) over the pairs of resampled customers (clusters)."""

    def __init__(self, value: Callable[[dict[str, Any]], float | None], side: str = "diff") -> None:
        self.value = value
        self.side = side

    def _cluster(self, cluster: Sequence[Pair]) -> list[float]:
        """[Σ value, count] of one customer's usable pairs."""
        total, count = 0.0, 0
        for a, b in cluster:
            va, vb = self.value(a), self.value(b)
            if va is None or vb is None:
                continue
            total += (vb - va) if self.side == "diff" else va
            count += 1
        return [total, count]

    def array(self, units: Sequence[Any]) -> np.ndarray:
        return np.asarray([self._cluster(c) for c in units], dtype=float).reshape(-1, 2)

    def __call__(self, units: Sequence[Any]) -> float | None:
        arr = self.array(units)
        return float(arr[:, 0].sum() / arr[:, 1].sum()) if len(arr) and arr[:, 1].sum() else None

    def batch(self, values: np.ndarray, index: np.ndarray) -> np.ndarray:
        num, den = values[index, 0].sum(axis=1), values[index, 1].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def mcnemar(pairs: Sequence[Pair], key: str) -> dict[str, Any]:
    """Exact McNemar test: B-only successes vs A-only successes among the discordant pairs."""
    b_only = sum(1 for a, b in pairs if b[key] and not a[key])
    a_only = sum(1 for a, b in pairs if a[key] and not b[key])
    n = a_only + b_only
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(min(a_only, b_only) + 1)) / 2**n)
    return {"b_only": b_only, "a_only": a_only, "p": round(p, 4)}


def _figure(clusters: Sequence[Sequence[Pair]], value: Callable[[dict[str, Any]], float | None]) -> dict[str, Any]:
    diff, baseline = PairedMean(value), PairedMean(value, side="a")
    a_mean = baseline(clusters)
    d = diff(clusters)
    b_mean = None if d is None or a_mean is None else a_mean + d
    ci = paired_ci(list(clusters), diff)
    floor = noise_floor(list(clusters), difference(baseline))  # A's own figure between halves of its customers
    beyond = None if ci is None or d is None or floor is None else bool((ci[0] > 0 or ci[1] < 0) and abs(d) > floor)  # no floor (< 4 customers): unknown
    n = int(diff.array(clusters)[:, 1].sum()) if len(clusters) else 0
    return {"a": _r(a_mean), "b": _r(b_mean), "diff": _r(d), "ci": ci, "noise_floor": floor, "beyond_noise": beyond, "pairs": n}


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _call(r: dict[str, Any]) -> dict[str, Any]:
    return {"dialogue_id": r["id"], "outcome": r["outcome"], "exit_turn": r["exit_turn"]}


def won_and_lost(clusters: dict[str, list[Pair]], key: str = "agreed") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Customers B converted more often than A did (won), and less often (lost), over their trials."""
    won, lost = [], []
    for customer, pairs in sorted(clusters.items()):
        a = sum(p[0][key] for p in pairs)
        b = sum(p[1][key] for p in pairs)
        if a == b:
            continue
        first = pairs[0][0]
        row = {
            "customer": customer, "archetype": first["archetype"], "tier": first["tier"], "domain": first["domain"], "summary": first["summary"],
            "trials": len(pairs), "a_converted": a, "b_converted": b,
            "calls": [{"trial": pa["trial"], "a": _call(pa), "b": _call(pb)} for pa, pb in sorted(pairs, key=lambda p: p[0]["trial"])],
        }
        (won if b > a else lost).append(row)
    return won, lost


def paired_comparison(a_dialogues: Sequence[Any], b_dialogues: Sequence[Any], ctx: ScorecardContext, names: tuple[str, str] = ("A", "B")) -> dict[str, Any] | None:
    """B minus A over matched calls (None when the two runs share no customer)."""
    a_records, b_records = call_records(a_dialogues, ctx), call_records(b_dialogues, ctx)
    a_keys, b_keys = pair_key(a_records), pair_key(b_records)
    shared = sorted(set(a_keys) & set(b_keys))
    if not shared:
        return None
    excluded = {"a_not_scored": 0, "b_not_scored": 0}
    pairs: list[Pair] = []
    for k in shared:
        a, b = a_keys[k], b_keys[k]
        if not a["scored"]:
            excluded["a_not_scored"] += 1
        if not b["scored"]:
            excluded["b_not_scored"] += 1
        if a["scored"] and b["scored"]:
            pairs.append((a, b))
    clusters: dict[str, list[Pair]] = {}
    for p in pairs:
        clusters.setdefault(p[0]["customer"], []).append(p)
    units = list(clusters.values())
    figures: dict[str, Any] = {}
    for name, key in RATES:
        figures[name] = _figure(units, lambda r, key=key: r[key])
        if name != "cut_off":
            figures[name]["mcnemar"] = mcnemar(pairs, key)
    figures["exit_turn"] = _figure(units, lambda r: r["exit_turn"])
    for habit in HABITS:
        figures[habit] = _figure(units, lambda r, habit=habit: r["habits"][habit])
    stages = [s for s in ctx.stages if any(s in r["stages"] for p in pairs for r in p)]
    stages += sorted({s for p in pairs for r in p for s in r["stages"]} - set(stages))
    funnel = {s: _figure(units, lambda r, s=s: int(s in r["stages"])) for s in stages}
    lost_at: dict[str, dict[str, int]] = {}
    for side, index in (("a", 0), ("b", 1)):
        for p in pairs:
            lost = p[index]["lost"]
            if lost:
                lost_at.setdefault(lost["stage"], {"a": 0, "b": 0})[side] += 1
    won, lost = won_and_lost(clusters)
    same_seeds = all(a["seed"] == b["seed"] for a, b in pairs)
    return {
        "a": names[0],
        "b": names[1],
        "pairs": len(pairs),
        "customers": len(clusters),
        "same_seeds": same_seeds,
        "unpaired": {"a": len(a_keys) - len(shared), "b": len(b_keys) - len(shared)},
        "excluded": excluded,
        "figures": figures,
        "funnel": funnel,
        "lost_at": dict(sorted(lost_at.items(), key=lambda kv: -(kv[1]["a"] + kv[1]["b"]))),
        "won": won,
        "lost": lost,
    }


def pairing_warnings(block: dict[str, Any] | None, names: tuple[str, str], baseline_dir: Any) -> list[str]:
    """What a paired comparison leaves out, said where the figures are (terminal, JSON, markdown,
    HTML): no customer in common, or calls without a twin in the other run."""
    a, b = names
    if block is None:
        return [f"{b} shares no customer with {a}: no paired comparison, only the side-by-side figures. To compare two agents "
                f"on the same customers, run the second with grouped-sim simulate --plan-from {baseline_dir} --out DIR"]
    warnings = []
    if block["unpaired"]["a"] or block["unpaired"]["b"]:
        warnings.append(f"{b} vs {a}: {count(block['customers'], 'customer')} in common; {count(block['unpaired']['a'], 'call')} of {a} and "
                        f"{count(block['unpaired']['b'], 'call')} of {b} have no twin in the other run and are left out of the paired figures")
    if sum(block["excluded"].values()):
        warnings.append(f"{b} vs {a}: {count(sum(block['excluded'].values()), 'pair')} left out because a call could not be scored (it ended in an error)")
    if block["customers"] < 4:
        warnings.append(f"{b} vs {a}: {count(block['customers'], 'customer')} paired: a noise floor needs at least 4, so no difference is called beyond noise")
    return warnings


def paired_rows(paired: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, figure) rows of a paired comparison, in table order (figures, then the funnel)."""
    rows = [(name.replace("_", " "), fig) for name, fig in paired["figures"].items()]
    rows += [(f"reached {stage}", fig) for stage, fig in paired["funnel"].items()]
    return rows
