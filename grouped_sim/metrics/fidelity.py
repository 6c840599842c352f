"""Fidelity to real people: how far a simulated population sits from a reference corpus.

Each function is plain arithmetic over `Dialogue` lists, so it applies equally to a run and to a
real corpus, and a comparison is just the same function on both sides (`compare_*`). Figures:

- outcome mix and walk-away rate (share of calls ending in a hang-up or refusal) and their gaps;
- the disengagement deficit (papers/003): among eventual non-buyers, the share of customer turns
  that resist vs deliberate, simulated vs real, and the depth bias (mean funnel depth, simulated
  minus real). One fixed lexical instrument reads every turn, real or simulated (data/cues.yaml);
- customer reply length distribution: mean, median, and the 1-D Wasserstein distance to real;
- role inversion: share of customer replies that talk like the seller (regex pre-filter from
  `grouped_sim.role_guard`, optionally confirmed by a judge);
- first-turn disclosure, sentence completeness and TF-IDF redundancy (papers/001 §2.3, App. C.1);
- realism: mean P(real) of customer replies under any scorer (the discriminator's, injected).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from grouped_sim.metrics._common import cues, gap, mean, word_count, words
from grouped_sim.role_guard import customer_slips
from grouped_sim.schemas import Dialogue, Outcome, Turn
from grouped_sim.transcript import transcript_text

WALK_AWAY = (Outcome.hung_up, Outcome.refused)
Scorer = Callable[[list[str], list[str]], list[float]]
"""(contexts, replies) -> P(real) per reply: the discriminator's interface, injected by the CLI."""
TurnJudge = Callable[[str, str], bool | None]
"""(context, reply) -> True when the reply takes the seller's role; None when the judge failed."""


# --------------------------------------------------------------------------- outcomes


def outcome_mix(dialogues: Sequence[Dialogue]) -> dict[str, float] | None:
    """Share of dialogues per outcome (every Outcome value present, summing to 1); None if empty."""
    if not dialogues:
        return None
    counts = Counter(d.outcome.value for d in dialogues)
    return {o.value: counts.get(o.value, 0) / len(dialogues) for o in Outcome}


def walk_away_rate(dialogues: Sequence[Dialogue]) -> float | None:
    """Share of calls the customer ended by hanging up or refusing."""
    if not dialogues:
        return None
    return sum(d.outcome in WALK_AWAY for d in dialogues) / len(dialogues)


def compare_outcomes(simulated: Sequence[Dialogue], reference: Sequence[Dialogue]) -> dict[str, Any]:
    """Outcome mix and walk-away rate of both sides, their gaps, and the total variation distance."""
    sim_mix, ref_mix = outcome_mix(simulated), outcome_mix(reference)
    out: dict[str, Any] = {
        "walk_away_gap": gap(walk_away_rate(simulated), walk_away_rate(reference)),
        "mix_gap": None,
        "total_variation": None,
    }
    if sim_mix is not None and ref_mix is not None:
        out["mix_gap"] = {k: sim_mix[k] - ref_mix[k] for k in sim_mix}
        out["total_variation"] = 0.5 * sum(abs(v) for v in out["mix_gap"].values())
    return out


# --------------------------------------------------------------------------- decision states


@lru_cache(maxsize=1)
def _state_cues() -> tuple[list[tuple[str, re.Pattern[str]]], dict[str, int]]:
    cfg = cues()["decision_states"]
    compiled = [(state, re.compile("|".join(cfg["cues"][state]), re.IGNORECASE)) for state in cfg["order"]]
    return compiled, {k: int(v) for k, v in cfg["depth"].items()}


def decision_state(text: str) -> str:
    """resistance | commitment | deliberation | neutral: the first state whose cues match."""
    for state, pattern in _state_cues()[0]:
        if pattern.search(text):
            return state
    return "neutral"


def state_depth(state: str) -> int:
    """Funnel depth of a decision state (resistance 0 ... commitment 3)."""
    return _state_cues()[1][state]


def is_buyer(dialogue: Dialogue) -> bool:
    return dialogue.outcome is Outcome.agreed


def decision_profile(dialogues: Sequence[Dialogue]) -> dict[str, Any] | None:
    """Shares of customer turns in each decision state, and their mean funnel depth."""
    states = [decision_state(t.text) for d in dialogues for t in d.customer_turns()]
    if not states:
        return None
    counts = Counter(states)
    order = ["resistance", "neutral", "deliberation", "commitment"]
    return {
        "turns": len(states),
        "shares": {s: counts.get(s, 0) / len(states) for s in order},
        "mean_depth": sum(state_depth(s) for s in states) / len(states),
    }


