"""Coherence of customer replies: does each reply answer the call it is in?

The scorer is injected as a plain `score(contexts, replies) -> [P]` callable (the trained one is
`grouped_sim.discriminator.coherence.CoherenceScorer`), so this module needs no model. A context is
the call before the reply, rendered by `grouped_sim.transcript`; only customer replies that follow
a salesman move are scored (an opening line answers nothing).

Two figures, run vs real, each with a 95 % bootstrap interval over dialogues and the human-vs-human
noise floor (`grouped_sim.metrics.intervals.compare_stat`): the mean P over replies, and the
acceptance share (P >= threshold, 0.5 by default: the line the scorer draws between a reply said in
this call and one said in another call at the same stage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from grouped_sim.metrics.intervals import Figure, bootstrap_ci, compare_stat
from grouped_sim.schemas import Dialogue
from grouped_sim.transcript import transcript_text

Score = Callable[[list[str], list[str]], Sequence[float]]
THRESHOLD = 0.5


def reply_indices(dialogue: Dialogue) -> list[int]:
    """Indices of the customer turns that follow a salesman move: the replies coherence scores."""
    turns = dialogue.turns
    return [i for i, t in enumerate(turns) if t.role == "customer" and i > 0 and turns[i - 1].role == "salesman"]


def reply_contexts(dialogue: Dialogue) -> list[tuple[str, str]]:
    """(the call before the reply, the reply) for each reply of `reply_indices`."""
    return [(transcript_text(dialogue.turns[:i]), dialogue.turns[i].text) for i in reply_indices(dialogue)]


def dialogue_scores(dialogues: Sequence[Dialogue], score: Score, batch: int = 256) -> list[list[float]]:
    """P per scored reply, grouped by dialogue (a dialogue with nothing to score gives [])."""
    pairs = [(k, c, r) for k, d in enumerate(dialogues) for c, r in reply_contexts(d)]
    out: list[list[float]] = [[] for _ in dialogues]
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        got = list(score([c for _, c, _ in chunk], [r for _, _, r in chunk]))
        if len(got) != len(chunk):
            raise ValueError(f"the coherence scorer returned {len(got)} scores for {len(chunk)} replies")
        for (k, _, _), p in zip(chunk, got):
            out[k].append(float(p))
    return out


def mean_p(units: Sequence[Sequence[float]]) -> float | None:
    """Mean over every reply of the units (dialogues): a long call weighs by its replies."""
    values = [p for unit in units for p in unit]
    return sum(values) / len(values) if values else None


def acceptance(threshold: float = THRESHOLD) -> Callable[[Sequence[Sequence[float]]], float | None]:
    """Share of replies with P >= threshold, over every reply of the units."""

    def share(units: Sequence[Sequence[float]]) -> float | None:
        values = [p for unit in units for p in unit]
        return sum(p >= threshold for p in values) / len(values) if values else None

    return share


def summarise(units: Sequence[Sequence[float]], threshold: float = THRESHOLD, seed: int = 0) -> dict[str, Any]:
    """Mean P and acceptance of one set of dialogues' scores, each with its 95 % interval."""
    units = [u for u in units if u]
    accept = acceptance(threshold)

    def rnd(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "dialogues": len(units),
        "replies": sum(len(u) for u in units),
        "mean": rnd(mean_p(units)),
        "mean_ci": bootstrap_ci(units, mean_p, seed=seed),
        "acceptance": rnd(accept(units)),
        "acceptance_ci": bootstrap_ci(units, accept, seed=seed),
    }


def draw_calls(dialogues: Sequence[Dialogue], max_calls: int | None, leave_out: frozenset[str] = frozenset(), seed: int = 0) -> list[Dialogue]:
    """Up to `max_calls` of the dialogues with replies to score, none of `leave_out`, drawn by a
    seeded shuffle of their ids (the same calls on every rerun, so cached scores are reused)."""
    import random

    usable = sorted((d for d in dialogues if d.id not in leave_out and reply_indices(d)), key=lambda d: d.id)
    if max_calls is None or len(usable) <= max_calls:
        return usable
    return sorted(random.Random(f"coherence:{seed}").sample(usable, max_calls), key=lambda d: d.id)


def coherence_figures(
    dialogues: Sequence[Dialogue],
    score: Score,
    reference: Sequence[Dialogue] | None = None,
    *,
    scorer_name: str | None = None,
    threshold: float = THRESHOLD,
    seed: int = 0,
    max_calls: int | None = None,
    leave_out: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The report's coherence block: {"scorer", "threshold", "calls", "replies", "mean", "acceptance"}.

    "mean" and "acceptance" are `Figure`s (sim, real, gap, intervals, noise floor, beyond_noise);
    without a reference only the run's side and its interval are filled. A judge that reads replies
    with a language model costs seconds a reply on a CPU, so each side is at most `max_calls`
    calls (a seeded draw); `leave_out` are reference calls the instrument was trained on, never
    graded as "real" (they would flatter the real side).
    """
    run_calls = draw_calls(dialogues, max_calls, seed=seed)
    ref_calls = draw_calls(reference, max_calls, leave_out, seed=seed) if reference else []
    sim = [u for u in dialogue_scores(run_calls, score) if u]
    ref = [u for u in dialogue_scores(ref_calls, score) if u] if reference else []
    figures: dict[str, Any] = {}
    for key, stat in (("mean", mean_p), ("acceptance", acceptance(threshold))):
        if ref:
            figure = compare_stat(sim, ref, stat, seed=seed)
        else:
            value = stat(sim)
            figure = Figure(sim=None if value is None else round(value, 4), real=None, gap=None, sim_ci=bootstrap_ci(sim, stat, seed=seed), n_sim=len(sim))
        figures[key] = figure.model_dump(mode="json")
    return {
        "scorer": scorer_name,
        "threshold": threshold,
        "calls": {
            "simulated": len(run_calls),
            "reference": len(ref_calls) if reference else None,
            "cap": max_calls,
            "reference_left_out": sum(d.id in leave_out for d in reference) if reference else 0,
        },
        "replies": {"simulated": sum(map(len, sim)), "reference": sum(map(len, ref)) if reference else None},
        **figures,
    }
