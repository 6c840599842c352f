"""Propose stages for a new domain: cluster the salesman's moves, for a person to name.

A team whose calls are not telemarketing (or not in English, or sold differently) needs its own
taxonomy. This gives a draft: the salesman moves of the corpus are embedded (MiniLM) and grouped
with k-means; each group becomes a stage with placeholder id and name, its most typical moves as
`examples` (which also seed the stage tagger) and the share of moves it covers. The person names
the stages, merges or splits them, sets each `kind` (opening, pitch, objection, closing, ...) and
passes the file to `fit --taxonomy`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grouped_sim.embeddings import embed
from grouped_sim.schemas import Dialogue
from grouped_sim.sop_db.taxonomy import Stage, Taxonomy

EXAMPLES_PER_STAGE = 4


def _letters(n: int) -> list[int]:
    """0 -> a, 25 -> z, 26 -> ba: stage ids may only hold letters and underscores."""
    digits = [n % 26]
    while n >= 26:
        n //= 26
        digits.insert(0, n % 26)
    return digits


def salesman_moves(dialogues: Sequence[Dialogue]) -> list[str]:
    return [t.text for d in dialogues for t in d.turns if t.role == "salesman" and t.text.strip()]


def propose_taxonomy(dialogues: Sequence[Dialogue], k: int, seed: int = 0) -> tuple[Taxonomy, list[float]]:
    """A draft taxonomy of `k` stages (ordered by where in the call their moves tend to come), and each one's share of moves."""
    from sklearn.cluster import KMeans

    moves = salesman_moves(dialogues)
    positions = [i / max(1, len(d.salesman_turns()) - 1) for d in dialogues for i, t in enumerate(d.salesman_turns()) if t.text.strip()]
    if len(set(moves)) < k:
        raise ValueError(f"{len(set(moves))} distinct salesman moves: too few for {k} stages")
    vectors = embed(moves)
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(vectors)
    labels = model.labels_
    order = sorted(range(k), key=lambda c: float(np.mean([p for p, label in zip(positions, labels) if label == c])))
    stages, shares = [], []
    for rank, cluster in enumerate(order, start=1):
        members = [i for i, label in enumerate(labels) if label == cluster]
        distance = np.linalg.norm(vectors[members] - model.cluster_centers_[cluster], axis=1)
        typical = [moves[members[j]] for j in np.argsort(distance)[:EXAMPLES_PER_STAGE]]
        letter = "".join(chr(ord("a") + d) for d in _letters(rank - 1))
        stages.append(Stage(id=f"stage_{letter}", name=f"Stage {rank} (name me)", description=f"Moves like: {typical[0]}", examples=typical))
        shares.append(round(len(members) / len(moves), 3))
    return Taxonomy(stages=stages), shares
