"""Fit the light manager's decision dynamics to a team's own calls.

The estimator is a discrete-time competing-risks hazard model: every salesman move of a training
call is one row; its label is `continue`, or the call's outcome (agreed, refused, hung_up,
callback) at the move where the customer decided. A multinomial logistic regression over the
move's features (graphs/dynamics.py `MoveFeatures`: the move's stage, how far into the call,
pushes in a row, objections raised, the archetype, and the share of the customer's K_p neighbours
who agreed) gives, at each move, the probability that a customer like this one ends the call now
and how. Calls with an unknown outcome are censored: their moves count as `continue` and they
contribute no event. The L2 strength is chosen by cross-validation with folds grouped by call,
and the fit is kept only when there are enough decisions to fit; otherwise the hand-set prior
(graphs/data/dynamics.yaml) stays and the reason is recorded. docs/fitting.md has the details.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from grouped_sim.graphs.dynamics import CONTINUE, DECISIONS, HAZARD_ESTIMATOR, FitStatistics, FittedDynamics, HazardModel, MoveFeatures, move_features, move_stages, outcome_distribution
from grouped_sim.metrics.decisions import DecisionCheck, decision_check
from grouped_sim.schemas import Dialogue
from grouped_sim.sop_db.taxonomy import StageKind, Taxonomy

MIN_EVENTS = 12
MIN_CALLS = 20
C_GRID = (0.1, 0.3, 1.0, 3.0)
FOLDS = 5
READING_MARGIN = 0.002  # held-out log loss per move a hazard that reads replies must save to be kept


class CallFacts(BaseModel):
    """What the fit needs of one training call."""

    id: str
    stages: list[str]  # the stage of each salesman move, in order
    archetype: str | None
    propensity: float
    outcome: str  # agreed | refused | hung_up | callback | unknown
    decision_move: int  # 1-based move at which the customer decided (last move for censored calls)
    answers: list[str] = []  # the customer's answer to each salesman move (dynamics.move_answers)


def answered_moves(dialogue: Dialogue) -> int:
    """How many salesman moves came before the customer's last turn."""
    moves = 0
    answered = 0
    previous = None
    for turn in dialogue.turns:
        if turn.role == "salesman" and previous != "salesman":
            moves += 1
        if turn.role == "customer":
            answered = moves
        previous = turn.role
    return answered


def decision_move(dialogue: Dialogue, taxonomy: Taxonomy) -> int:
    """The move at which the customer decided, as a simulated customer would end the call.

    Real calls go on after the decision (the salesman arranges details, says goodbye), a
    simulated one ends at it. So trailing goodbye moves are dropped, and then: an agreement or a
    refusal is the last move before any follow-up arrangements; a callback is the first move of the
    follow-up block. Without stage kinds (another team's taxonomy), it is the last answered move.
    """
    stages = move_stages(dialogue.turns)[: answered_moves(dialogue)]
    kinds = [taxonomy.kind_of(s) for s in stages]
    end = len(kinds)
    while end > 1 and kinds[end - 1] is StageKind.goodbye:
        end -= 1
    if dialogue.outcome.value == "callback":
        start = end
        if end >= 1 and kinds[end - 1] is StageKind.follow_up:
            while start > 1 and kinds[start - 2] is StageKind.follow_up:
                start -= 1
        return max(1, start)
    while end > 1 and kinds[end - 1] is StageKind.follow_up and dialogue.outcome.value in ("agreed", "refused", "hung_up"):
        end -= 1
    return max(1, end)


def training_rows(calls: Sequence[CallFacts], taxonomy: Taxonomy) -> tuple[list[MoveFeatures], list[str], list[int]]:
    """(features, label, call index) for every move up to each call's decision."""
    rows: list[MoveFeatures] = []
    labels: list[str] = []
    groups: list[int] = []
    for index, call in enumerate(calls):
        for move in range(1, min(call.decision_move, len(call.stages)) + 1):
            decided = move == call.decision_move and call.outcome in DECISIONS
            if move == call.decision_move and not decided:
                break  # censored: the call stopped without a known decision
            rows.append(move_features(taxonomy, call.stages[:move], call.archetype, call.propensity, call.answers[: move - 1]))
            labels.append(call.outcome if decided else CONTINUE)
            groups.append(index)
    return rows, labels, groups


