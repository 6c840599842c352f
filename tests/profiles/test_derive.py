"""Profiles read from the transcript alone: no language model, no outcome, no decision."""

from __future__ import annotations

import json

from grouped_sim.profiles.derive import customer_lines, derive_profile
from grouped_sim.schemas import Dialogue, Turn


def call(outcome: str = "hung_up") -> Dialogue:
    return Dialogue(
        id="d-1",
        domain="broadband",
        outcome=outcome,
        turns=[
            Turn(role="salesman", text="Hello, is that the account holder?"),
            Turn(role="customer", text="yeah. I run a small bakery, we're on Virgin. what's the price?"),
            Turn(role="salesman", text="It's 29 pounds a month."),
            Turn(role="customer", text="how much is installation? our bills are too much already"),
            Turn(role="salesman", text="Installation is free."),
            Turn(role="customer", text="no. not interested, take me off your list. bye"),
        ],
    )


def test_fields_come_from_the_customers_own_words() -> None:
    profile = derive_profile(call())
    assert "I run a small bakery" in profile.business_context
    assert any("too much" in p for p in profile.pain_points)
    assert profile.archetype == "price-sensitive"  # talks price, nearest preset description
    assert "questions" in profile.communication_style
    assert profile.domain == "broadband" and profile.model_dump()["source"] == "derived"


def test_the_outcome_never_reaches_the_profile() -> None:
    for outcome in ("hung_up", "agreed", "refused", "callback"):
        profile = derive_profile(call(outcome))
        text = json.dumps(profile.model_dump(mode="json")).lower()
        assert outcome not in text and "hung up" not in text and profile.buy_propensity is None
    assert derive_profile(call("agreed")).model_dump() == derive_profile(call("refused")).model_dump()


def test_a_pre_decision_profile_reads_only_the_first_third_of_the_customers_turns() -> None:
    assert customer_lines(call(), pre_decision=True) == ["yeah. I run a small bakery, we're on Virgin. what's the price?"]
    profile = derive_profile(call(), pre_decision=True)
    text = json.dumps(profile.model_dump(mode="json"))
    assert "take me off your list" not in text and "too much" not in text
    assert "bakery" in text
