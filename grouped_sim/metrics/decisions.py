"""How well a simulator's P(agree) predicts what real customers decided: proper scores against the
models a team could use without any simulator.

Decision agreement (does a sampled twin decide as the real person did) is noisy with one draw per
customer and says nothing about confidence. A probability can be scored properly: the Brier score
(mean squared error of P(agree) against 1 if the real person agreed) and the log loss, each
against two baselines that need no simulator at all: the base-rate model (every customer agrees
with the share of training calls that agreed) and the majority guess (everyone decides as most
training customers did, P = 1 or 0). A simulator whose P(agree) does not beat the base rate knows
nothing about the individual that the rate does not. Intervals are bootstrap intervals over
customers of the paired difference, so "beats the base rate" means the whole interval is below 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from grouped_sim.metrics.intervals import bootstrap_ci

EPSILON = 1e-3  # P(agree) is clipped to [EPSILON, 1 - EPSILON] for the log loss: a 0/1 guess scores finitely
RELIABILITY_BINS = 5
MIN_MINORITY = 5  # customers deciding against the majority below which agreement cannot beat the majority guess in a way that means anything


class Score(BaseModel):
    """A mean score over customers, with its 95 % bootstrap interval."""

    value: float
    ci: list[float] | None = None


class ReliabilityBin(BaseModel):
    """Customers whose P(agree) fell in [low, high): what was predicted and what happened."""

    low: float
    high: float
    n: int
    predicted: float = Field(description="mean P(agree) of the bin")
    observed: float = Field(description="share of the bin's real customers who agreed")


class DecisionScores(BaseModel):
    """Proper scores of P(agree) for n customers, next to the base-rate model and the majority guess."""

    n: int
    agreed: int = Field(description="real customers among the n who agreed")
    base_rate: float = Field(description="P(agree) of the base-rate model: the training calls' share of agreements")
    majority: str = Field(description="the majority guess: 'agreed' or 'not agreed', from the training calls")
    brier: Score
    brier_base_rate: Score
    brier_majority: Score
    brier_gain: Score = Field(description="Brier of the simulator minus the base rate's, per customer (below 0: better)")
    log_loss: Score
    log_loss_base_rate: Score
    log_loss_majority: Score
    beats_base_rate: bool | None = Field(None, description="the interval of brier_gain lies below 0 (None: no interval)")
    reliability: list[ReliabilityBin] = Field(default_factory=list)
    note: str | None = Field(None, description="what the scores cannot say, when there is something")


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(p, EPSILON, 1.0 - EPSILON)


def _brier(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (p - y) ** 2


def _log_loss(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    q = _clip(p)
    return -(y * np.log(q) + (1 - y) * np.log(1 - q))


def _score(values: np.ndarray, seed: int) -> Score:
    ci = bootstrap_ci(list(values), lambda units: float(np.mean(units)), seed=seed)
    return Score(value=round(float(np.mean(values)), 4), ci=[round(v, 4) for v in ci] if ci else None)


def reliability(p: Sequence[float], agreed: Sequence[bool], bins: int = RELIABILITY_BINS) -> list[ReliabilityBin]:
    """Equal-width bins of P(agree) over [0, 1]; empty bins are left out."""
    probs, ys = np.asarray(p, dtype=float), np.asarray(agreed, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    found = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (probs >= low) & ((probs < high) | (high == 1.0))
        if inside.any():
            found.append(ReliabilityBin(low=round(low, 2), high=round(high, 2), n=int(inside.sum()), predicted=round(float(probs[inside].mean()), 4), observed=round(float(ys[inside].mean()), 4)))
    return found


def decision_scores(p_agree: Sequence[float], agreed: Sequence[bool], base_rate: float, seed: int = 0) -> DecisionScores:
    """Score P(agree) of each customer against whether they agreed; `base_rate` comes from the
    training calls (never from these customers: that would hand the baseline their answers)."""
    p, y = np.asarray(p_agree, dtype=float), np.asarray(agreed, dtype=float)
    if len(p) == 0 or len(p) != len(y):
        raise ValueError(f"{len(p)} probabilities for {len(y)} customers: need the same number, at least one")
    base = np.full_like(p, base_rate)
    majority = np.full_like(p, 1.0 if base_rate > 0.5 else 0.0)
    gain = _brier(p, y) - _brier(base, y)
    gain_score = _score(gain, seed)
    note = None
    if y.min() == y.max():
        note = "every real customer here decided the same way: the scores reward confidence in that one answer, not telling customers apart"
    return DecisionScores(
        n=len(p), agreed=int(y.sum()), base_rate=round(base_rate, 4), majority="agreed" if base_rate > 0.5 else "not agreed",
        brier=_score(_brier(p, y), seed), brier_base_rate=_score(_brier(base, y), seed), brier_majority=_score(_brier(majority, y), seed),
        brier_gain=gain_score, log_loss=_score(_log_loss(p, y), seed), log_loss_base_rate=_score(_log_loss(base, y), seed),
        log_loss_majority=_score(_log_loss(majority, y), seed), beats_base_rate=None if gain_score.ci is None else gain_score.ci[1] < 0,
        reliability=reliability(p, y.astype(bool)), note=note,
    )


def wilson(successes: int, n: int, z: float = 1.96) -> list[float] | None:
    """The Wilson 95 % interval of a share (None for n = 0): sound at 0 of n and n of n, where a
    bootstrap interval collapses to a point."""
    if n == 0:
        return None
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(float(max(0.0, centre - half)), 4), round(float(min(1.0, centre + half)), 4)]


class RateCheck(BaseModel):
    """One outcome's simulated rate (mean probability over customers) against the real share."""

    outcome: str
    predicted: float
    real: float
    real_ci: list[float] | None = Field(None, description="Wilson 95 % interval of the real share")
    within: bool | None = Field(None, description="the predicted rate lies inside the real share's interval")


