"""Profiles without a language model: read a customer's profile from what they said in the call.

A team's own transcripts arrive without profiles. When no extractor model is given (or its answer
fails its checks), the profile is built from the transcript alone:

- what the customer said about themselves (first-person sentences: "I run a cafe", "we're on
  FoodRun", "my wife does the computer stuff") becomes the business context and the summary;
- the sentences with a complaint or a worry become pain points;
- the archetype is the preset whose description is nearest (MiniLM cosine) to the customer's own
  words, so a team's presets file works the same way;
- the speaking style (terse or talkative, questions, hedges) comes from the customer's own turns.

Nothing is read from the call's outcome, the salesman's words or the stage labels: a derived
profile never carries the decision. With `pre_decision=True` only the first third of the
customer's turns is read (at least one), so a held-out customer probed against the real
salesman's moves cannot have their decision in their profile.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence

import numpy as np

from grouped_sim.embeddings import embed
from grouped_sim.profiles.presets import Presets, load_presets
from grouped_sim.schemas import Dialogue, Profile

DERIVED_SOURCE = "derived"
_SELF_RE = re.compile(r"\b(?:i'?m|i am|i run|i own|i have|i've|i work|i do|we'?re|we are|we have|we've|we do|we use|my|our)\b", re.I)
_WORRY_RE = re.compile(r"\b(?:cost|costs|expensive|price|fee|fees|commission|busy|problem|worried|worry|hate|fed up|too much|can'?t|don'?t have|slow|late|broke|tired|fortune)\b", re.I)
_HEDGE_RE = re.compile(r"\b(?:maybe|perhaps|not sure|i guess|dunno|i don'?t know|depends|might)\b", re.I)
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


def customer_lines(dialogue: Dialogue, pre_decision: bool = False) -> list[str]:
    """The customer's own turns; only the first third of them (at least one) when `pre_decision`."""
    lines = [t.text for t in dialogue.customer_turns() if t.text.strip()]
    if pre_decision:
        lines = lines[: max(1, math.ceil(len(lines) / 3))]
    return lines


def _sentences(lines: Sequence[str]) -> list[str]:
    return [s.strip() for line in lines for s in _SENTENCE_RE.split(line) if s.strip()]


def speaking_style(lines: Sequence[str]) -> str:
    """How they talk: length of their replies, questions, hedges."""
    words = [len(line.split()) for line in lines]
    mean = statistics.mean(words) if words else 0.0
    size = "terse, a few words at a time" if mean < 6 else "short, plain replies" if mean < 14 else "talkative, full sentences"
    parts = [f"{size} (about {round(mean)} words a reply)"]
    questions = sum("?" in line for line in lines) / len(lines) if lines else 0.0
    if questions >= 0.3:
        parts.append("asks a lot of questions")
    if any(_HEDGE_RE.search(line) for line in lines):
        parts.append("hedges")
    return ", ".join(parts)


def nearest_archetype(lines: Sequence[str], presets: Presets) -> str | None:
    """The preset archetype whose description reads most like what the customer said."""
    if not lines or not presets.archetypes:
        return None
    ids = list(presets.archetypes)
    vectors = embed([presets.archetypes[a].description for a in ids] + [" ".join(lines)])
    scores = vectors[:-1] @ vectors[-1]
    return ids[int(np.argmax(scores))]


def derive_profile(dialogue: Dialogue, presets: Presets | None = None, pre_decision: bool = False) -> Profile:
    """A profile from the customer's own words alone (see the module docstring)."""
    presets = presets or load_presets()
    lines = customer_lines(dialogue, pre_decision)
    sentences = _sentences(lines)
    about = [s for s in sentences if _SELF_RE.search(s)][:3]
    worries = [s for s in sentences if _WORRY_RE.search(s)][:3]
    style = speaking_style(lines)
    archetype = nearest_archetype(lines, presets)
    said = "; ".join(f'"{s}"' for s in (about or sentences)[:2])
    summary = f"A customer in a {dialogue.domain} sales call; {style}." + (f" In their words: {said}." if said else "")
    return Profile(
        summary=summary,
        archetype=archetype,
        domain=dialogue.domain,
        business_context="; ".join(about) or None,
        pain_points=worries,
        communication_style=style,
        source=DERIVED_SOURCE,
    )
