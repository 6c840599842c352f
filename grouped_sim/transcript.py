"""The one transcript renderer: a call as "Salesman: ..." / "Customer: ..." lines.

Simulation prompts, training data (D_sim, discriminator pairs), mining prompts, the LLM manager,
the judge and the metrics all show a call this way; rendering it in one place keeps what a model
is trained on identical to what it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from grouped_sim.schemas import Role, Turn

SPEAKERS: dict[str, str] = {"salesman": "Salesman", "customer": "Customer"}


def speaker(role: Role | str) -> str:
    """The label a role speaks under in a transcript."""
    return SPEAKERS[role]


def transcript_lines(turns: Iterable[Turn]) -> list[str]:
    """One "Speaker: text" line per turn."""
    return [f"{speaker(t.role)}: {t.text}" for t in turns]


def transcript_text(turns: Iterable[Turn]) -> str:
    """The call as lines joined by newlines (empty for an empty call)."""
    return "\n".join(transcript_lines(turns))


def parse_transcript(text: str) -> list[tuple[str, str]]:
    """(role, text) turns of a transcript this module rendered: the inverse of `transcript_text`.

    A line that opens with no speaker label continues the turn before it (a turn whose text held a
    newline); text before any label is dropped.
    """
    labels = {f"{label}: ": role for role, label in SPEAKERS.items()}
    turns: list[tuple[str, str]] = []
    for line in text.split("\n"):
        for prefix, role in labels.items():
            if line.startswith(prefix):
                turns.append((role, line[len(prefix) :]))
                break
        else:
            if turns:
                turns[-1] = (turns[-1][0], f"{turns[-1][1]}\n{line}")
    return turns


_ASIDE_RE = re.compile(r"\[[^\]]*\]|\*[^*]*\*|\([^)]*\)")
_OPEN_ASIDE_RE = re.compile(r"\s*[\[(*].*$", re.S)


def strip_asides(text: str) -> str:
    """A spoken line without what a model writes around it: bracketed narration ("[The customer
    sounds unsure]", "*sighs*", "(pauses)"), and one cut off by the token limit before it closed."""
    return _OPEN_ASIDE_RE.sub("", _ASIDE_RE.sub("", text)).strip()