def _log_loss(probabilities: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> float:
    index = {c: i for i, c in enumerate(classes)}
    picked = [max(1e-12, probabilities[row, index[label]]) for row, label in enumerate(labels)]
    return float(-np.mean(np.log(picked)))


def _fit(x: np.ndarray, y: list[str], c: float):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000).fit(x, y)


def _cv_loss(x: np.ndarray, y: list[str], groups: list[int], c: float, seed: int) -> tuple[float, float]:
    """(model, class-frequency baseline) mean held-out log loss over call-grouped folds."""
    losses, nulls = [], []
    for fold in _folds(groups, seed):
        test = np.isin(groups, fold)
        train_y = [label for label, t in zip(y, test) if not t]
        if len(set(train_y)) < 2 or not test.any():
            continue
        model = _fit(x[~test], train_y, c)
        probs = np.zeros((int(test.sum()), len(model.classes_)))
        probs[:] = model.predict_proba(x[test])
        test_y = [label for label, t in zip(y, test) if t]
        seen = [label if label in model.classes_ else None for label in test_y]
        keep = [i for i, label in enumerate(seen) if label is not None]
        losses.append(_log_loss(probs[keep], [test_y[i] for i in keep], list(model.classes_)))
        freq = Counter(train_y)
        null = np.array([[freq[cl] / len(train_y) for cl in model.classes_]] * len(keep))
        nulls.append(_log_loss(null, [test_y[i] for i in keep], list(model.classes_)))
    return (float(np.mean(losses)), float(np.mean(nulls))) if losses else (math.inf, math.inf)


def _folds(groups: Sequence[int], seed: int) -> list[np.ndarray]:
    """Calls shuffled with the seed and split in FOLDS groups (the same folds for every C)."""
    calls = np.array(sorted(set(groups)))
    np.random.default_rng(seed).shuffle(calls)
    return np.array_split(calls, min(FOLDS, len(calls)))


def design(rows: Sequence[MoveFeatures], reads_replies: bool = False) -> tuple[HazardModel, np.ndarray]:
    """The unfitted model's shape (a coefficient for every stage and archetype seen, and for what
    the customer said when it reads replies) and the rows' feature matrix."""
    stages = sorted({r.stage for r in rows if r.stage})
    archetypes = sorted({r.archetype for r in rows if r.archetype})
    shape = HazardModel(classes=[], stages=stages, archetypes=archetypes, coef=[], intercept=[], reads_replies=reads_replies)
    return shape, np.array([shape.vector(r) for r in rows])


def _hazard(shape: HazardModel, model) -> HazardModel:  # type: ignore[no-untyped-def]
    return shape.model_copy(update={"classes": [str(c) for c in model.classes_], "coef": model.coef_.round(6).tolist(), "intercept": model.intercept_.round(6).tolist()})


def script_odds(hazard: HazardModel, call: CallFacts, taxonomy: Taxonomy) -> list[dict[str, float]]:
    """The hazard's odds at each move of a call's script, up to the move where the customer decided
    (what a probe replays)."""
    moves = max(1, min(call.decision_move, len(call.stages)))
    return [hazard.probabilities(move_features(taxonomy, call.stages[:m], call.archetype, call.propensity, call.answers[: m - 1])) for m in range(1, moves + 1)]