class DecisionCheck(BaseModel):
    """Everything said about a simulator's decisions on n real customers whose decision is known."""

    n: int
    probability: str = Field(description="where each customer's outcome probabilities came from")
    rates: list[RateCheck]
    same_decision: Score = Field(description="mean P(the twin decides as the real person did)")
    majority_same: float = Field(description="the same for the majority guess of the training calls")
    scores: DecisionScores
    minority: int = Field(0, description="real customers who decided other than the majority guess")
    note: str | None = Field(None, description="what these customers cannot show, when there is something")


def rate_checks(distributions: Sequence[dict[str, float]], real: Sequence[str], outcomes: Sequence[str]) -> list[RateCheck]:
    checks = []
    for outcome in outcomes:
        predicted = float(np.mean([d.get(outcome, 0.0) for d in distributions]))
        hits = sum(r == outcome for r in real)
        ci = wilson(hits, len(real))
        within = None if ci is None else ci[0] <= predicted <= ci[1]
        checks.append(RateCheck(outcome=outcome, predicted=round(predicted, 4), real=round(hits / len(real), 4), real_ci=ci, within=within))
    return checks


def decision_check(distributions: Sequence[dict[str, float]], real: Sequence[str], base_rates: dict[str, float], probability: str, seed: int = 0) -> DecisionCheck:
    """Rates, agreement and proper scores of P(agree) for customers with a known decision.

    `distributions` gives each customer's P(outcome) (a sampled decision is a one-hot row),
    `real` their real decision, `base_rates` the training calls' outcome shares (the baselines)."""
    outcomes = sorted({*base_rates, *real, *(o for d in distributions for o in d)})
    majority = max(base_rates, key=lambda o: base_rates[o]) if base_rates else outcomes[0]
    same = np.array([d.get(r, 0.0) for d, r in zip(distributions, real)])
    ci = bootstrap_ci(list(same), lambda units: float(np.mean(units)), seed=seed)
    minority = sum(r != majority for r in real)
    note = None
    if minority < MIN_MINORITY:
        note = (
            f"only {minority} of {len(real)} real customers decided other than the majority guess ({majority}): too few to show that the simulator "
            "tells customers apart better than that guess; the rates are what these calls can check"
        )
    return DecisionCheck(
        n=len(real), probability=probability, rates=rate_checks(distributions, real, outcomes), minority=minority, note=note,
        same_decision=Score(value=round(float(same.mean()), 4), ci=[round(v, 4) for v in ci] if ci else None),
        majority_same=round(float(np.mean([r == majority for r in real])), 4),
        scores=decision_scores([d.get("agreed", 0.0) for d in distributions], [r == "agreed" for r in real], base_rates.get("agreed", 0.0), seed),
    )
