"""The LLM manager: structured decisions from a chat model, the light rules when its answer is unusable."""

from __future__ import annotations

import json

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from grouped_sim.schemas import CustomerAction, CustomerState, Intent, Profile, Turn
from grouped_sim.graphs.manager import LLMManager

PROFILE = Profile(summary="retired teacher renewing home insurance", archetype="rational-skeptical", buy_propensity=0.4)
HISTORY = [Turn(role="salesman", text="Your renewal premium is 412 pounds this year.")]
ANSWER = {
    "stage": "price_objection",
    "interest": 0.2,
    "trust": 0.3,
    "patience": 0.5,
    "open_objections": ["price"],
    "action": "speak",
    "guidance": "ask why it went up",
}


def step(*replies: str):
    manager = LLMManager(FakeListChatModel(responses=list(replies)), store=None, retries=2)
    return manager.step(profile=PROFILE, history=HISTORY, state=CustomerState(), chains=[], seed=1, use_sop=False)


def test_a_valid_json_answer_becomes_the_update() -> None:
    update = step("Sure! " + json.dumps(ANSWER) + " Hope that helps.")
    assert update.source == "llm"
    assert update.stage == "price_objection" and update.state.open_objections == ["price"]
    assert update.guidance == "ask why it went up" and update.action is CustomerAction.speak
    assert update.state.intent is Intent.resist


def test_bad_answers_are_retried() -> None:
    update = step("no json here", json.dumps({**ANSWER, "stage": "haggling"}), json.dumps({**ANSWER, "action": "hang_up"}))
    assert update.source == "llm" and update.action is CustomerAction.hang_up


def test_unusable_answers_fall_back_to_the_light_rules_and_say_why() -> None:
    update = step("nope", "still nope", "{broken")
    assert update.source.startswith("light-fallback")
    assert "no JSON object" in update.source
    assert 0.0 <= update.state.patience < CustomerState().patience + 0.1
