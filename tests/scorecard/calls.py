"""Hand-built simulated calls for the scorecard tests: known stages, states, outcomes and trials."""

from __future__ import annotations

from grouped_sim.report.scorecard import ScorecardContext
from grouped_sim.schemas import CustomerAction, CustomerState, Dialogue, Outcome, Profile, TerminationReason, Turn

CTX = ScorecardContext(
    stages=["opening", "needs_discovery", "pitch", "price_objection", "closing_ask", "goodbye"],
    kinds={"opening": "opening", "needs_discovery": "discovery", "pitch": "pitch", "price_objection": "objection", "closing_ask": "closing", "goodbye": "goodbye"},
    objections={"price_objection": "price"},
    tiers={"easy": 0.8, "medium": 0.5, "hard": 0.2},
)
ENDINGS = {
    Outcome.agreed: TerminationReason.customer_agreed,
    Outcome.callback: TerminationReason.callback_arranged,
    Outcome.refused: TerminationReason.customer_refused,
    Outcome.hung_up: TerminationReason.customer_hung_up,
    Outcome.unknown: TerminationReason.max_turns,
}
PROFILES = {
    "price-sensitive": Profile(summary="Pizzeria owner who counts every penny.", archetype="price-sensitive", buy_propensity=0.5),
    "resistance-heavy": Profile(summary="Kebab shop owner who hates cold calls.", archetype="resistance-heavy", buy_propensity=0.1),
}


def call(
    id: str,
    archetype: str,
    outcome: Outcome,
    stages: list[str],
    trial: int = 0,
    seed: int = 1,
    objections: list[list[str]] | None = None,
    moves: list[str] | None = None,
    error: dict[str, str] | None = None,
) -> Dialogue:
    """One call: a salesman move per stage (or `moves`), each answered; `objections` is the open
    objections after each reply (the customer's state)."""
    turns = []
    for k, stage in enumerate(stages):
        text = (moves or [])[k] if moves and k < len(moves) else f"move {k} at {stage}?"
        turns.append(Turn(role="salesman", text=text, sop_stage=stage))
        state = CustomerState(open_objections=objections[k]) if objections else None
        turns.append(Turn(role="customer", text="ok then", sop_stage=stage, state=state, action=CustomerAction.speak))
    reason = TerminationReason.error if error else ENDINGS[outcome]
    return Dialogue(
        id=id, domain="food-delivery", turns=turns, outcome=outcome, profile=PROFILES[archetype], termination_reason=reason, error=error,
        meta={"trial": trial, "seed": seed},
    )
