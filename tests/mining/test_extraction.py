"""Profile extraction: retried on invalid output, recorded as failed with its reason, never invented."""

from __future__ import annotations

import json

from langchain_core.language_models.fake_chat_models import FakeListChatModel

from grouped_sim.schemas import Dialogue
from grouped_sim.jsontext import parse_json_object
from grouped_sim.sop_db.mine import InputLine, Miner, MineSettings, ProfileExtractor

GOOD = json.dumps(
    {
        "summary": "A wary pizzeria owner who only talks about the commission.",
        "archetype": "Price Sensitive",
        "age": "about 45",
        "role": "pizzeria owner",
        "business_context": "small pizzeria",
        "pain_points": "high fees; slow evenings",
        "decision_factors": ["commission"],
        "communication_style": "short",
        "buy_propensity": 0.2,
    }
)


def _unprofiled(dialogue: Dialogue) -> Dialogue:
    return dialogue.model_copy(update={"profile": None})


def test_invalid_answers_are_retried_then_accepted(corpus: list[Dialogue]) -> None:
    model = FakeListChatModel(responses=["sure! here is the profile", '{"summary": "owner", "archetype": "price-sensitive"}', "```json\n" + GOOD + "\n```"])
    result = ProfileExtractor(model, retries=2).extract(_unprofiled(corpus[0]))
    assert result.status == "ok" and result.attempts == 3
    assert len(result.errors) == 2 and "no JSON object" in result.errors[0] and "summary" in result.errors[1]
    assert result.profile is not None
    assert result.profile.archetype == "price-sensitive"
    assert result.profile.age == 45
    assert result.profile.pain_points == ["high fees", "slow evenings"]
    assert result.profile.domain == corpus[0].domain


def test_a_failed_extraction_is_recorded_and_the_profile_derived_from_the_transcript_not_invented(corpus: list[Dialogue]) -> None:
    bad_archetype = GOOD.replace("Price Sensitive", "impulsive shopper")
    model = FakeListChatModel(responses=["nope", bad_archetype])
    settings = MineSettings(extractor="fake", retries=1)
    miner = Miner(settings, tagger=None, extractor=ProfileExtractor(model, retries=1), annotator=None)
    record = miner.mine_one(InputLine(line=7, dialogue=_unprofiled(corpus[0]), digest="abc123"))
    assert record.profile_status == "derived"
    profile = record.dialogue.profile
    assert profile is not None and profile.model_dump()["source"] == "derived" and profile.archetype != "impulsive shopper"
    assert "after 2 attempts" in (record.profile_reason or "") and "impulsive shopper" in (record.profile_reason or "")
    assert record.dialogue.meta["profile_extraction"]["errors"][0] == "no JSON object in the answer"


def test_without_an_extractor_every_dialogue_gets_a_profile_from_its_own_words(corpus: list[Dialogue]) -> None:
    miner = Miner(MineSettings(), tagger=None, extractor=None, annotator=None)
    dialogue = _unprofiled(corpus[0])
    record = miner.mine_one(InputLine(line=1, dialogue=dialogue, digest="def456"))
    assert record.profile_status == "derived" and record.dialogue.profile is not None
    assert dialogue.outcome.value not in record.dialogue.profile.model_dump_json()
    assert record.dialogue.outcome == dialogue.outcome  # the call keeps its outcome; only the profile never reads it


def test_json_parser_tolerates_prose_fences_and_trailing_commas() -> None:
    assert parse_json_object('Answer: {"a": {"b": "}"}, "c": [1, 2,],} thanks') == {"a": {"b": "}"}, "c": [1, 2]}


def test_embedded_model_extraction_ok_or_recorded_failed(corpus: list[Dialogue], embedded_llama) -> None:
    """The real embedded model on a dialogue: the result is a valid profile or a failure with its reason."""
    model = embedded_llama.model_copy(update={"temperature": 0.7, "max_new_tokens": 120})
    extractor = ProfileExtractor(model, retries=1, max_new_tokens=120)
    outcomes = []
    for dialogue in corpus[:1]:
        result = extractor.extract(_unprofiled(dialogue))
        outcomes.append(result.status)
        if result.status == "ok":
            assert result.profile is not None and result.profile.archetype in (None, *extractor.archetypes)
        else:
            assert result.profile is None and result.reason and len(result.errors) == 2
    print(f"embedded-model extraction: {outcomes}")


def test_an_echo_of_the_worked_example_is_rejected(corpus: list[Dialogue]) -> None:
    from grouped_sim.prompts import prompt

    echo = prompt("mining")["extraction"]["example_profile"].strip()
    result = ProfileExtractor(FakeListChatModel(responses=[echo]), retries=0).extract(_unprofiled(corpus[0]))
    assert result.status == "failed" and "copies the worked example" in (result.reason or "")


def test_extraction_prompt_lists_the_preset_archetypes_one_line_each(corpus: list[Dialogue]) -> None:
    from grouped_sim.profiles.presets import load_presets
    from grouped_sim.prompts import prompt

    assert "archetypes" not in prompt("mining")  # defined once, in profiles/data/presets.yaml
    user = ProfileExtractor(FakeListChatModel(responses=[GOOD])).messages(_unprofiled(corpus[0]))[1].content
    listed = [line for line in user.splitlines() if line.startswith("- ")]
    presets = load_presets().archetypes
    assert [line.split(":")[0][2:] for line in listed] == list(presets)
    for line, archetype in zip(listed, presets.values()):
        assert archetype.description.startswith(line.split(": ", 1)[1].rstrip("."))
