"""The light manager's decision dynamics as data: starting states and what each stage does.

The numbers live in `graphs/data/dynamics.yaml` (set by hand for the sample corpus); the rules that
read them are in graphs/manager.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grouped_sim.metrics.decisions import DecisionCheck
from grouped_sim.resources import load_resource
from grouped_sim.schemas import Turn
from grouped_sim.sop_db.taxonomy import PUSH_KINDS, StageKind, Taxonomy


class StartState(BaseModel):
    """S_0 for one archetype, and how fast it loses patience."""

    model_config = ConfigDict(extra="forbid")

    interest: float = Field(ge=0.0, le=1.0)
    trust: float = Field(ge=0.0, le=1.0)
    patience: float = Field(ge=0.0, le=1.0)
    impatience: float = Field(1.0, ge=0.0, le=5.0, description="multiplier on the patience lost every turn")


class StageEffect(BaseModel):
    """What one salesman move of a stage does to the state, before the per-turn decay."""

    model_config = ConfigDict(extra="forbid")

    interest: float = Field(0.0, ge=-1.0, le=1.0)
    trust: float = Field(0.0, ge=-1.0, le=1.0)
    patience: float = Field(0.0, ge=-1.0, le=1.0)


class Dynamics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_start: StartState
    archetype_start: dict[str, StartState] = Field(default_factory=dict)
    stage_effects: dict[str, StageEffect] = Field(default_factory=dict)

    def start_for(self, archetype: str | None) -> StartState:
        return self.archetype_start.get(archetype or "", self.default_start)

    def effect_of(self, stage: str) -> StageEffect:
        return self.stage_effects.get(stage, StageEffect())


@lru_cache(maxsize=1)
def prior_dynamics() -> Dynamics:
    """The hand-set dynamics shipped with grouped-sim."""
    return Dynamics.model_validate(load_resource("grouped_sim.graphs", "data/dynamics.yaml"))


# ---- decision dynamics fitted from a team's calls ------------------------------------------------

DECISIONS: tuple[str, ...] = ("agreed", "refused", "hung_up", "callback")
CONTINUE = "continue"
HAZARD_ESTIMATOR = "discrete-time competing-risks hazard: multinomial logistic regression over salesman moves (L2, C chosen by dialogue-grouped cross-validation)"


class MoveFeatures(BaseModel):
    """What the hazard model sees at one salesman move; computed the same way from a real call
    (graphs/fitting.py) and in simulation (the manager), so what was fitted is what runs."""

    turn: int = Field(ge=1, description="1-based index of this salesman move")
    stage: str = Field(description="the stage tag of this move")
    archetype: str | None = None
    propensity: float = Field(ge=0.0, le=1.0, description="share of the customer's K_p neighbours whose call ended agreed")
    pushes_in_row: int = Field(0, ge=0, description="pitch/closing moves in a row, this one included")
    objections: int = Field(0, ge=0, description="distinct objections raised so far")
    said: list[str] = Field(
        default_factory=list,
        description="the decision state (resistance | deliberation | commitment | neutral) the metrics' cue rules read in each of "
        "the customer's replies before this move: what the customer has said, for a hazard that reads it",
    )


def move_stages(turns: Sequence[Turn]) -> list[str]:
    """The stage of each salesman move (consecutive salesman turns are one move; its first tag counts)."""
    return [move[0].sop_stage or "" for move, _ in script_moves(turns)]


def script_moves(turns: Sequence[Turn]) -> list[tuple[list[Turn], list[Turn]]]:
    """(a salesman move's turns, the customer turns after it), in order (turns before the first
    salesman move are left out: they answer nothing). The one rule of what a move is: consecutive
    salesman turns are one move of several messages."""
    moves: list[tuple[list[Turn], list[Turn]]] = []
    for turn in turns:
        if turn.role == "salesman":
            if not moves or moves[-1][1]:
                moves.append(([], []))
            moves[-1][0].append(turn)
        elif moves:
            moves[-1][1].append(turn)
    return moves


def propensity_of(outcomes: Sequence[str], base_rates: dict[str, float]) -> float:
    """The share of a customer's K_p neighbours whose call ended agreed (the base rate without any)."""
    known = [o for o in outcomes if o in DECISIONS]
    if not known:
        return base_rates.get("agreed", 0.0)
    return sum(o == "agreed" for o in known) / len(known)


def move_features(taxonomy: Taxonomy, stages: list[str], archetype: str | None, propensity: float, replies: Sequence[str] = ()) -> MoveFeatures:
    """The features of the last move of `stages` (the stage of every salesman move so far);
    `replies`: the customer's answers to the earlier moves (never to this one: the manager decides
    before the customer answers)."""
    from grouped_sim.metrics.fidelity import decision_state

    pushes = 0
    for stage in reversed(stages):
        if taxonomy.kind_of(stage) not in PUSH_KINDS:
            break
        pushes += 1
    raised = {taxonomy.objection_of(s) for s in stages if taxonomy.kind_of(s) is StageKind.objection}
    said = [decision_state(r) for r in replies if r.strip()]
    return MoveFeatures(turn=len(stages), stage=stages[-1], archetype=archetype, propensity=propensity, pushes_in_row=pushes, objections=len(raised - {None}), said=said)


def move_answers(turns: Sequence[Turn]) -> list[str]:
    """The customer's answer to each salesman move of a call (its turns after the move, joined)."""
    return [" ".join(t.text for t in answers) for _, answers in script_moves(turns)]


