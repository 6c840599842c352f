"""Helpers shared by the metric modules: the lexical cues, tokenisation, safe averages.

Every metric returns `None` (never 0) when it has nothing to measure, so an empty run or a
missing reference shows up as "n/a" in a report instead of a misleading zero.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from grouped_sim.resources import load_resource

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def cues() -> dict[str, Any]:
    """The lexical cues the metrics read (`data/cues.yaml`)."""
    return load_resource("grouped_sim", "data/cues.yaml")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters/digits, inner apostrophes kept: "don't" is one word)."""
    return _WORD_RE.findall(text.lower())


def word_count(text: str) -> int:
    """Length ℓ of a reply in words: the unit of TLV and of the length distributions."""
    return len(words(text))


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are present; None when there are none."""
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def std(values: Iterable[float | None]) -> float | None:
    """Population standard deviation of the present values; None when there are none."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    m = sum(present) / len(present)
    return math.sqrt(sum((v - m) ** 2 for v in present) / len(present))


def gap(simulated: float | None, reference: float | None) -> float | None:
    """Simulated minus reference; None when either side is missing."""
    if simulated is None or reference is None:
        return None
    return simulated - reference


def rounded(value: Any, digits: int = 4) -> Any:
    """Round floats inside nested dicts/lists for stable, readable JSON."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def first(seq: Sequence[Any]) -> Any:
    return seq[0] if seq else None