def disengagement(dialogues: Sequence[Dialogue]) -> dict[str, Any]:
    """Decision profiles of eventual buyers and non-buyers (None where a group is empty)."""
    return {
        "buyers": decision_profile([d for d in dialogues if is_buyer(d)]),
        "non_buyers": decision_profile([d for d in dialogues if not is_buyer(d)]),
    }


def disengagement_deficit(simulated: Sequence[Dialogue], reference: Sequence[Dialogue]) -> dict[str, Any]:
    """Simulated minus real, per outcome group: resistance and deliberation shares, depth bias.

    A positive non-buyer depth bias with less resistance and more deliberation is the deficit of
    papers/003: simulated non-buyers linger and ask about price where real ones say no and leave.
    """
    sim, ref = disengagement(simulated), disengagement(reference)
    out: dict[str, Any] = {}
    for group in ("non_buyers", "buyers"):
        s, r = sim[group], ref[group]
        if s is None or r is None:
            out[group] = None
            continue
        out[group] = {
            "resistance_gap": s["shares"]["resistance"] - r["shares"]["resistance"],
            "deliberation_gap": s["shares"]["deliberation"] - r["shares"]["deliberation"],
            "depth_bias": s["mean_depth"] - r["mean_depth"],
        }
    return out


# --------------------------------------------------------------------------- lengths


def customer_reply_lengths(dialogues: Sequence[Dialogue]) -> list[int]:
    return [word_count(t.text) for d in dialogues for t in d.customer_turns()]


def length_stats(lengths: Sequence[float]) -> dict[str, float] | None:
    if not lengths:
        return None
    return {"n": len(lengths), "mean": float(np.mean(lengths)), "median": float(statistics.median(lengths))}


def wasserstein(a: Sequence[float], b: Sequence[float]) -> float | None:
    """1-D earth mover's distance between two samples (in words); None if either is empty."""
    if len(a) == 0 or len(b) == 0:
        return None
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a, b))


def compare_lengths(simulated: Sequence[Dialogue], reference: Sequence[Dialogue]) -> dict[str, Any]:
    s, r = customer_reply_lengths(simulated), customer_reply_lengths(reference)
    ss, rs = length_stats(s), length_stats(r)
    return {
        "mean_gap": gap(ss and ss["mean"], rs and rs["mean"]),
        "median_gap": gap(ss and ss["median"], rs and rs["median"]),
        "wasserstein": wasserstein(s, r),
    }


# --------------------------------------------------------------------------- role inversion


def customer_contexts(dialogue: Dialogue) -> list[tuple[str, str]]:
    """(history before the reply, reply) for every customer turn."""
    return [(transcript_text(dialogue.turns[:i]), t.text) for i, t in enumerate(dialogue.turns) if t.role == "customer"]


def role_inversion(dialogues: Sequence[Dialogue], judge: TurnJudge | None = None, judge_all: bool = False) -> dict[str, Any]:
    """Share of customer replies that act like the seller.

    `heuristic_rate` is the regex pre-filter alone (seller talk, or a reply that says it is the
    caller: `role_guard.customer_slips`, the figure the report draws per dialogue too). With a judge, the judge reads the flagged
    replies (or every reply with `judge_all`) and `judged_rate` counts the ones it confirms; a
    reply the judge failed to answer is left out of the judged denominator, never counted as 0.
    `guard_rejected_per_turn` counts seller-like drafts the simulator's own guard threw away
    before the final reply (visible in turn meta), so a low final rate cannot hide a drifting model.
    """
    pairs = [pair for d in dialogues for pair in customer_contexts(d)]
    turns = [t for d in dialogues for t in d.customer_turns()]
    flagged = [slip for d in dialogues for slip in customer_slips(d.turns)]  # one per customer turn, as `pairs`
    rejected = sum(sum(1 for r in t.meta.get("rejected", []) if str(r).startswith(("seller", "caller's identity"))) for t in turns)
    out: dict[str, Any] = {
        "turns": len(pairs),
        "heuristic_flagged": sum(flagged),
        "heuristic_rate": (sum(flagged) / len(pairs)) if pairs else None,
        "guard_rejected_per_turn": (rejected / len(turns)) if turns else None,
        "judged_rate": None,
        "judged_turns": 0,
    }
    if judge is None or not pairs:
        return out
    confirmed = judged = 0
    for (context, reply), hit in zip(pairs, flagged):
        if not (hit or judge_all):
            judged += 1  # not flagged and not sent to the judge: counted as a clean reply
            continue
        verdict = judge(context, reply)
        if verdict is None:
            continue
        judged += 1
        confirmed += bool(verdict)
    out["judged_turns"] = judged
    out["judged_rate"] = confirmed / judged if judged else None
    return out