def cross_validated_check(calls: Sequence[CallFacts], taxonomy: Taxonomy, c: float, seed: int, rates: dict[str, float], reads_replies: bool = False) -> DecisionCheck | None:
    """The probe's decision figures, without a probe: each decided training call's outcome
    distribution over its own script (and, for a hazard that reads replies, the customer's own
    answers) from a hazard fitted on the other folds, scored against what the customer decided
    (None when too few calls or folds leave one class)."""
    rows, labels, groups = training_rows(calls, taxonomy)
    shape, x = design(rows, reads_replies)
    distributions, real = [], []
    for fold in _folds(groups, seed):
        test = np.isin(groups, fold)
        train_y = [label for label, t in zip(labels, test) if not t]
        if len(set(train_y)) < 2:
            return None
        hazard = _hazard(shape, _fit(x[~test], train_y, c))
        for index in fold:
            if calls[index].outcome in DECISIONS:
                distributions.append(outcome_distribution(script_odds(hazard, calls[index], taxonomy)))
                real.append(calls[index].outcome)
    return decision_check(distributions, real, rates, "cross-validated hazard over each call's own script", seed) if real else None


def base_rates(outcomes: Sequence[str]) -> dict[str, float]:
    """The share of each decision among calls whose outcome is known."""
    known = [o for o in outcomes if o in DECISIONS]
    counts = Counter(known)
    return {o: round(counts[o] / len(known), 4) for o in DECISIONS} if known else {}


def fit_dynamics(calls: Sequence[CallFacts], taxonomy: Taxonomy, seed: int = 0) -> FittedDynamics:
    """Fit the hazard model, or keep the prior and say why."""
    rows, labels, groups = training_rows(calls, taxonomy)
    events = Counter(label for label in labels if label != CONTINUE)
    censored = sum(1 for c in calls if c.outcome not in DECISIONS)
    stats = FitStatistics(dialogues=len(calls), moves=len(rows), events=dict(sorted(events.items())), censored=censored)
    rates = base_rates([c.outcome for c in calls])
    reason = None
    if len(calls) < MIN_CALLS:
        reason = f"{len(calls)} training calls; at least {MIN_CALLS} are needed to fit"
    elif sum(events.values()) < MIN_EVENTS:
        reason = f"{sum(events.values())} decisions among the training calls; at least {MIN_EVENTS} are needed to fit"
    if reason is not None:
        return FittedDynamics(fitted=False, estimator=HAZARD_ESTIMATOR, reason=reason, base_rates=rates, statistics=stats)
    designs = {reads: design(rows, reads) for reads in (False, True)}
    scored = {(reads, c): _cv_loss(x, labels, groups, c, seed) for reads, (_, x) in designs.items() for c in C_GRID}
    plain = min(scored[(False, c)][0] for c in C_GRID)
    reading = min(scored[(True, c)][0] for c in C_GRID)
    # Read replies only where it helps out of fold, by more than the folds' rounding: a corpus whose
    # customers' words say nothing of their decision keeps the simpler hazard.
    reads = reading < plain - READING_MARGIN
    best = min(C_GRID, key=lambda c: scored[(reads, c)][0])
    shape, x = designs[reads]
    model = _fit(x, labels, best)
    hazard = _hazard(shape, model)
    probs = np.array([[hazard.probabilities(r)[c] for c in hazard.classes] for r in rows])
    freq = Counter(labels)
    null = np.array([[freq[c] / len(labels) for c in hazard.classes]] * len(labels))
    ll = -_log_loss(probs, labels, hazard.classes) * len(labels)
    null_ll = -_log_loss(null, labels, hazard.classes) * len(labels)
    stats = stats.model_copy(
        update={
            "C": best, "log_likelihood": round(ll, 3), "null_log_likelihood": round(null_ll, 3), "mcfadden_r2": round(1 - ll / null_ll, 4) if null_ll else None,
            "cv_log_loss": round(scored[(reads, best)][0], 4), "cv_null_log_loss": round(scored[(reads, best)][1], 4),
            "cv_decisions": cross_validated_check(calls, taxonomy, best, seed, rates, reads),
            "cv_log_loss_plain": round(plain, 4), "cv_log_loss_reading": round(reading, 4),
        }
    )
    return FittedDynamics(fitted=True, estimator=HAZARD_ESTIMATOR, hazard=hazard, base_rates=rates, statistics=stats)
