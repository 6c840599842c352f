"""JSON objects out of model text: the one parser for answers that should be JSON and often are not quite.

Models wrap their JSON in prose or code fences, leave trailing commas, write single quotes or
Python literals (True, None), or stop mid-object when their token budget runs out. This module:

- finds every top-level `{...}` by brace matching that knows quoted strings (so a "}" inside a
  value does not end the object), after removing code fences;
- parses each leniently: as it is, then without trailing commas, then with single quotes and
  Python literals turned into JSON;
- says why nothing was usable: no object at all, an object cut off, or the JSON error.

Used by profile extraction (mining), the LLM judge and the profile generator's chat prompts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from grouped_sim.errors import json_problem

_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
NO_OBJECT = "no JSON object in the answer"
CUT_OFF = "unterminated JSON object (the answer was cut off)"


def strip_fences(text: str) -> str:
    """The text without Markdown code fences (```json ... ```)."""
    return _FENCE.sub("", text or "")


def balanced_objects(text: str) -> tuple[list[str], bool]:
    """(every top-level {...} span, in order; whether an object was still open at the end).

    Quotes (double, and single ones inside an object) are tracked with backslash escapes, so
    braces inside strings do not count. An apostrophe in prose outside any object is ignored.
    """
    spans: list[str] = []
    depth, start, quote, escape = 0, -1, "", False
    for i, ch in enumerate(text):
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'" and depth > 0:
            quote = ch
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans, depth > 0


def loads_lenient(blob: str) -> Any:
    """Parse one JSON value, forgiving trailing commas, single quotes and Python literals.

    Raises ValueError carrying the parser's complaint about the text without trailing commas.
    """
    without_commas = _TRAILING_COMMA.sub(r"\1", blob)
    try:
        return json.loads(blob)
    except json.JSONDecodeError:
        pass
    try:
        return json.loads(without_commas)
    except json.JSONDecodeError as exc:
        error = ValueError(f"invalid JSON ({json_problem(exc.msg, exc.colno)})")
    pythonish = without_commas.replace("'", '"')
    pythonish = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", pythonish)))
    try:
        return json.loads(pythonish)
    except json.JSONDecodeError:
        raise error from None


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level object in `text` that parses (leniently), in order; [] when there is none."""
    spans, _open = balanced_objects(strip_fences(text))
    found = []
    for span in spans:
        try:
            value = loads_lenient(span)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def parse_json_object(text: str) -> dict[str, Any]:
    """The first object in a model's answer that parses; ValueError saying why there is none."""
    spans, still_open = balanced_objects(strip_fences(text))
    first_error: ValueError | None = None
    for span in spans:
        try:
            value = loads_lenient(span)
        except ValueError as exc:
            first_error = first_error or exc
            continue
        if isinstance(value, dict):
            return value
    if first_error is not None:
        raise first_error
    raise ValueError(CUT_OFF if still_open else NO_OBJECT)
