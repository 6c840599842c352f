"""JSON Lines and JSON files in and out: the one reader and the writers every module uses.

Reading (`iter_jsonl`): one JSON object per physical line; blank lines are allowed and still
counted, so a reported line number is the line an editor shows. A bad line is an error naming
the file and the line: invalid JSON, something other than an object, or bytes that are not UTF-8
(with their byte offset in the file). Two relaxations, each for one kind of file:

- `bad=[...]` (lenient): bad lines are collected there and skipped, for a reader that must report
  every bad line of an input instead of stopping at the first (mining a corpus);
- `torn_tail_ok=True`: a last line without its newline that does not parse is skipped, for the
  append-only caches a killed run may leave half-written. Any other bad line is still an error.
  `iter_cache` reads such a cache as pydantic records, skipping lines of another shape too.

Whole text files a user gives (a config, a plan, a report, a profile, a taxonomy) are read by
`read_text` / `read_json` / `load_user_yaml`: the one path for them too, so bytes that are not
UTF-8 are reported with file, line and byte offset, and a syntax error with its line, never as a
traceback.

Writing: `JsonlAppender` appends one flushed line per record (and first repairs a torn last line,
so a resumed run never glues its first record onto half a line); `write_jsonl`,
`write_json_atomic` and `write_text_atomic` write a whole file through a temp file and a rename,
so readers never see half of it. A write the disk refuses (full, read-only, quota) is an
`OutputError` naming the file: the temp file is removed and an appended file keeps every whole
line written before, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from grouped_sim.errors import GroupedSimError, InputError, json_problem

M = TypeVar("M", bound=BaseModel)


class OutputError(GroupedSimError):
    """A file could not be written (disk full, read-only folder, quota): what was flushed is kept."""

    @classmethod
    def writing(cls, path: Path | str, exc: OSError) -> OutputError:
        reason = exc.strerror or str(exc)
        return cls(f"{path}: cannot write it: {reason}; nothing half-written was kept (free space or choose another folder, then rerun)")


class LineError(InputError):
    """One line of an input file that cannot be used: FILE:LINE[: field 'F']: message."""

    def __init__(self, path: Path | str, line: int, field: str | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.detail = message
        where = f"{self.path}:{line}"
        super().__init__(f"{where}: field '{field}': {message}" if field else f"{where}: {message}")


def parse_object(text: str, path: Path | str, line: int, error: type[LineError] = LineError) -> dict[str, Any]:
    """One JSONL line as a JSON object, or `error` pointing at the line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(path, line, "<json>", f"not valid JSON ({json_problem(exc.msg, exc.colno)})") from exc
    if not isinstance(value, dict):
        raise error(path, line, "<line>", f"expected a JSON object, got {type(value).__name__}")
    return value


def _physical_lines(path: Path) -> Iterator[tuple[int, int, bytes, bool]]:
    """(line number, byte offset of the line, its bytes without the newline, whether it had one)."""
    offset = 0
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                ended = raw.endswith(b"\n")
                yield number, offset, raw[:-1] if ended else raw, ended
                offset += len(raw)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a folder, not a JSONL file") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror}") from exc


def undecodable(path: Path | str, data: bytes, exc: UnicodeDecodeError, what: str = "file") -> InputError:
    """The error for bytes that are not UTF-8: file, line, and byte offset in the file."""
    line = data.count(b"\n", 0, exc.start) + 1
    return InputError(f"{path}:{line}: the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at byte offset {exc.start} of the file)")


def read_text(path: Path | str, what: str = "file") -> str:
    """A whole text file the user gave; `what` names its kind in errors ("config file", ...)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: {what} not found") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a folder, expected a {what}") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise undecodable(path, data, exc, what) from exc


def read_json(path: Path | str, what: str = "JSON file") -> Any:
    """A whole JSON document the user gave (or one we wrote that may be damaged), or a clear error."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: the {what} is not valid JSON ({json_problem(exc.msg, exc.colno)})") from exc