# --------------------------------------------------------------------------- SalesSim conversational traits


@lru_cache(maxsize=1)
def _criteria() -> dict[str, re.Pattern[str]]:
    return {name: re.compile("|".join(cues), re.IGNORECASE) for name, cues in cues()["disclosure_criteria"].items()}


def criteria_count(text: str) -> int:
    """Distinct kinds of decision criteria (price, timing, provider, ...) mentioned in a reply."""
    return sum(1 for pattern in _criteria().values() if pattern.search(text))


def first_turn_disclosure(dialogues: Sequence[Dialogue]) -> float | None:
    """Mean criteria count of each dialogue's first customer reply."""
    return mean(criteria_count(d.customer_turns()[0].text) for d in dialogues if d.customer_turns())


_SENTENCE_RE = re.compile(r"[^.!?]+(?:[.!?]+|$)")


def split_sentences(text: str) -> list[str]:
    """Sentences ending in . ! ? (the trailing run without one counts as a sentence too)."""
    return [s.strip() for s in _SENTENCE_RE.findall(text.replace("\u2026", "...")) if s.strip() and words(s)]


def is_complete_sentence(sentence: str) -> bool:
    """Formal-looking sentence: capitalised, closed by . ! ?, long enough, not opened by a filler."""
    cfg = cues()["completeness"]
    tokens = words(sentence)
    return (
        sentence[:1].isupper()
        and sentence.rstrip()[-1:] in ".!?"
        and len(tokens) >= int(cfg["min_words"])
        and tokens[0] not in set(cfg["fillers"])
    )


def sentence_completeness(dialogues: Sequence[Dialogue]) -> float | None:
    """Per dialogue, the share of complete sentences in the customer's lines; averaged (a formality proxy)."""
    scores = []
    for d in dialogues:
        sentences = [s for t in d.customer_turns() for s in split_sentences(t.text)]
        if sentences:
            scores.append(sum(is_complete_sentence(s) for s in sentences) / len(sentences))
    return mean(scores)


def tfidf_redundancy(dialogues: Sequence[Dialogue]) -> float | None:
    """Mean TF-IDF cosine of each dialogue's customer text to its peers in the same domain.

    The vectoriser is fitted per domain; domains with a single dialogue (no peers) and dialogues
    with no words are skipped. Higher means customers of a domain say the same things.
    """
    return mean(tfidf_redundancy_per_dialogue(dialogues))


def tfidf_redundancy_per_dialogue(dialogues: Sequence[Dialogue]) -> list[float | None]:
    """Each dialogue's mean TF-IDF cosine to its same-domain peers (None where it has none)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    by_domain: dict[str, list[tuple[int, str]]] = {}
    for i, d in enumerate(dialogues):
        text = " ".join(t.text for t in d.customer_turns())
        if words(text):
            by_domain.setdefault(d.domain, []).append((i, text))
    per_dialogue: list[float | None] = [None] * len(dialogues)
    for group in by_domain.values():
        if len(group) < 2:
            continue
        matrix = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b").fit_transform([text for _, text in group])
        sims = cosine_similarity(matrix)
        n = len(group)
        for row, (i, _) in enumerate(group):
            per_dialogue[i] = float((sims[row].sum() - sims[row, row]) / (n - 1))
    return per_dialogue


# --------------------------------------------------------------------------- realism


def realism(dialogues: Sequence[Dialogue], scorer: Scorer, batch: int = 64) -> dict[str, Any]:
    """Mean P(real) of customer replies under `scorer`, in batches; None for an empty run."""
    pairs = [pair for d in dialogues for pair in customer_contexts(d)]
    scores: list[float] = []
    for i in range(0, len(pairs), batch):
        chunk = pairs[i : i + batch]
        got = scorer([c for c, _ in chunk], [r for _, r in chunk])
        if len(got) != len(chunk):
            raise ValueError(f"the realism scorer returned {len(got)} scores for {len(chunk)} replies")
        scores.extend(float(s) for s in got)
    return {"turns": len(scores), "mean_p_real": mean(scores), "scores": scores}
