"""Every headline figure as per-dialogue units and a statistic over them.

A figure of the report is a function of a set of dialogues; written as per-dialogue units (a
number, a pair of counts, a list of reply lengths) and a statistic over a list of units, it gets a
95 % bootstrap interval over dialogues, and against a reference corpus the gap, the gap's interval,
the human-vs-human noise floor and whether the gap is beyond noise (`grouped_sim.metrics.intervals`).
report.json keeps the units (`units.simulated`, `units.reference`), so `compare` bootstraps the
differences between runs from report.json alone, without recomputing IRS, realism or judge scores.

Three kinds of figure:
- stat: a rate or a mean (walk-away rate, IRS); its interval is the estimate's;
- gap: the same statistic read as simulated minus real (the walk-away gap, the depth bias); its
  interval is the gap's;
- distance: a distance to the reference (outcome-mix total variation, length Wasserstein); real is
  0 by definition and the interval is the distance's.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grouped_sim.metrics import diversity as div
from grouped_sim.metrics import fidelity as fid
from grouped_sim.metrics.diversity import EmbedFn
from grouped_sim.metrics.intervals import MEAN, RATIO, Ratio, compare_distance, compare_stat
from grouped_sim.report.scorecard import ScorecardContext, call_records
from grouped_sim.role_guard import customer_slips
from grouped_sim.schemas import Dialogue, Outcome

Units = dict[str, list[Any]]
DECISION_ORDER = ("resistance", "neutral", "deliberation", "commitment")


@dataclass(frozen=True)
class FigureSpec:
    units: str
    kind: str  # stat | gap | distance
    stat: Callable[..., float | None]


def _flat(units: Sequence[Any]) -> list[float]:
    return [x for u in units if u for x in u]


def _len_median(units: Sequence[Any]) -> float | None:
    flat = _flat(units)
    return float(statistics.median(flat)) if flat else None


class NonBuyers(Ratio):
    """Over [buyer, resistance, neutral, deliberation, commitment] turn counts per dialogue: a
    share of the non-buyers' customer turns (`state`), or their mean funnel depth (`state=None`)."""

    def __init__(self, state: str | None) -> None:
        self.state = state

    def array(self, units: Sequence[Any]) -> np.ndarray:
        rows = np.asarray(units, dtype=float).reshape(-1, 1 + len(DECISION_ORDER))
        keep = 1.0 - rows[:, 0]
        counts = rows[:, 1:]
        if self.state is None:
            num = counts @ np.asarray([fid.state_depth(s) for s in DECISION_ORDER], dtype=float)
        else:
            num = counts[:, DECISION_ORDER.index(self.state)]
        return np.stack([num * keep, counts.sum(axis=1) * keep], axis=1)

    def __call__(self, units: Sequence[Any]) -> float | None:
        return super().__call__(self.array(units).tolist()) if len(units) else None


def _outcome_tv(a: Sequence[str], b: Sequence[str]) -> float | None:
    if not a or not b:
        return None
    return 0.5 * sum(abs(a.count(o.value) / len(a) - b.count(o.value) / len(b)) for o in Outcome)