def load_user_yaml(path: Path | str, what: str) -> Any:
    """A YAML file the user gave (`what` names its kind in errors); never a traceback."""
    import yaml

    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputError(f"{where}: {what} is not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc


def iter_jsonl(
    path: Path | str,
    *,
    bad: list[LineError] | None = None,
    torn_tail_ok: bool = False,
    error: type[LineError] = LineError,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(physical line number, object) for every non-blank line; see the module docstring for `bad` and `torn_tail_ok`.

    `error` is the LineError subclass raised (or collected), e.g. CorpusError for corpora.
    """
    path = Path(path)
    for number, offset, raw, ended in _physical_lines(path):
        try:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                at = offset + exc.start
                raise error(path, number, None, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte offset {at} of the file)") from exc
            if not text.strip():
                continue
            value = parse_object(text, path, number, error)
        except LineError as exc:
            if torn_tail_ok and not ended:
                return  # the last line, cut short by a killed writer: redone by the caller
            if bad is None:
                raise
            bad.append(exc)
            continue
        yield number, value


def iter_cache(path: Path | str, record: type[M]) -> Iterator[M]:
    """The records of an append-only cache (a JSONL file a JsonlAppender writes) that validate as `record`.

    No file yet: nothing. A last line torn by a kill, and a line of another shape (written by
    another version), are skipped: the caller simply does that work again. Other damage is an error.
    """
    path = Path(path)
    if not path.is_file():
        return
    for _line_no, raw in iter_jsonl(path, torn_tail_ok=True):
        try:
            yield record.model_validate(raw)
        except ValidationError:
            continue


def to_json_line(record: Any) -> str:
    """A record as one JSON line: pydantic models by their own serialiser, anything else by json."""
    if isinstance(record, BaseModel):
        return record.model_dump_json()
    return json.dumps(record, ensure_ascii=False)


def _repair_tail(path: Path) -> None:
    """Make an append start on a line of its own: finish a whole last line, cut a torn one."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        size = handle.seek(0, os.SEEK_END)
        start, chunk = size, 1 << 16
        tail = b""
        while start > 0:  # find the start of the last line without reading the whole file
            start = max(0, start - chunk)
            handle.seek(start)
            tail = handle.read(size - start)
            cut = tail.rfind(b"\n")
            if cut != -1:
                start += cut + 1
                tail = tail[cut + 1 :]
                break
        try:
            json.loads(tail.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            handle.truncate(start)
        else:
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")


class JsonlAppender:
    """Appends one record per line and syncs it to disk, so a killed run keeps every finished line.

    A write the disk refuses is cut back to the last whole line and raised as an OutputError.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _repair_tail(self.path)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError.writing(self.path, exc) from exc

    def write_line(self, line: str) -> None:
        if "\n" in line:
            raise ValueError("a JSONL record must not contain a newline")
        data = memoryview((line + "\n").encode("utf-8"))
        size = os.fstat(self._fd).st_size
        try:
            # One write call per record keeps each line whole even if the process dies right after.
            while data:
                data = data[os.write(self._fd, data) :]
            os.fsync(self._fd)
        except OSError as exc:
            try:  # never leave half a line behind: back to the last whole one
                os.ftruncate(self._fd, size)
            except OSError:
                pass
            raise OutputError.writing(self.path, exc) from exc

    def write_record(self, record: Any) -> None:
        """A dict or a pydantic model as one line."""
        self.write_line(to_json_line(record))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _replace_atomically(path: Path | str, write: Any) -> Path:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError.writing(path, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_jsonl(path: Path | str, records: Iterable[Any]) -> int:
    """Write records (dicts or pydantic models) as a whole JSONL file, atomically; returns how many."""
    count = 0

    def write(handle: Any) -> None:
        nonlocal count
        for record in records:
            handle.write(to_json_line(record) + "\n")
            count += 1

    _replace_atomically(path, write)
    return count


def write_json_atomic(path: Path | str, payload: object) -> None:
    """Write a JSON document atomically."""
    _replace_atomically(path, lambda handle: handle.write(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n"))


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write a text file (a rendered report, a markdown table) atomically."""
    _replace_atomically(path, lambda handle: handle.write(text))


CACHE_ENV = "GROUPED_SIM_CACHE"


def cache_root() -> Path:
    """This machine's cache of derived files (joined and de-quantised models, converted tokenizers,
    judge scores, text vectors): $GROUPED_SIM_CACHE, else ~/.cache/grouped-sim. Everything in it
    can be made again; nothing in it is a result."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "grouped-sim")
