"""Reading and writing corpora (JSONL, one dialogue per line).

A bad line is never skipped: it raises `CorpusError` naming the file, the line and the field,
because a silently shortened corpus skews every figure computed from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from grouped_sim.errors import InputError
from grouped_sim.schemas import Dialogue


class CorpusError(InputError):
    """A corpus line that does not meet the contract."""

    def __init__(self, path: Path | str, line: int, field: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.detail = message
        super().__init__(f"{self.path}:{line}: field '{field}': {message}")


def _field_of(error: dict) -> str:
    return ".".join(str(p) for p in error.get("loc", ())) or "<line>"


def parse_line(text: str, path: Path | str, line_no: int) -> Dialogue:
    """Parse one JSONL line into a dialogue, or raise a CorpusError that points at it."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(path, line_no, "<json>", f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(raw, dict):
        raise CorpusError(path, line_no, "<line>", f"expected a JSON object, got {type(raw).__name__}")
    try:
        return Dialogue.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CorpusError(path, line_no, _field_of(first), first["msg"]) from exc


def iter_corpus(path: Path | str) -> Iterator[Dialogue]:
    """Yield dialogues in file order; blank lines are allowed, anything else must validate."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: corpus file not found")
    with path.open(encoding="utf-8") as handle:
        for line_no, text in enumerate(handle, start=1):
            if text.strip():
                yield parse_line(text, path, line_no)


def read_corpus(path: Path | str) -> list[Dialogue]:
    """Read a whole corpus; duplicate ids are an error because ids key the store and resume."""
    dialogues: list[Dialogue] = []
    seen: dict[str, int] = {}
    path = Path(path)
    for line_no, dialogue in enumerate(iter_corpus(path), start=1):
        if dialogue.id in seen:
            raise CorpusError(path, line_no, "id", f"duplicate id {dialogue.id!r} (first seen in dialogue {seen[dialogue.id]})")
        seen[dialogue.id] = line_no
        dialogues.append(dialogue)
    return dialogues


def dialogue_to_json(dialogue: Dialogue) -> str:
    return dialogue.model_dump_json(exclude_none=False)


class JsonlAppender:
    """Appends one record per line and flushes to disk, so a killed run keeps every finished line."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")

    def write_line(self, line: str) -> None:
        if "\n" in line:
            raise ValueError("a JSONL record must not contain a newline")
        # One write call per record keeps each line whole even if the process dies right after.
        self._handle.write(line + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def write_dialogue(self, dialogue: Dialogue) -> None:
        self.write_line(dialogue_to_json(dialogue))

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_corpus(path: Path | str, dialogues: Iterable[Dialogue]) -> None:
    """Write a whole corpus atomically (temp file, then rename): readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for dialogue in dialogues:
            handle.write(dialogue_to_json(dialogue) + "\n")
    os.replace(tmp, path)


def write_json_atomic(path: Path | str, payload: object) -> None:
    """Write a JSON document atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
