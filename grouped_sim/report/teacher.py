"""Teacher-forced replay (papers/002 §4.5): real history in, one generated customer turn out.

For every customer turn of a real dialogue, the customer model sees the real call up to that
point and writes its own reply; the pair (generated, real) goes to `metrics.likeness`. The model
call is injected (`generate(dialogue, turn_index) -> text`) so this loop knows nothing of graphs.
Each pair is appended to a JSONL cache as soon as it exists, keyed by dialogue id, turn index and
customer model, so an interrupted replay resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from grouped_sim.io import JsonlAppender, iter_cache
from grouped_sim.schemas import Dialogue

Generate = Callable[[Dialogue, int], str]


def replay_targets(reference: Sequence[Dialogue]) -> list[tuple[Dialogue, int]]:
    """(dialogue, index of a customer turn) for every customer turn that follows a salesman move."""
    return [(d, i) for d in reference for i, t in enumerate(d.turns) if t.role == "customer" and any(p.role == "salesman" for p in d.turns[:i])]


class Replayed(BaseModel):
    """One cached line: the customer model's reply at one real customer turn, next to the real one."""

    dialogue_id: str
    turn_index: int
    model: str
    generated: str
    reference: str


def _load(cache: Path, model: str) -> dict[tuple[str, int], str]:
    return {(r.dialogue_id, r.turn_index): r.generated for r in iter_cache(cache, Replayed) if r.model == model}


def teacher_forced_pairs(
    reference: Sequence[Dialogue],
    generate: Generate,
    model: str,
    cache: Path | str,
    on_progress: Callable[[], None] | None = None,
) -> list[tuple[str, str]]:
    """(generated, real) for every replayable customer turn, reusing cached generations."""
    cache = Path(cache)
    done = _load(cache, model)
    pairs: list[tuple[str, str]] = []
    with JsonlAppender(cache) as sink:
        for dialogue, index in replay_targets(reference):
            key = (dialogue.id, index)
            if key not in done:
                done[key] = generate(dialogue, index)
                sink.write_record(Replayed(dialogue_id=dialogue.id, turn_index=index, model=model, generated=done[key], reference=dialogue.turns[index].text))
            pairs.append((done[key], dialogue.turns[index].text))
            if on_progress:
                on_progress()
    return pairs