SAID_STATES = ("resistance", "deliberation", "commitment")


class HazardModel(BaseModel):
    """P(the customer continues, or ends the call with each outcome, at this move | features)."""

    model_config = ConfigDict(extra="forbid")

    classes: list[str]
    stages: list[str] = Field(description="stage ids with their own coefficient (others share none)")
    archetypes: list[str]
    coef: list[list[float]] = Field(description="one row per class, one column per feature (see feature_names)")
    intercept: list[float]
    reads_replies: bool = Field(
        False,
        description="the hazard also reads what the customer said (share of earlier replies in each decision state, and the "
        "last reply's state); `fit` keeps this only where it lowers the cross-validated log loss",
    )

    @model_validator(mode="after")
    def _shapes_agree(self) -> HazardModel:
        """A hand-edited or foreign dynamics.json must fail when read, not mid-simulation in numpy."""
        width, rows = len(self.feature_names()), len(self.coef)
        if rows != len(self.intercept) or rows not in (len(self.classes), 1 if len(self.classes) == 2 else -1):
            raise ValueError(f"{rows} coefficient rows and {len(self.intercept)} intercepts for {len(self.classes)} classes")
        if any(len(row) != width for row in self.coef):
            raise ValueError(f"every coefficient row needs {width} values (one per feature)")
        return self

    def feature_names(self) -> list[str]:
        said = [f"said_share={s}" for s in SAID_STATES] + [f"said_last={s}" for s in SAID_STATES] if self.reads_replies else []
        return ["log_turn", "propensity", "pushes_in_row", "objections", *(f"stage={s}" for s in self.stages), *(f"archetype={a}" for a in self.archetypes), *said]

    def vector(self, f: MoveFeatures) -> list[float]:
        import math

        head = [math.log1p(f.turn), f.propensity, float(f.pushes_in_row), float(f.objections)]
        row = head + [float(f.stage == s) for s in self.stages] + [float(f.archetype == a) for a in self.archetypes]
        if self.reads_replies:
            row += [f.said.count(s) / len(f.said) if f.said else 0.0 for s in SAID_STATES]
            row += [float(bool(f.said) and f.said[-1] == s) for s in SAID_STATES]
        return row

    def probabilities(self, f: MoveFeatures) -> dict[str, float]:
        import numpy as np

        logits = np.asarray(self.coef) @ np.asarray(self.vector(f)) + np.asarray(self.intercept)
        if len(self.classes) == 2:  # scikit-learn keeps one row for a binary model: the second class's logit
            logits = np.array([0.0, logits[0]]) if logits.shape[0] == 1 else logits
        weights = np.exp(logits - logits.max())
        return {c: float(w) for c, w in zip(self.classes, weights / weights.sum())}


def outcome_distribution(odds: Sequence[dict[str, float]]) -> dict[str, float]:
    """P(the call ends with each outcome) for a customer who hears these moves in turn, under the
    hazard model: ending at move t with outcome o has probability S(t-1) * h_o(t), where S is the
    chance of having gone on so far; a customer still on the line after the last move decides as
    the end-of-script rule does (the outcomes' shares of ending at the last move). This is the
    distribution a fitted twin's seeded draws sample from, so it is what `fit` and `probe` score."""
    shares = {o: 0.0 for o in DECISIONS}
    alive = 1.0
    for move in odds:
        for outcome in DECISIONS:
            shares[outcome] += alive * move.get(outcome, 0.0)
        alive *= max(0.0, 1.0 - sum(move.get(o, 0.0) for o in DECISIONS))
    if odds and alive > 0:
        last = {o: odds[-1].get(o, 0.0) for o in DECISIONS}
        total = sum(last.values())
        for outcome in DECISIONS:
            shares[outcome] += alive * (last[outcome] / total if total > 0 else 1.0 / len(DECISIONS))
    return shares


class FitStatistics(BaseModel):
    dialogues: int
    moves: int
    events: dict[str, int]
    censored: int = Field(description="training calls whose outcome is unknown: no decision event, moves kept as 'continue'")
    C: float | None = None
    log_likelihood: float | None = None
    null_log_likelihood: float | None = None
    mcfadden_r2: float | None = None
    cv_log_loss: float | None = Field(None, description="mean held-out log loss per move, dialogue-grouped folds")
    cv_null_log_loss: float | None = Field(None, description="the same for the class-frequency model")
    cv_decisions: DecisionCheck | None = Field(None, description="the probe's decision figures on the training calls, each from a hazard fitted without its fold")
    cv_log_loss_plain: float | None = Field(None, description="held-out log loss of the best hazard that does not read the customer's replies")
    cv_log_loss_reading: float | None = Field(None, description="the same for the best hazard that does (hazard.reads_replies says which was kept)")


class FittedDynamics(BaseModel):
    """The decision dynamics `fit` writes (DIR/dynamics.json): fitted, or the prior and why."""

    version: int = 1
    fitted: bool
    estimator: str
    reason: str | None = Field(None, description="why the prior was kept, when fitted is false")
    hazard: HazardModel | None = None
    base_rates: dict[str, float] = Field(default_factory=dict, description="outcome shares of the training calls (the propensity of a customer with no neighbours)")
    statistics: FitStatistics | None = None
    prior: Dynamics = Field(default_factory=lambda: prior_dynamics())
