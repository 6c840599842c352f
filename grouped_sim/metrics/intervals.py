"""Intervals and noise floors: when a gap between simulated and real calls is a gap.

Every figure is computed over dialogues, so its uncertainty comes from resampling dialogues:
a percentile bootstrap (dialogues drawn with replacement, `resamples` times, seeded). A gap is
only a gap when it is larger than the same figure between two random halves of the real calls
(the human-vs-human noise floor, averaged over `splits` random halvings).

A statistic here is any function from a list of units (usually dialogues, or precomputed
per-dialogue values) to a number or None; a distance is a function of two such lists.
Units are kept whole, so a dialogue's turns are never split across a resample.

Two statistics come vectorised (`MEAN` over numbers, `RATIO` over [numerator, denominator]
pairs): every resample of those is drawn and evaluated in one numpy pass, which is what lets a
report carry a hundred intervals in a second. Any other callable takes the plain loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, Field

U = TypeVar("U")
Stat = Callable[[Sequence[Any]], float | None]
Distance = Callable[[Sequence[Any], Sequence[Any]], float | None]

RESAMPLES = 1000
SPLITS = 200
LEVEL = 0.95


class Figure(BaseModel):
    """One figure, simulated vs real, with its uncertainty and the noise floor it must clear."""

    sim: float | None
    real: float | None
    gap: float | None = Field(description="sim - real (for a distance: the distance itself)")
    ci: list[float] | None = Field(None, description="95 % bootstrap interval of the gap")
    sim_ci: list[float] | None = None
    real_ci: list[float] | None = None
    noise_floor: float | None = Field(None, description="mean |figure(half A) - figure(half B)| over random halves of the real calls")
    n_sim: int = 0
    n_real: int = 0
    beyond_noise: bool | None = Field(None, description="the gap's interval excludes 0 and |gap| exceeds the noise floor (None: no interval or no floor to clear)")
    why: str | None = Field(None, description="why the figure is n/a, when it is: said instead of a number that cannot stand")

    @classmethod
    def unavailable(cls, why: str, n: int = 0) -> Figure:
        """A figure that cannot be computed from these calls, and the reason shown in its place."""
        return cls(sim=None, real=None, gap=None, n_sim=n, n_real=n, why=why)


class Vectorised:
    """A statistic that can also evaluate many resamples at once: `batch(values, index)` gives one
    value per row of `index` (rows of unit positions), NaN where the statistic is undefined."""

    def __call__(self, units: Sequence[Any]) -> float | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def array(self, units: Sequence[Any]) -> np.ndarray:
        return np.asarray(units, dtype=float)

    def batch(self, values: np.ndarray, index: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError


class Mean(Vectorised):
    """The mean of numeric units (None for none)."""

    def __call__(self, units: Sequence[Any]) -> float | None:
        return float(np.mean(np.asarray(units, dtype=float))) if len(units) else None

    def batch(self, values: np.ndarray, index: np.ndarray) -> np.ndarray:
        return values[index].mean(axis=1)


class Ratio(Vectorised):
    """Σ numerators / Σ denominators of [numerator, denominator] units: a turn-level rate pooled
    over dialogues (None when the denominators sum to 0)."""

    def __call__(self, units: Sequence[Any]) -> float | None:
        total = sum(u[1] for u in units)
        return sum(u[0] for u in units) / total if total else None

    def array(self, units: Sequence[Any]) -> np.ndarray:
        return np.asarray(units, dtype=float).reshape(-1, 2)

    def batch(self, values: np.ndarray, index: np.ndarray) -> np.ndarray:
        num, den = values[index, 0].sum(axis=1), values[index, 1].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


MEAN = Mean()
RATIO = Ratio()


def _draws(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, n, (resamples, n))


def _finite(values: np.ndarray) -> list[float]:
    return [float(v) for v in values[np.isfinite(values)]]


def _resample(units: Sequence[U], rng: np.random.Generator) -> list[U]:
    return [units[i] for i in rng.integers(0, len(units), len(units))]


def _percentiles(values: list[float], level: float = LEVEL) -> list[float] | None:
    if not values:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return [round(float(low), 4), round(float(high), 4)]


def bootstrap_ci(units: Sequence[Any], stat: Stat, resamples: int = RESAMPLES, seed: int = 0) -> list[float] | None:
    """95 % percentile interval of `stat` over units drawn with replacement (None: no data)."""
    if len(units) == 0:
        return None
    rng = np.random.default_rng(seed)
    if isinstance(stat, Vectorised):
        return _percentiles(_finite(stat.batch(stat.array(units), _draws(len(units), resamples, rng))))
    values = [v for v in (stat(_resample(units, rng)) for _ in range(resamples)) if v is not None]
    return _percentiles(values)


def paired_ci(pairs: Sequence[Any], stat: Stat, resamples: int = RESAMPLES, seed: int = 0) -> list[float] | None:
    """Interval for a statistic of matched pairs: pairs are resampled together, never split."""
    return bootstrap_ci(pairs, stat, resamples, seed)


def halves(units: Sequence[U], rng: np.random.Generator) -> tuple[list[U], list[U]]:
    order = rng.permutation(len(units))
    cut = len(units) // 2
    return [units[i] for i in order[:cut]], [units[i] for i in order[cut:]]


def noise_floor(real: Sequence[Any], figure_of: Distance, splits: int = SPLITS, seed: int = 0) -> float | None:
    """Mean |figure| between two random halves of the real units (`figure_of(a, b)` gives the gap)."""
    if len(real) < 4:
        return None
    rng = np.random.default_rng(seed)
    if isinstance(figure_of, _VectorisedGap):
        order = np.argsort(rng.random((splits, len(real))), axis=1)
        cut = len(real) // 2
        values = figure_of.stat.array(real)
        diffs = figure_of.stat.batch(values, order[:, :cut]) - figure_of.stat.batch(values, order[:, cut:])
        kept = np.abs(diffs[np.isfinite(diffs)])
        return round(float(kept.mean()), 4) if kept.size else None
    gaps = []
    for _ in range(splits):
        a, b = halves(real, rng)
        value = figure_of(a, b)
        if value is not None:
            gaps.append(abs(value))
    return round(float(np.mean(gaps)), 4) if gaps else None


class _VectorisedGap:
    """stat(a) - stat(b) for a vectorised statistic (lets the noise floor take the numpy path)."""

    def __init__(self, stat: Vectorised) -> None:
        self.stat = stat

    def __call__(self, a: Sequence[Any], b: Sequence[Any]) -> float | None:
        sa, sb = self.stat(a), self.stat(b)
        return None if sa is None or sb is None else sa - sb


def difference(stat: Stat) -> Distance:
    """stat(a) - stat(b): the figure whose size between halves of one set is its noise floor."""
    return _difference(stat)


def _difference(stat: Stat) -> Distance:
    if isinstance(stat, Vectorised):
        return _VectorisedGap(stat)

    def gap(a: Sequence[Any], b: Sequence[Any]) -> float | None:
        sa, sb = stat(a), stat(b)
        return None if sa is None or sb is None else sa - sb

    return gap


def _beyond(ci: list[float] | None, gap: float | None, floor: float | None) -> bool | None:
    """Beyond noise: the interval excludes 0 and the gap is larger than the floor. Without a floor
    (fewer than 4 real calls to halve) nothing says how large noise is, so the answer is None."""
    if ci is None or gap is None or floor is None:
        return None
    return bool((ci[0] > 0 or ci[1] < 0) and abs(gap) > floor)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def compare_stat(sim: Sequence[Any], real: Sequence[Any], stat: Stat, resamples: int = RESAMPLES, seed: int = 0) -> Figure:
    """A per-set statistic (a rate, a mean) for two independent sets of dialogues."""
    s, r = stat(sim), stat(real)
    gap = None if s is None or r is None else s - r
    rng = np.random.default_rng(seed)
    gaps: list[float] = []
    if len(sim) and len(real) and isinstance(stat, Vectorised):
        diffs = stat.batch(stat.array(sim), _draws(len(sim), resamples, rng)) - stat.batch(stat.array(real), _draws(len(real), resamples, rng))
        gaps = _finite(diffs)
    elif len(sim) and len(real):
        for _ in range(resamples):
            g = _difference(stat)(_resample(sim, rng), _resample(real, rng))
            if g is not None:
                gaps.append(g)
    ci = _percentiles(gaps)
    floor = noise_floor(real, _difference(stat), seed=seed)
    return Figure(
        sim=_round(s), real=_round(r), gap=_round(gap), ci=ci, sim_ci=bootstrap_ci(sim, stat, resamples, seed), real_ci=bootstrap_ci(real, stat, resamples, seed),
        noise_floor=floor, n_sim=len(sim), n_real=len(real), beyond_noise=_beyond(ci, gap, floor),
    )


def compare_distance(sim: Sequence[Any], real: Sequence[Any], distance: Distance, resamples: int = RESAMPLES, seed: int = 0) -> Figure:
    """A distance between the two sets (e.g. Wasserstein of reply lengths); `real` is 0 by definition."""
    d = distance(sim, real) if len(sim) and len(real) else None
    rng = np.random.default_rng(seed)
    values = []
    if d is not None:
        for _ in range(resamples):
            v = distance(_resample(sim, rng), _resample(real, rng))
            if v is not None:
                values.append(v)
    ci = _percentiles(values)
    floor = noise_floor(real, distance, seed=seed)
    beyond = None if d is None or floor is None or ci is None else bool(ci[0] > floor)
    return Figure(sim=_round(d), real=0.0, gap=_round(d), ci=ci, noise_floor=floor, n_sim=len(sim), n_real=len(real), beyond_noise=beyond)


def compare_paired(rows: Sequence[Any], sim_stat: Stat, real_stat: Stat, resamples: int = RESAMPLES, seed: int = 0) -> Figure:
    """A statistic of matched pairs (each row: one real customer and its simulated twin).

    Rows are resampled whole, so the gap's interval keeps the pairing; the noise floor is the
    real statistic between two random halves of the rows.
    """
    s, r = sim_stat(rows), real_stat(rows)
    gap = None if s is None or r is None else s - r

    def paired_gap(units: Sequence[Any]) -> float | None:
        a, b = sim_stat(units), real_stat(units)
        return None if a is None or b is None else a - b

    ci = bootstrap_ci(rows, paired_gap, resamples, seed)
    floor = noise_floor(rows, _difference(real_stat), seed=seed)
    return Figure(
        sim=_round(s), real=_round(r), gap=_round(gap), ci=ci, sim_ci=bootstrap_ci(rows, sim_stat, resamples, seed), real_ci=bootstrap_ci(rows, real_stat, resamples, seed),
        noise_floor=floor, n_sim=len(rows), n_real=len(rows), beyond_noise=_beyond(ci, gap, floor),
    )


def paired_distance(rows: Sequence[Any], distance: Callable[[Sequence[Any]], float | None], halves_distance: Distance, resamples: int = RESAMPLES, seed: int = 0) -> Figure:
    """A distance between the simulated and real sides of matched rows (e.g. exit-turn Wasserstein).

    `distance(rows)` compares the two sides of the same rows; `halves_distance(a, b)` compares the
    real sides of two sets of rows (the noise floor).
    """
    d = distance(rows) if len(rows) else None
    ci = bootstrap_ci(rows, distance, resamples, seed) if d is not None else None
    floor = noise_floor(rows, halves_distance, seed=seed)
    beyond = None if d is None or floor is None or ci is None else bool(ci[0] > floor)
    return Figure(sim=_round(d), real=0.0, gap=_round(d), ci=ci, noise_floor=floor, n_sim=len(rows), n_real=len(rows), beyond_noise=beyond)
