"""Teacher-forced turn likeness (papers/002 §4.5, App. A): generated vs real customer replies.

The CLI replays a real dialogue, has the customer model write each customer turn from the real
history, and hands the (generated, reference) pairs to `likeness`. Here the scoring only:
sentence BLEU-4, ROUGE-1/2/L F1 and embedding cosine under φ. Written out (no NLTK / rouge-score)
so each number is reproducible by hand; the tests do exactly that.

Conventions: lower-cased word tokens (`_common.words`). BLEU-4 uses uniform weights, the standard
brevity penalty and "add ε" smoothing (ε = 0.1) for an n-gram order with no match, because a
single short reply rarely shares a 4-gram with the truth and unsmoothed BLEU would be 0 for almost
every turn. As in the paper, pairs whose reference is a bare acknowledgement (≤ 5 characters,
"ok", "hmm") are left out: any reply matches or misses them by chance.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from grouped_sim.metrics.intervals import bootstrap_ci
from grouped_sim.metrics._common import mean, std, words

BLEU_EPSILON = 0.1
MIN_REFERENCE_CHARS = 6


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu4(candidate: str, reference: str, epsilon: float = BLEU_EPSILON) -> float:
    """Sentence BLEU-4: BP · exp(mean_n log p_n), p_n = clipped matches / candidate n-grams.

    An order with no match (or no candidate n-gram) uses ε / max(count, 1) instead of 0.
    An empty candidate scores 0.
    """
    cand, ref = words(candidate), words(reference)
    if not cand or not ref:
        return 0.0
    log_sum = 0.0
    for n in range(1, 5):
        c, r = _ngrams(cand, n), _ngrams(ref, n)
        total = sum(c.values())
        matches = sum(min(count, r[g]) for g, count in c.items())
        log_sum += math.log((matches if matches > 0 else epsilon) / max(total, 1))
    bp = 1.0 if len(cand) > len(ref) else math.exp(1.0 - len(ref) / len(cand))
    return bp * math.exp(log_sum / 4)


def _f1(overlap: float, cand_total: int, ref_total: int) -> float:
    if overlap <= 0 or cand_total == 0 or ref_total == 0:
        return 0.0
    p, r = overlap / cand_total, overlap / ref_total
    return 2 * p * r / (p + r)


def rouge_n(candidate: str, reference: str, n: int) -> float:
    """ROUGE-N F1 over clipped n-gram overlap."""
    c, r = _ngrams(words(candidate), n), _ngrams(words(reference), n)
    overlap = sum(min(count, r[g]) for g, count in c.items())
    return _f1(overlap, sum(c.values()), sum(r.values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, O(len a · len b))."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: LCS length over candidate length (P) and reference length (R)."""
    c, r = words(candidate), words(reference)
    return _f1(lcs_length(c, r), len(c), len(r))


def likeness(
    pairs: Sequence[tuple[str, str]],
    embed_fn: Callable[[Sequence[str]], np.ndarray] | None = None,
    min_reference_chars: int = MIN_REFERENCE_CHARS,
) -> dict[str, object]:
    """Mean and std of each score over (generated, reference) pairs, plus how many were used.

    `embed_fn` defaults to the shared MiniLM φ (tests pass a tiny stand-in). Every figure is None
    when no pair is usable (empty input, or only bare acknowledgements as references).
    """
    kept = [(g, r) for g, r in pairs if len(r.strip()) >= min_reference_chars]
    out: dict[str, object] = {"pairs": len(pairs), "evaluated": len(kept), "excluded_short_reference": len(pairs) - len(kept)}
    per: dict[str, list[float]] = {
        "bleu4": [bleu4(g, r) for g, r in kept],
        "rouge1": [rouge_n(g, r, 1) for g, r in kept],
        "rouge2": [rouge_n(g, r, 2) for g, r in kept],
        "rougeL": [rouge_l(g, r) for g, r in kept],
    }
    if kept:
        if embed_fn is None:
            from grouped_sim.embeddings import embed as embed_fn
        gen = np.asarray(embed_fn([g for g, _ in kept]), dtype=float)
        ref = np.asarray(embed_fn([r for _, r in kept]), dtype=float)
        gn = np.maximum(np.linalg.norm(gen, axis=1), 1e-12)
        rn = np.maximum(np.linalg.norm(ref, axis=1), 1e-12)
        per["embedding_cosine"] = [float(x) for x in np.sum(gen * ref, axis=1) / (gn * rn)]
    else:
        per["embedding_cosine"] = []
    for name, values in per.items():
        out[name] = {"mean": mean(values), "std": std(values), "ci": bootstrap_ci(values, mean)}
    out["values"] = per  # per pair, for the report's intervals and `compare` (the report moves them out of this block)
    return out
