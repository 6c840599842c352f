"""The rule check and the regenerate/dedup loop (routing tested with a fake chat model)."""

from __future__ import annotations

import json

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from grouped_sim.schemas import Profile
from grouped_sim.profiles.generator import ProfileGenerator, build_profile, check_profile, load_examples
from grouped_sim.profiles.spec import ProfileConstraints

C = ProfileConstraints(archetype="price-sensitive", tier="hard", domain="broadband", age_min=30, age_max=40, age=35, must_have=["has two kids"])
FREE = {
    "role": "nurse renting a flat",
    "business_context": "pays 45 a month for slow internet",
    "pain_points": "the bill keeps rising; buffering",
    "decision_factors": "monthly price; no contract",
    "communication_style": "tired, short answers",
    "summary": "A night-shift nurse who watches every pound on the household bills.",
}


def test_fixed_fields_come_from_the_constraints_and_pass_the_check() -> None:
    profile = build_profile(FREE, C, __import__("grouped_sim.profiles.presets").profiles.presets.load_presets())
    assert (profile.archetype, profile.difficulty, profile.buy_propensity, profile.age, profile.domain) == ("price-sensitive", "hard", 0.2, 35, "broadband")
    assert profile.traits == ["has two kids"] and profile.pain_points == ["the bill keeps rising", "buffering"]
    assert check_profile(profile, C) == []


def test_rule_check_names_each_violation() -> None:
    profile = Profile(summary="Someone who likes long walks by the sea.", archetype="price-sensitive", age=52, domain="broadband", difficulty="easy", buy_propensity=0.8, role="walker", pain_points=["none"], communication_style="chatty")
    problems = check_profile(profile, C)
    assert any("age 52 outside 30-40" in p for p in problems)
    assert any("tier easy/0.8, wanted hard/0.2" in p for p in problems)
    assert any("must-have trait missing" in p for p in problems)
    assert any("shows nothing of price-sensitive" in p for p in problems)


def test_unusable_and_duplicate_outputs_are_regenerated() -> None:
    copy = json.dumps(FREE)
    other = json.dumps({**FREE, "role": "retired teacher", "business_context": "lives alone, old copper line", "summary": "A retired maths teacher who compares every price and fee before paying a penny.", "communication_style": "precise, slow, asks about cost", "pain_points": "fees"})
    model = FakeListChatModel(responses=[copy, "I cannot help with that", copy, other])
    generator = ProfileGenerator(model, load_examples(), max_attempts=3)
    constraints = [C, C.model_copy(update={"age": 31})]
    produced, report = generator.generate(constraints, batch_size=1)
    assert len(produced) == 2 and report.candidates == 4
    assert report.unparsed == 1 and report.duplicates == 1
    assert produced[1].profile.role == "retired teacher" and produced[1].attempts == 3
    assert report.realised["archetype"] == {"price-sensitive": 1.0}


def test_a_profile_that_never_passes_is_reported_not_invented() -> None:
    model = FakeListChatModel(responses=[json.dumps({**FREE, "summary": "too short"})])
    produced, report = ProfileGenerator(model, load_examples(), max_attempts=2).generate([C])
    assert produced == [] and report.failed[0]["attempts"] == 2
    assert "summary shorter than six words" in report.failed[0]["problems"]