def _len_wasserstein(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    return fid.wasserstein(_flat(a), _flat(b))


def _coverage(size: int) -> Callable[[Sequence[Any]], float | None]:
    def coverage(units: Sequence[Any]) -> float | None:
        seen = {s for u in units for s in u}
        return len(seen) / size if seen and size else None

    return coverage


def specs(taxonomy_size: int) -> dict[str, FigureSpec]:
    """The statistic behind each headline figure (keys of `compute.METRICS`)."""
    return {
        "conversion": FigureSpec("agreed", "stat", MEAN),
        "conversion_with_callback": FigureSpec("converted", "stat", MEAN),
        "cut_off": FigureSpec("cut_off", "stat", MEAN),
        "exit_turn": FigureSpec("exit_turn", "stat", MEAN),
        "words_per_turn": FigureSpec("words_per_turn", "stat", MEAN),
        "talk_ratio": FigureSpec("talk_ratio", "stat", MEAN),
        "questions": FigureSpec("questions", "stat", MEAN),
        "pushes_in_a_row": FigureSpec("pushes_in_a_row", "stat", MEAN),
        "judge_pc": FigureSpec("judge_profile_consistency", "stat", MEAN),
        "judge_br": FigureSpec("judge_business_realism", "stat", MEAN),
        "judge_il": FigureSpec("judge_interaction_logic", "stat", MEAN),
        "judge_avg": FigureSpec("judge_overall", "stat", MEAN),
        "tlv": FigureSpec("tlv", "stat", MEAN),
        "irs": FigureSpec("irs", "stat", MEAN),
        "snr": FigureSpec("snr", "stat", MEAN),
        "sop_coverage": FigureSpec("stages", "stat", _coverage(taxonomy_size)),
        "realism": FigureSpec("realism", "stat", RATIO),
        "walk_away": FigureSpec("walk_away", "stat", MEAN),
        "walk_away_gap": FigureSpec("walk_away", "gap", MEAN),
        "outcome_tv": FigureSpec("outcome", "distance", _outcome_tv),
        "nb_resistance": FigureSpec("decisions", "stat", NonBuyers("resistance")),
        "nb_deliberation": FigureSpec("decisions", "stat", NonBuyers("deliberation")),
        "depth_bias": FigureSpec("decisions", "gap", NonBuyers(None)),
        "len_mean": FigureSpec("length_sums", "stat", RATIO),
        "len_median": FigureSpec("lengths", "stat", _len_median),
        "len_wasserstein": FigureSpec("lengths", "distance", _len_wasserstein),
        "role_inversion": FigureSpec("role_inversion", "stat", RATIO),
        "guard_rejected": FigureSpec("guard_rejected", "stat", RATIO),
        "disclosure": FigureSpec("disclosure", "stat", MEAN),
        "completeness": FigureSpec("completeness", "stat", MEAN),
        "redundancy": FigureSpec("redundancy", "stat", MEAN),
        "bleu4": FigureSpec("likeness_bleu4", "stat", MEAN),
        "rougeL": FigureSpec("likeness_rougeL", "stat", MEAN),
        "cosine": FigureSpec("likeness_embedding_cosine", "stat", MEAN),
    }


def _decisions(dialogue: Dialogue) -> list[int]:
    states = [fid.decision_state(t.text) for t in dialogue.customer_turns()]
    return [int(fid.is_buyer(dialogue))] + [states.count(s) for s in DECISION_ORDER]


def _completeness(dialogue: Dialogue) -> float | None:
    sentences = [s for t in dialogue.customer_turns() for s in fid.split_sentences(t.text)]
    return sum(fid.is_complete_sentence(s) for s in sentences) / len(sentences) if sentences else None


def _guard(dialogue: Dialogue) -> list[int]:
    turns = dialogue.customer_turns()
    rejected = sum(sum(1 for r in t.meta.get("rejected", []) if str(r).startswith("seller")) for t in turns)
    return [rejected, len(turns)]


def dialogue_units(
    dialogues: Sequence[Dialogue],
    *,
    taxonomy_ids: Sequence[str],
    embed_fn: EmbedFn | None,
    context: ScorecardContext,
    realism_scores: Sequence[float] | None = None,
    judge_scores: dict[str, list[float | None]] | None = None,
) -> Units:
    """Per-dialogue units of every figure, each list in dialogue order (JSON-ready)."""
    records = call_records(dialogues, context)
    valid = set(taxonomy_ids)
    units: Units = {
        "agreed": [r["agreed"] if r["scored"] else None for r in records],
        "converted": [r["converted"] if r["scored"] else None for r in records],
        "cut_off": [r["cut_off"] if r["scored"] else None for r in records],
        "exit_turn": [r["exit_turn"] if r["scored"] else None for r in records],
        **{name: [r["habits"][name] if r["scored"] else None for r in records] for name in ("words_per_turn", "talk_ratio", "questions", "pushes_in_a_row")},
        "tlv": [div.tlv(div.customer_lengths(d)) for d in dialogues],
        "irs": div.irs_per_dialogue(dialogues, embed_fn) if dialogues else [],
        # as div.mean_snr: no figure for a run without stage labels; a dialogue without any counts 0
        "snr": [div.snr(div.dialogue_stages(d), list(taxonomy_ids)) for d in dialogues] if taxonomy_ids and any(div.dialogue_stages(d) for d in dialogues) else [None] * len(dialogues),
        "stages": [sorted({s for s in div.dialogue_stages(d) if s in valid}) for d in dialogues],
        "walk_away": [int(d.outcome in fid.WALK_AWAY) for d in dialogues],
        "outcome": [d.outcome.value for d in dialogues],
        "decisions": [_decisions(d) for d in dialogues],
        "lengths": [div.customer_lengths(d) for d in dialogues],
        "length_sums": [[sum(div.customer_lengths(d)), len(div.customer_lengths(d))] for d in dialogues],
        "role_inversion": [[sum(customer_slips(d.turns)), len(d.customer_turns())] for d in dialogues],
        "guard_rejected": [_guard(d) for d in dialogues],
        "disclosure": [fid.criteria_count(d.customer_turns()[0].text) if d.customer_turns() else None for d in dialogues],
        "completeness": [_completeness(d) for d in dialogues],
        "redundancy": fid.tfidf_redundancy_per_dialogue(dialogues),
    }
    if realism_scores is not None:  # P(real) of every customer turn, in dialogue order (fidelity.realism)
        per, i = [], 0
        for d in dialogues:
            n = len(d.customer_turns())
            per.append([float(sum(realism_scores[i : i + n])), n])
            i += n
        units["realism"] = per
    for name, values in (judge_scores or {}).items():
        units[f"judge_{name}"] = list(values)
    return units


def figure_of(spec: FigureSpec, sim: Units, ref: Units | None) -> dict[str, Any] | None:
    """One figure from the units of the run and (optionally) of the reference."""
    mine = sim.get(spec.units)
    if mine is None:
        return None
    theirs = ref.get(spec.units) if ref is not None else None
    if spec.kind == "distance":
        if theirs is None:
            return None
        return {"kind": "distance", **compare_distance(_present(mine), _present(theirs), spec.stat).model_dump()}
    return {"kind": spec.kind, **compare_stat(_present(mine), _present(theirs or []), spec.stat).model_dump()}


def _present(units: Sequence[Any]) -> list[Any]:
    return [u for u in units if u is not None]


def figures(sim: Units, ref: Units | None, taxonomy_size: int) -> dict[str, dict[str, Any]]:
    """Every headline figure that has units, keyed like `compute.METRICS`."""
    out = {}
    for key, spec in specs(taxonomy_size).items():
        fig = figure_of(spec, sim, ref)
        if fig is not None and (fig["sim"] is not None or fig["gap"] is not None):
            out[key] = fig
    return out


def shown(fig: dict[str, Any] | None) -> tuple[float | None, list[float] | None]:
    """(value, interval) as a table shows them: the estimate for a stat, the gap for a gap, the distance for a distance."""
    if not fig:
        return None, None
    if fig["kind"] == "gap":
        return fig["gap"], fig["ci"]
    if fig["kind"] == "distance":
        return fig["sim"], fig["ci"]
    return fig["sim"], fig["sim_ci"]


def between_runs(key: str, units: Units, baseline: Units, taxonomy_size: int, reference: Units | None = None) -> dict[str, Any] | None:
    """Run minus baseline for one figure: the difference, its interval (both runs resampled),
    the noise floor (the same figure between two random halves of the baseline's calls) and
    whether the difference is beyond noise. A distance figure compares each run's distance to
    the reference (None without one)."""
    spec = specs(taxonomy_size).get(key)
    if spec is None or spec.units not in units or spec.units not in baseline:
        return None
    stat = spec.stat
    if spec.kind == "distance":
        if reference is None or spec.units not in reference:
            return None
        real = _present(reference[spec.units])
        stat = lambda us, real=real, d=spec.stat: d(us, real)  # noqa: E731
    fig = compare_stat(_present(units[spec.units]), _present(baseline[spec.units]), stat)
    if fig.gap is None:
        return None
    return {"diff": fig.gap, "ci": fig.ci, "noise_floor": fig.noise_floor, "beyond_noise": fig.beyond_noise, "n": fig.n_sim, "n_baseline": fig.n_real}
