"""The corpus contract: a bad line names file, line and field; nothing is skipped silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grouped_sim.corpus import CorpusError, DialogueAppender, read_corpus, write_corpus
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


def test_a_duplicate_after_blank_lines_is_reported_on_its_physical_line(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD), "", "", with_changes(id="d-2"), "", "", "", "", "", json.dumps(GOOD)]
    path = write_lines(tmp_path / "c.jsonl", lines)
    with pytest.raises(CorpusError) as info:
        read_corpus(path)
    assert (info.value.line, info.value.field) == (10, "id")
    assert str(info.value) == f"{path}:10: field 'id': duplicate id 'd-1' (first on line 1)"


def test_a_line_that_is_not_utf8_names_its_line_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    first = json.dumps(GOOD).encode() + b"\n\n"
    bad = with_changes(id="d-2").replace("Hi there", "Caf\u00e9 owner?").encode("latin-1") + b"\n"
    path.write_bytes(first + bad)
    with pytest.raises(CorpusError) as info:
        read_corpus(path)
    offset = len(first) + bad.index(b"\xe9")
    assert info.value.line == 3
    assert str(info.value) == f"{path}:3: not UTF-8 text (byte 0xe9 at byte offset {offset} of the file)"


@pytest.mark.parametrize("command", [["sop", "build", "--db", "{tmp}/db"], ["discriminator", "data", "--out", "{tmp}/pairs"]])
def test_cli_rejects_a_non_utf8_corpus_with_exit_code_2_and_the_place(tmp_path: Path, command: list[str]) -> None:
    import os
    import subprocess
    import sys

    corpus = tmp_path / "calls.jsonl"
    corpus.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"id": "d-2", "domain": "caf\xe9"}\n')
    args = [a.format(tmp=tmp_path) for a in command] + ["--corpus", str(corpus)]
    proc = subprocess.run(
        [sys.executable, "-c", "from grouped_sim.cli.app import main; main()", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "500"},
    )
    said = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2, said
    assert f"{corpus}:2: not UTF-8 text (byte 0xe9 at byte offset {len(json.dumps(GOOD)) + 1 + 28} of the file)" in said
    assert "Traceback" not in said


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_corpus(tmp_path / "nope.jsonl")


def test_written_corpus_reads_back_identically(tmp_path: Path, corpus: list[Dialogue]) -> None:
    path = tmp_path / "copy.jsonl"
    write_corpus(path, corpus[:5])
    assert read_corpus(path) == corpus[:5]
    with DialogueAppender(path) as sink:
        sink.write_dialogue(corpus[5])
    assert [d.id for d in read_corpus(path)] == [d.id for d in corpus[:6]]
