"""Objective diversity of simulated customers (papers/004 §2.2.2): TLV, IRS, SNR.

- TLV (eq. 2): population variance of the customer's reply lengths ℓ_t (in words) within one
  dialogue, then averaged over dialogues. Unbounded, so the paper also plots each run's *share*
  of the summed TLV across the compared runs (`normalised_tlv_shares`).
- IRS (eq. 3): 1 − mean cosine similarity φ(r_t)·φ(r_{t−1}) of adjacent customer replies, with φ
  the shared MiniLM encoder. Needs two replies; a one-reply dialogue has no IRS (None, not 0).
  `irs_by_turn` is the sliding-window reading of the paper's Figure 4b.
- SNR (eq. 4): distinct SOP nodes visited in a dialogue / size of the taxonomy. The taxonomy is
  passed in (ids or size): the core never loads `sop_db`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from grouped_sim.metrics._common import mean, word_count
from grouped_sim.schemas import Dialogue

EmbedFn = Callable[[Sequence[str]], np.ndarray]


def _default_embed() -> EmbedFn:
    from grouped_sim.embeddings import embed

    return embed


def customer_lengths(dialogue: Dialogue) -> list[int]:
    """ℓ_t for every customer reply of a dialogue, in words."""
    return [word_count(t.text) for t in dialogue.customer_turns()]


def tlv(lengths: Sequence[float]) -> float | None:
    """Eq. 2: (1/T) Σ (ℓ_t − ℓ̄)². One reply gives 0.0; no reply gives None."""
    if len(lengths) == 0:
        return None
    arr = np.asarray(lengths, dtype=float)
    return float(np.mean((arr - arr.mean()) ** 2))


def mean_tlv(dialogues: Sequence[Dialogue]) -> float | None:
    """TLV per dialogue, averaged over the run (None for an empty run)."""
    return mean(tlv(customer_lengths(d)) for d in dialogues)


def normalised_tlv_shares(tlv_by_run: dict[str, float | None]) -> dict[str, float | None]:
    """Each run's share of the summed TLV (the paper's Figure 4a): shares sum to 1.

    Runs with no TLV get None; when every TLV is zero the shares are equal (no run is more varied).
    """
    present = {k: float(v) for k, v in tlv_by_run.items() if v is not None}
    total = sum(present.values())
    shares: dict[str, float | None] = {}
    for run, value in tlv_by_run.items():
        if value is None:
            shares[run] = None
        elif total > 0:
            shares[run] = float(value) / total
        else:
            shares[run] = 1.0 / len(present)
    return shares


def irs_from_vectors(vectors: np.ndarray) -> float | None:
    """Eq. 3 on unit vectors φ(r_1..r_T): 1 − mean cos of adjacent pairs; None when T < 2."""
    if len(vectors) < 2:
        return None
    v = np.asarray(vectors, dtype=float)
    norms = np.linalg.norm(v, axis=1)
    norms[norms == 0] = 1.0
    v = v / norms[:, None]
    cos = np.sum(v[1:] * v[:-1], axis=1)
    return float(1.0 - cos.mean())


def _customer_vectors(dialogues: Sequence[Dialogue], embed_fn: EmbedFn | None) -> list[np.ndarray]:
    """φ of every customer reply, one array per dialogue, from a single batched encoder call."""
    texts = [[t.text for t in d.customer_turns()] for d in dialogues]
    flat = [t for ts in texts for t in ts]
    if not flat:
        return [np.zeros((0, 0)) for _ in dialogues]
    vectors = (embed_fn or _default_embed())(flat)
    out, i = [], 0
    for ts in texts:
        out.append(np.asarray(vectors[i : i + len(ts)]))
        i += len(ts)
    return out


def irs_per_dialogue(dialogues: Sequence[Dialogue], embed_fn: EmbedFn | None = None) -> list[float | None]:
    """IRS of each dialogue (None for dialogues with fewer than two customer replies)."""
    return [irs_from_vectors(v) for v in _customer_vectors(dialogues, embed_fn)]


def mean_irs(dialogues: Sequence[Dialogue], embed_fn: EmbedFn | None = None) -> float | None:
    """IRS averaged over the dialogues that have one."""
    return mean(irs_per_dialogue(dialogues, embed_fn))


def irs_by_turn(dialogues: Sequence[Dialogue], window: int = 3, embed_fn: EmbedFn | None = None) -> list[dict[str, float | int]]:
    """Sliding-window IRS by customer-turn index (Figure 4b of papers/004).

    At turn t (1-based, t ≥ 2) each dialogue that reaches t contributes
    1 − mean cos(φ(r_j), φ(r_{j−1})) over j in [max(2, t−window+1), t]; the values are averaged
    over those dialogues. A curve that falls with t means the customer starts repeating itself.
    Returns [{"turn": t, "irs": value, "dialogues": n}, ...].
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    per: dict[int, list[float]] = {}
    for vecs in _customer_vectors(dialogues, embed_fn):
        if len(vecs) < 2:
            continue
        v = vecs / np.maximum(np.linalg.norm(vecs, axis=1), 1e-12)[:, None]
        cos = np.sum(v[1:] * v[:-1], axis=1)  # cos[j-2] pairs reply j with reply j-1 (1-based j)
        for t in range(2, len(v) + 1):
            lo = max(2, t - window + 1)
            per.setdefault(t, []).append(float(1.0 - cos[lo - 2 : t - 1].mean()))
    return [{"turn": t, "irs": float(np.mean(vals)), "dialogues": len(vals)} for t, vals in sorted(per.items())]


def dialogue_stages(dialogue: Dialogue) -> list[str]:
    """The SOP node z_t of every turn that carries one, in order."""
    return [t.sop_stage for t in dialogue.turns if t.sop_stage]


def snr(stages: Iterable[str | None], taxonomy: int | Sequence[str]) -> float | None:
    """Eq. 4: |{z_t}| / |S|. `taxonomy` is the node ids (labels outside it are ignored) or |S|."""
    if isinstance(taxonomy, int):
        size, valid = taxonomy, None
    else:
        size, valid = len(taxonomy), set(taxonomy)
    if size <= 0:
        raise ValueError("the taxonomy must have at least one node")
    seen = {s for s in stages if s and (valid is None or s in valid)}
    return len(seen) / size


def mean_snr(dialogues: Sequence[Dialogue], taxonomy: int | Sequence[str]) -> float | None:
    """SNR per dialogue, averaged; None for an empty run or a run with no stage labels at all."""
    if not any(dialogue_stages(d) for d in dialogues):
        return None
    return mean(snr(dialogue_stages(d), taxonomy) for d in dialogues)


def run_coverage(dialogues: Sequence[Dialogue], taxonomy: int | Sequence[str]) -> float | None:
    """SNR of the whole run: distinct nodes visited by any dialogue / |S|."""
    if not any(dialogue_stages(d) for d in dialogues):
        return None
    return snr((s for d in dialogues for s in dialogue_stages(d)), taxonomy)


def stage_counts(dialogues: Sequence[Dialogue], role: str | None = None) -> dict[str, int]:
    """How many turns (of `role`, or all) carry each stage: the SOP coverage plot's data."""
    counts = Counter(t.sop_stage for d in dialogues for t in d.turns if t.sop_stage and (role is None or t.role == role))
    return dict(counts.most_common())
