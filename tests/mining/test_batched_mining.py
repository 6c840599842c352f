"""Mining on our own backends batches the first attempts: the same records as one call at a time,
each written as it is done, retries still one dialogue (or turn) at a time; API models per call."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage

from grouped_sim.models.base import LocalChatModel
from grouped_sim.schemas import Dialogue
from grouped_sim.sop_db.mine import InputLine, Miner, MineSettings, ProfileExtractor
from grouped_sim.sop_db.tagger import LLMStageAnnotator


def _profile(seed: int) -> str:
    return json.dumps({"summary": f"A shop owner who talks about fees, answer {seed}.", "archetype": "price-sensitive"})


class SeededFake(LocalChatModel):
    """Answers from (the row's seed, its last message) alone, as our backends' rows do: an odd seed
    gets an answer that fails the checks, an even one a valid answer. Records every call."""

    calls: list[tuple[str, int, int | None]] = []  # (kind, rows, seed)
    stage_answers: dict[int, str] = {}  # for the annotator: turn seed -> answer

    @property
    def _llm_type(self) -> str:
        return "seeded-fake"

    def answer(self, conversation: list[BaseMessage], seed: int) -> str:
        if "stage" in str(conversation[0].content).lower():
            return self.stage_answers.get(seed, "pitch")
        return _profile(seed) if seed % 2 == 0 else "sorry, no JSON here"

    def generate_chats(self, conversations: list[list[BaseMessage]], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        self.calls.append(("chats", len(conversations), seed))
        return [self.answer(c, (seed or 0) + i) for i, c in enumerate(conversations)]

    def generate_texts(self, prompts: list[str], stop: list[str] | None = None, seed: int | None = None, max_new_tokens: int | None = None) -> list[str]:
        raise AssertionError("extraction and annotation speak in chat form")


def _items(corpus: list[Dialogue], n: int) -> list[InputLine]:
    return [InputLine(line=i + 1, dialogue=d.model_copy(update={"profile": None}), digest=f"d{i}", seed=i) for i, d in enumerate(corpus[:n])]


def _mine(items: list[InputLine], model: Any, chunk: int) -> list[Any]:
    miner = Miner(MineSettings(extractor="fake", retries=1), tagger=None, extractor=ProfileExtractor(model, retries=1), annotator=None)
    return [r for start in range(0, len(items), chunk) for r in miner.mine_chunk(items[start : start + chunk])]


def test_a_chunk_is_one_batched_call_and_gives_the_records_of_one_call_at_a_time(corpus: list[Dialogue]) -> None:
    items = _items(corpus, 4)
    batched_model = SeededFake(calls=[])
    batched = _mine(items, batched_model, chunk=4)
    alone = _mine(items, SeededFake(calls=[]), chunk=1)
    assert [r.model_dump() for r in batched] == [r.model_dump() for r in alone]
    # One call of 4 rows for the first attempts; the two that failed (odd seeds) retried one by one.
    assert batched_model.calls[0] == ("chats", 4, 0)
    assert [c[1] for c in batched_model.calls[1:]] == [1, 1]
    assert [r.profile_status for r in batched] == ["llm", "llm", "llm", "llm"]
    assert [r.profile_attempts for r in batched] == [1, 2, 1, 2]
    assert "no JSON object" in batched[1].dialogue.meta["profile_extraction"]["errors"][0]


def test_records_come_out_as_each_dialogue_is_done(corpus: list[Dialogue]) -> None:
    """The caller writes each record when it is yielded: the first is out before the next dialogue's retry runs."""
    items = _items(corpus, 4)
    model = SeededFake(calls=[])
    miner = Miner(MineSettings(extractor="fake", retries=1), tagger=None, extractor=ProfileExtractor(model, retries=1), annotator=None)
    records = miner.mine_chunk(items)
    first = next(records)
    assert first.id == items[0].dialogue.id and len(model.calls) == 1
    second = next(records)
    assert second.profile_attempts == 2 and len(model.calls) == 2


def test_gaps_in_the_seeds_split_the_batch_so_each_dialogue_keeps_its_own_seed(corpus: list[Dialogue]) -> None:
    items = _items(corpus, 4)
    items = [items[0], items[1], items[3]]  # item 2 was mined by an earlier, killed run
    model = SeededFake(calls=[])
    records = _mine(items, model, chunk=3)
    assert model.calls[:2] == [("chats", 2, 0), ("chats", 1, 3)]
    assert [r.model_dump() for r in records] == [r.model_dump() for r in _mine(items, SeededFake(calls=[]), chunk=1)]


def test_an_api_model_is_asked_one_call_at_a_time_and_a_failure_is_recorded_not_invented(corpus: list[Dialogue]) -> None:
    items = _items(corpus, 2)
    api = FakeListChatModel(responses=[_profile(0), "nope", "still nope"])
    records = _mine(items, api, chunk=2)
    assert [r.profile_status for r in records] == ["llm", "derived"]
    assert records[1].profile_attempts == 2 and "after 2 attempts" in (records[1].profile_reason or "")
    assert records[1].dialogue.profile is not None and records[1].dialogue.profile.model_dump()["source"] == "derived"


def test_the_annotator_labels_a_dialogue_in_one_batch_and_retries_a_turn_alone(corpus: list[Dialogue]) -> None:
    dialogue = corpus[0]
    n = len(dialogue.turns)
    answers = {i: "price_objection" for i in range(n)} | {1: "no idea", 1 + LLMStageAnnotator.RETRY_SEED_STRIDE: "closing ask"}
    batched_model = SeededFake(calls=[], stage_answers=answers)
    labels = LLMStageAnnotator(batched_model, retries=1).label_dialogue(dialogue)
    assert batched_model.calls == [("chats", n, 0), ("chats", 1, 1 + LLMStageAnnotator.RETRY_SEED_STRIDE)]
    assert [label.stage for label in labels] == ["price_objection", "closing_ask"] + ["price_objection"] * (n - 2)
    api = FakeListChatModel(responses=["price_objection", "no idea", "closing ask"] + ["price_objection"] * (n - 2))  # in call order
    assert LLMStageAnnotator(api, retries=1).label_dialogue(dialogue) == labels


def test_valid_lines_get_consecutive_seeds_so_a_raw_corpus_batches_whole(corpus: list[Dialogue], tmp_path) -> None:
    from grouped_sim.sop_db.mine import read_lenient

    path = tmp_path / "raw.jsonl"
    lines = [d.model_dump_json() for d in corpus[:3]]
    path.write_text("\n".join([lines[0], "{not json", lines[1], lines[2]]) + "\n", encoding="utf-8")
    items, bad = read_lenient(path)
    assert len(bad) == 1 and [(i.line, i.seed) for i in items] == [(1, 0), (3, 1), (4, 2)]


def test_extraction_batches_by_default_only_where_a_batch_pays() -> None:
    """vLLM retires each row when it ends; a transformers batch is padded to its longest answer
    (0.8x of one call at a time), so hf: extractors go one dialogue at a time unless asked."""
    from grouped_sim.cli.mine import default_batch_size

    assert default_batch_size("vllm:some/model") == 8
    assert default_batch_size("hf:smollm2") == default_batch_size("openai:m@http://127.0.0.1:9/v1") == default_batch_size(None) == 1
