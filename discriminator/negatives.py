"""Hard negatives: real customer replies from OTHER calls at the same SOP stage.

A model-written negative differs from a real reply in surface style (length, politeness), so a
scorer trained only on those learns style. A real reply lifted from another call at the same stage
has the right style and the right kind of content ("how much is it?" at a price stage) but answers
a different conversation: telling it from the real one needs the context. The coherence scorer
trains on these alone; the realism discriminator adds them to its model-written negatives.

The rule, shared by both: for a reply of dialogue d at stage s, candidates are the replies of other
dialogues at stage s; when s is missing, or no other dialogue has a reply at s, any other
dialogue's reply. A candidate whose text equals the reply's own (case and spacing aside: "no",
"ok") is never a negative, since it would answer the context just as well. Sampling is seeded per
reply (seed, dialogue id, turn index), so a reply's negatives do not depend on the order of the
corpus or on which other replies are asked for.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """One real customer reply and where it was said."""

    dialogue_id: str
    turn_index: int
    stage: str | None
    text: str


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _draw(pool: Sequence[Reply], reply: Reply, n: int, rng: random.Random) -> list[Reply]:
    """Up to n distinct usable candidates of `pool`: rejection sampling, then an exhaustive pass."""
    own = _norm(reply.text)

    def usable(c: Reply) -> bool:
        return c.dialogue_id != reply.dialogue_id and _norm(c.text) != own

    picked: list[Reply] = []
    seen: set[str] = set()
    # Most candidates are usable: a few random draws find n of them without walking the pool, which
    # keeps a 100k-reply corpus linear.
    for _ in range(8 * n + 8):
        if len(picked) == n or not pool:
            break
        c = pool[rng.randrange(len(pool))]
        if usable(c) and _norm(c.text) not in seen:
            seen.add(_norm(c.text))
            picked.append(c)
    if len(picked) < n:
        rest = [c for c in pool if usable(c) and _norm(c.text) not in seen]
        for c in rng.sample(rest, len(rest)):
            if len(picked) == n:
                break
            if _norm(c.text) not in seen:
                seen.add(_norm(c.text))
                picked.append(c)
    return picked


def other_call_replies(replies: Sequence[Reply], n: int, seed: int = 0) -> list[list[Reply]]:
    """For each reply, up to `n` replies from other calls at its stage (see the module rule)."""
    # Pools in a fixed order (by call and turn), so what a reply draws does not depend on corpus order.
    everyone = sorted(replies, key=lambda r: (r.dialogue_id, r.turn_index))
    by_stage: dict[str, list[Reply]] = {}
    for r in everyone:
        if r.stage:
            by_stage.setdefault(r.stage, []).append(r)
    out: list[list[Reply]] = []
    for reply in replies:
        rng = random.Random(f"{seed}:{reply.dialogue_id}:{reply.turn_index}")
        picked = _draw(by_stage.get(reply.stage or "", []), reply, n, rng) if reply.stage else []
        if not picked:
            picked = _draw(everyone, reply, n, rng)
        out.append(picked)
    return out
