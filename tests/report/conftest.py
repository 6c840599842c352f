"""Hand-built simulated dialogues (with stages, states and outcomes) for report tests."""

from __future__ import annotations

import numpy as np
import pytest

from grouped_sim.schemas import CustomerAction, CustomerState, Dialogue, Intent, Outcome, Profile, TerminationReason, Turn


def sim_dialogue(id: str, replies: list[str], outcome: Outcome, stages: list[str] | None = None) -> Dialogue:
    turns = []
    for k, reply in enumerate(replies):
        stage = stages[k] if stages else None
        turns.append(Turn(role="salesman", text=f"pitch number {k}", sop_stage=stage))
        state = CustomerState(interest=0.2 + 0.1 * k, trust=0.3, patience=max(0.0, 0.7 - 0.2 * k), intent=Intent.resist) if stages else None
        turns.append(Turn(role="customer", text=reply, sop_stage=stage, state=state, action=CustomerAction.speak))
    reason = {Outcome.hung_up: TerminationReason.customer_hung_up, Outcome.agreed: TerminationReason.customer_agreed}.get(outcome, TerminationReason.max_turns)
    return Dialogue(id=id, domain="food-delivery", turns=turns, outcome=outcome, termination_reason=reason,
                    profile=Profile(summary="Owner of a <b>busy</b> kebab shop.", archetype="resistance-heavy"))


@pytest.fixture
def sim_run() -> list[Dialogue]:
    return [
        sim_dialogue("s1", ["who is this", "no time", "not interested, bye"], Outcome.hung_up, ["opening", "pitch", "goodbye"]),
        sim_dialogue("s2", ["ok", "how much is it?"], Outcome.agreed, ["opening", "price_objection"]),
    ]


@pytest.fixture
def real_run() -> list[Dialogue]:
    return [
        sim_dialogue("r1", ["yeah?", "no"], Outcome.hung_up),
        sim_dialogue("r2", ["who's calling", "not now", "bye"], Outcome.refused),
    ]


def hash_embed(texts):
    """A deterministic stand-in for φ (bag of characters), so report tests need no encoder."""
    out = np.zeros((len(texts), 32))
    for i, text in enumerate(texts):
        for ch in text.lower():
            out[i, ord(ch) % 32] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


@pytest.fixture
def embed():
    return hash_embed
