"""Error types the CLI turns into clear messages and exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


def count(n: int, noun: str, plural: str | None = None) -> str:
    """"1 bad line", "3 bad lines": a number and its noun, agreeing (every message says it this way)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def json_problem(msg: str, column: int) -> str:
    """A JSON syntax error in words: "Expecting value at column 5"; Python's own message may already
    end in "at" ("Unterminated string starting at"), which must not become "at at column"."""
    return f"{msg} column {column}" if msg.endswith(" at") else f"{msg} at column {column}"


class GroupedSimError(Exception):
    """Base for errors a user can act on; the CLI prints the message without a traceback."""

    exit_code = 1


def validation_field(exc: ValidationError, whole: str = "<line>") -> tuple[str, str]:
    """(dotted field, message) of a validation error's first problem; `whole` names a record-level one."""
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for our own validators' words
    return ".".join(str(p) for p in first.get("loc", ())) or whole, message


def validation_detail(exc: ValidationError, whole: str = "<line>") -> str:
    """"field 'a.b': message" for the first problem of a validation error."""
    field, message = validation_field(exc, whole)
    return f"field '{field}': {message}"


class InputError(GroupedSimError):
    """Bad input from the user: a file, a line, a field, a flag. Exit code 2, nothing written."""

    exit_code = 2

    @classmethod
    def from_validation(cls, exc: ValidationError, where: str, whole: str = "<line>") -> InputError:
        """"WHERE: field 'a.b': message" (WHERE is e.g. FILE:LINE or a flag); raise it `from exc`."""
        return cls(f"{where}: {validation_detail(exc, whole)}")


class ModelSpecError(InputError):
    """A model spec that cannot be parsed or whose backend is not installed."""


class DialoguesFailed(GroupedSimError):
    """A run finished, but some dialogues ended in an error (agent, customer model, store or
    infrastructure down): exit code 3, so a script never mistakes a failed run for a good one."""

    exit_code = 3
