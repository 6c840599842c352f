"""Corpora: JSONL, one dialogue per line, read and written through `grouped_sim.io`.

A bad line is never skipped: it raises `CorpusError` naming the file, the line and the field,
because a silently shortened corpus skews every figure computed from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from grouped_sim.errors import InputError, validation_field
from grouped_sim.io import JsonlAppender as _JsonlAppender
from grouped_sim.io import LineError, iter_jsonl, parse_object, write_jsonl
from grouped_sim.schemas import Dialogue

__all__ = ["CorpusError", "DialogueAppender", "dialogue_from", "iter_corpus", "iter_corpus_lines", "parse_line", "read_corpus", "read_corpus_lines", "write_corpus"]


class CorpusError(LineError):
    """A corpus line that does not meet the contract."""


def dialogue_from(raw: dict[str, Any], path: Path | str, line_no: int) -> Dialogue:
    """Validate one parsed corpus line, or raise a CorpusError that points at it."""
    try:
        return Dialogue.model_validate(raw)
    except ValidationError as exc:
        raise CorpusError(path, line_no, *validation_field(exc)) from exc


def parse_line(text: str, path: Path | str, line_no: int) -> Dialogue:
    """Parse one JSONL line into a dialogue, or raise a CorpusError that points at it."""
    return dialogue_from(parse_object(text, path, line_no, CorpusError), path, line_no)


def iter_corpus_lines(path: Path | str) -> Iterator[tuple[int, Dialogue]]:
    """(physical line number, dialogue) in file order; blank lines are allowed, anything else must validate."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: corpus file not found")
    for line_no, raw in iter_jsonl(path, error=CorpusError):
        yield line_no, dialogue_from(raw, path, line_no)


def iter_corpus(path: Path | str) -> Iterator[Dialogue]:
    """Yield dialogues in file order."""
    for _line_no, dialogue in iter_corpus_lines(path):
        yield dialogue


def read_corpus_lines(path: Path | str) -> list[tuple[int, Dialogue]]:
    """(physical line number, dialogue) of a whole corpus; duplicate ids are an error because ids key the store and resume."""
    lines: list[tuple[int, Dialogue]] = []
    seen: dict[str, int] = {}
    for line_no, dialogue in iter_corpus_lines(path):
        if dialogue.id in seen:
            raise CorpusError(path, line_no, "id", f"duplicate id {dialogue.id!r} (first on line {seen[dialogue.id]})")
        seen[dialogue.id] = line_no
        lines.append((line_no, dialogue))
    return lines


def empty_turn_warnings(lines: Iterable[tuple[int, Dialogue]], path: Path | str, consequence: str, limit: int = 5) -> list[str]:
    """Turns with no text, by file and line, and what becomes of them: real calls have silences,
    but an empty reply stored or measured should never be a surprise (the first `limit`, then a count)."""
    found = [f"{path}:{line}: turn {i} ({t.role}) has empty text; {consequence}" for line, d in lines for i, t in enumerate(d.turns) if not t.text]
    if len(found) > limit:
        found = found[:limit] + [f"{path}: {len(found) - limit} more turns with empty text"]
    return found


def read_corpus(path: Path | str) -> list[Dialogue]:
    """Read a whole corpus (see `read_corpus_lines`)."""
    return [dialogue for _, dialogue in read_corpus_lines(path)]


class DialogueAppender(_JsonlAppender):
    """A JsonlAppender for dialogues (simulation output): one flushed line per finished dialogue."""

    def write_dialogue(self, dialogue: Dialogue) -> None:
        self.write_record(dialogue)


def write_corpus(path: Path | str, dialogues: Iterable[Dialogue]) -> None:
    """Write a whole corpus atomically (temp file, then rename): readers never see half a file."""
    write_jsonl(path, dialogues)

