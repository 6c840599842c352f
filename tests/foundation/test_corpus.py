"""The corpus contract: a bad line names file, line and field; nothing is skipped silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grouped_sim.corpus import CorpusError, JsonlAppender, read_corpus, write_corpus
from grouped_sim.errors import InputError
from grouped_sim.schemas import Dialogue, Outcome

GOOD = {
    "id": "d-1",
    "domain": "broadband",
    "turns": [{"role": "salesman", "text": "Hi there"}, {"role": "customer", "text": "who's this"}],
    "outcome": "hung_up",
    "profile": None,
    "meta": {},
}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def with_changes(**changes: object) -> str:
    record = json.loads(json.dumps(GOOD))
    record.update(changes)
    return json.dumps(record)


def test_sample_corpus_meets_the_contract(corpus: list[Dialogue]) -> None:
    assert len(corpus) >= 60
    assert len({d.domain for d in corpus}) >= 2
    archetypes = {d.profile.archetype if d.profile else d.meta.get("archetype") for d in corpus}
    assert {"price-sensitive", "resistance-heavy", "status-quo", "rational-skeptical", "competition-anxious"} <= archetypes
    assert all(t.sop_stage for d in corpus for t in d.customer_turns())
    # Realistic endings: hang-ups after two or three customer turns exist.
    assert any(d.outcome is Outcome.hung_up and len(d.customer_turns()) <= 3 for d in corpus)


def test_valid_file_reads_and_blank_lines_are_allowed(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [json.dumps(GOOD), "", with_changes(id="d-2")])
    assert [d.id for d in read_corpus(path)] == ["d-1", "d-2"]


@pytest.mark.parametrize(
    ("bad_line", "field", "words"),
    [
        ("{not json", "<json>", "not valid JSON"),
        ("[1, 2]", "<line>", "expected a JSON object"),
        (with_changes(outcome="maybe"), "outcome", "agreed"),
        (with_changes(turns=[{"role": "robot", "text": "hi"}]), "turns.0.role", "salesman"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "turns"}), "turns", "Field required"),
        (with_changes(turns=[{"role": "salesman", "text": "hi"}]), "<line>", "customer turn"),
        (with_changes(surprise=1), "surprise", "Extra inputs"),
    ],
)
def test_bad_line_names_file_line_and_field(tmp_path: Path, bad_line: str, field: str, words: str) -> None:
    path = write_lines(tmp_path / "c.jsonl", [json.dumps(GOOD), bad_line])
    with pytest.raises(CorpusError) as info:
        read_corpus(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), 2, field)
    assert words in str(err)
    assert str(err).startswith(f"{path}:2:")


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [json.dumps(GOOD), json.dumps(GOOD)])
    with pytest.raises(CorpusError, match="duplicate id 'd-1'"):
        read_corpus(path)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_corpus(tmp_path / "nope.jsonl")


def test_written_corpus_reads_back_identically(tmp_path: Path, corpus: list[Dialogue]) -> None:
    path = tmp_path / "copy.jsonl"
    write_corpus(path, corpus[:5])
    assert read_corpus(path) == corpus[:5]
    with JsonlAppender(path) as sink:
        sink.write_dialogue(corpus[5])
    assert [d.id for d in read_corpus(path)] == [d.id for d in corpus[:6]]
