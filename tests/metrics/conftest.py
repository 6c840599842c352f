"""Small hand-built dialogues for metric tests: every expected number is worked out by hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from grouped_sim.schemas import Dialogue, Outcome, Turn


def make_dialogue(customer: Sequence[str], *, id: str = "d", domain: str = "food-delivery", outcome: Outcome = Outcome.unknown,
                  stages: Sequence[str | None] | None = None, salesman: str = "hello, quick question") -> Dialogue:
    """Salesman and customer alternate; `stages` (if given) labels every turn in order."""
    turns: list[Turn] = []
    for text in customer:
        turns.append(Turn(role="salesman", text=salesman))
        turns.append(Turn(role="customer", text=text))
    if stages is not None:
        for turn, stage in zip(turns, stages):
            turn.sop_stage = stage
    return Dialogue(id=id, domain=domain, turns=turns, outcome=outcome)


@pytest.fixture
def dialogue_factory():
    return make_dialogue


class TableEmbed:
    """A stand-in for φ: looks each text up in a table of vectors, so cosines are known exactly."""

    def __init__(self, table: dict[str, Sequence[float]]) -> None:
        self.table = {k: np.asarray(v, dtype=float) for k, v in table.items()}
        self.calls = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.stack([self.table[t] for t in texts]) if texts else np.zeros((0, 2))


@pytest.fixture
def table_embed():
    return TableEmbed
