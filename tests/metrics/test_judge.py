"""The LLM judge: robust parsing, retries, missing-not-zero, resumable cache.

A scripted fake chat model (langchain-core's FakeListChatModel) stands in for the judge: these tests
are about parsing and bookkeeping, not about any model's opinion.
"""

from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from grouped_sim.metrics.judge import (
    aggregate,
    dimensions,
    judge_dialogue,
    judge_dimension,
    judge_messages,
    judge_run,
    load_cache,
    parse_scores,
    parse_verdict,
    role_inversion_judge,
)
from grouped_sim.schemas import Profile

KEYS = ["intent_responsiveness", "logical_consistency"]
GOOD = '{"reasoning": "fine", "scores": {"intent_responsiveness": 7, "logical_consistency": 9}}'


def good_answers() -> list[str]:
    """One valid answer per dimension, in rubric order."""
    out = []
    for name, dim in dimensions().items():
        out.append(json.dumps({"reasoning": name, "scores": {k: 6 for k in dim["criteria"]}}))
    return out


@pytest.mark.parametrize(
    "answer",
    [
        GOOD,
        "```json\n" + GOOD + "\n```",
        "Sure! Here is my grading:\n" + GOOD + "\nHope that helps.",
        "{'scores': {'intent_responsiveness': 7, 'logical_consistency': 9,},}",
        '{"scores": {"intent_responsiveness_score": "7/10", "logical_consistency_score": "9"}}',
        '{"intent_responsiveness": 7, "logical_consistency": 9}',
        'scores: intent_responsiveness: 7, logical_consistency = 9 (broken json {',
    ],
)
def test_parse_scores_digs_numbers_out_of_messy_answers(answer):
    assert parse_scores(answer, KEYS) == {"intent_responsiveness": 7.0, "logical_consistency": 9.0}


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "I think the customer was quite realistic.",
        '{"scores": {"intent_responsiveness": 7}}',  # a criterion is missing
        '{"scores": {"intent_responsiveness": 70, "logical_consistency": 9}}',  # outside 0-10
        '{"scores": {"intent_responsiveness": true, "logical_consistency": 9}}',
    ],
)
def test_parse_scores_rejects_incomplete_or_out_of_range(answer):
    assert parse_scores(answer, KEYS) is None


def test_parse_verdict():
    assert parse_verdict('{"inverted": true, "reason": "pitches"}') is True
    assert parse_verdict("```json\n{'inverted': False}\n```") is False
    assert parse_verdict("inverted: yes") is True
    assert parse_verdict("hard to say") is None


def test_prompt_carries_persona_transcript_and_criteria(dialogue_factory):
    d = dialogue_factory(["who is this"])
    d.profile = Profile(summary="A wary pizza shop owner.", archetype="resistance-heavy")
    system, human = judge_messages("business_realism", d)
    for needle in ("A wary pizza shop owner.", "resistance-heavy", "Customer: who is this", "brevity", "naturalness", "context_immersion"):
        assert needle in human.content
    assert system.content


def test_malformed_answer_is_retried_then_scored(dialogue_factory):
    model = FakeListChatModel(responses=["no idea", GOOD])
    result = judge_dimension(model, "interaction_logic", dialogue_factory(["no"]), retries=2)
    assert result.attempts == 2
    assert result.score == pytest.approx(8.0)


def test_persistent_failure_is_missing_not_zero(dialogue_factory):
    model = FakeListChatModel(responses=["no idea"])
    result = judge_dimension(model, "interaction_logic", dialogue_factory(["no"]), retries=1)
    assert result.score is None and result.attempts == 2
    assert "unparseable" in result.error

    good = judge_dialogue(FakeListChatModel(responses=good_answers()), dialogue_factory(["no"], id="ok"), "fake")
    bad = judge_dialogue(FakeListChatModel(responses=["??"]), dialogue_factory(["no"], id="bad"), "fake", retries=0)
    summary = aggregate([good, bad])
    for dim in summary["dimensions"].values():
        assert dim["score"] == pytest.approx(6.0)  # the failed dialogue does not pull the mean to 3
        assert dim["missing"] == 1
    assert summary["overall"] == pytest.approx(6.0)
    assert aggregate([])["overall"] is None


class CountingModel(FakeListChatModel):
    """Counts calls so a test can prove that cached dialogues are not judged again."""

    calls: int = 0

    def invoke(self, *args, **kwargs):  # type: ignore[override]
        self.calls += 1
        return super().invoke(*args, **kwargs)


def test_judge_run_appends_as_it_goes_and_resumes(tmp_path, dialogue_factory):
    cache = tmp_path / "judge.jsonl"
    dialogues = [dialogue_factory(["no"], id="a"), dialogue_factory(["maybe"], id="b")]
    first = CountingModel(responses=good_answers())
    judge_run(first, dialogues[:1], "fake", cache)
    assert first.calls == 3 and len(cache.read_text().splitlines()) == 1

    second = CountingModel(responses=good_answers())
    seen = []
    records = judge_run(second, dialogues, "fake", cache, on_progress=lambda r: seen.append(r.dialogue_id))
    assert second.calls == 3  # only dialogue "b" was judged
    assert [r.dialogue_id for r in records] == ["a", "b"] == seen
    assert set(load_cache(cache, "fake")) == {"a", "b"}
    assert load_cache(cache, "another-judge") == {}  # a different judge never reuses these scores

    with cache.open("a") as handle:
        handle.write('{"dialogue_id": "torn')  # a run killed mid-line
    assert set(load_cache(cache, "fake")) == {"a", "b"}


def test_role_inversion_judge_retries_then_gives_none():
    judge = role_inversion_judge(FakeListChatModel(responses=["hmm", '{"inverted": true}']), retries=1)
    assert judge("Salesman: hi", "we offer plans") is True
    assert role_inversion_judge(FakeListChatModel(responses=["hmm"]), retries=1)("", "no") is None
