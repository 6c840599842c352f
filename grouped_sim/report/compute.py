"""Assemble every figure of a run into one JSON-ready dict (the content of report.json).

Everything heavy or optional arrives as an argument: the encoder φ, the taxonomy ids, a stage
tagger for runs without stage labels, the discriminator's scorer, judge and likeness results.
The CLI (`grouped_sim/cli/report.py`) is where those are built; this module only computes.

Figures that compare with real people take the shape {"simulated", "reference", "gap"}, with
"reference" and "gap" None when no reference corpus was given. Since report version 2, every
headline figure also has its 95 % bootstrap interval over dialogues in `figures` (and, with a
reference, the gap's interval, the noise floor and whether the gap is beyond it), the per-dialogue
units behind them in `units`, and the agent under test has its `scorecard` (docs/scorecard.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grouped_sim.metrics import diversity as div
from grouped_sim.metrics import fidelity as fid
from grouped_sim.metrics._common import gap, rounded
from grouped_sim.metrics.coherence import coherence_figures
from grouped_sim.metrics.diversity import EmbedFn
from grouped_sim.report.figures import dialogue_units, figures, shown
from grouped_sim.report.scorecard import ScorecardContext, scorecard
from grouped_sim.schemas import Dialogue, Turn

REPORT_VERSION = 2


class ReportUnits(BaseModel):
    """Per-call values behind the figures: what `compare` resamples."""

    simulated: dict[str, list[Any]]
    reference: dict[str, list[Any]] | None = None


class ReportSummary(BaseModel):
    dialogues: int = Field(ge=0)


class ReportFile(BaseModel):
    """The part of report.json that a reader (compare) relies on; the rest is read leniently."""

    model_config = ConfigDict(extra="allow")

    summary: ReportSummary
    units: ReportUnits
    reference: dict[str, Any] | None = None
    figures: dict[str, dict[str, Any]] = Field(default_factory=dict)
    taxonomy: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
StageTagger = Callable[[list[str]], list[str]]
"""Salesman texts -> SOP stage ids (the SOP store's nearest-neighbour tagger, injected by the CLI)."""


def _pair(sim: float | None, ref: float | None, has_ref: bool) -> dict[str, float | None]:
    return {"simulated": sim, "reference": ref if has_ref else None, "gap": gap(sim, ref) if has_ref else None}


def fill_stages(dialogues: Sequence[Dialogue], tagger: StageTagger) -> tuple[list[Dialogue], int]:
    """Copies of the dialogues where unlabelled turns get stages from `tagger`.

    As in the simulator, a salesman move is tagged and the customer reply that follows carries the
    same stage. Lets SNR and stage coverage be compared for runs that never labelled stages
    (prompt-only) and for unlabelled real corpora. Returns (dialogues, how many turns were tagged).
    """
    todo = [(i, j) for i, d in enumerate(dialogues) for j, t in enumerate(d.turns) if t.role == "salesman" and not t.sop_stage]
    if not todo:
        return list(dialogues), 0
    labels = tagger([dialogues[i].turns[j].text for i, j in todo])
    label_of = dict(zip(todo, labels))
    out, tagged = [], 0
    for i, d in enumerate(dialogues):
        turns: list[Turn] = []
        current: str | None = None
        for j, t in enumerate(d.turns):
            if (i, j) in label_of:
                current = label_of[(i, j)]
                turns.append(t.model_copy(update={"sop_stage": current}))
                tagged += 1
            elif t.role == "customer" and not t.sop_stage and current:
                turns.append(t.model_copy(update={"sop_stage": current}))
                tagged += 1
            else:
                current = t.sop_stage if t.role == "salesman" else current
                turns.append(t)
        out.append(d.model_copy(update={"turns": turns}))
    return out, tagged


def memo_embed(embed_fn: EmbedFn | None) -> EmbedFn:
    """φ with a per-text cache: IRS and IRS-by-turn, run and reference, encode each text once."""
    if embed_fn is None:
        from grouped_sim.embeddings import embed_stored as embed_fn
    cache: dict[str, np.ndarray] = {}

    def embed(texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            cache.update(zip(missing, np.asarray(embed_fn(missing))))
        return np.stack([cache[t] for t in texts]) if len(texts) else np.zeros((0, 0))

    return embed


def diversity_block(dialogues: Sequence[Dialogue], taxonomy_ids: Sequence[str], embed_fn: EmbedFn | None, window: int = 3) -> dict[str, Any]:
    """TLV, IRS (overall and by turn) and SNR of one set of dialogues."""
    return {
        "tlv": div.mean_tlv(dialogues),
        "irs": div.mean_irs(dialogues, embed_fn),
        "irs_by_turn": div.irs_by_turn(dialogues, window=window, embed_fn=embed_fn),
        "irs_window": window,
        "snr": div.mean_snr(dialogues, taxonomy_ids),
        "sop_coverage": div.run_coverage(dialogues, taxonomy_ids),
        "stage_counts": div.stage_counts(dialogues),
    }


def state_trajectories(dialogues: Sequence[Dialogue], limit: int = 6) -> list[dict[str, Any]]:
    """Latent state after each customer turn for the first `limit` dialogues that carry one."""
    out = []
    for d in dialogues:
        points = [
            {"turn": k, "interest": t.state.interest, "trust": t.state.trust, "patience": t.state.patience, "intent": t.state.intent.value}
            for k, t in enumerate(d.customer_turns(), start=1)
            if t.state is not None
        ]
        if points:
            out.append({"dialogue_id": d.id, "outcome": d.outcome.value, "archetype": d.profile.archetype if d.profile else None, "points": points})
        if len(out) >= limit:
            break
    return out


def compute_report(
    dialogues: Sequence[Dialogue],
    *,
    taxonomy_ids: Sequence[str],
    run_info: dict[str, Any] | None = None,
    reference: Sequence[Dialogue] | None = None,
    reference_name: str | None = None,
    embed_fn: EmbedFn | None = None,
    stage_tagger: StageTagger | None = None,
    scorer: fid.Scorer | None = None,
    scorer_name: str | None = None,
    judge_summary: dict[str, Any] | None = None,
    role_judge: fid.TurnJudge | None = None,
    likeness_summary: dict[str, Any] | None = None,
    trajectories: int = 6,
    context: ScorecardContext | None = None,
    judge_scores: dict[str, list[float | None]] | None = None,
    coherence: Callable[[list[str], list[str]], Sequence[float]] | None = None,
    coherence_name: str | None = None,
    coherence_calls: int | None = None,
    coherence_leave_out: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Every figure of the report; JSON-serialisable, floats rounded to 4 places.

    `context` tells the scorecard the taxonomy's stage kinds and the difficulty tiers (without
    it, stages are known by id only and pushes are not counted); `judge_scores` are per-dialogue
    judge scores by dimension (and "overall"), for the judge figures' intervals.
    """
    has_ref = reference is not None and len(reference) > 0
    context = context or ScorecardContext(stages=list(taxonomy_ids))
    ref = list(reference or [])
    embed_fn = memo_embed(embed_fn)
    sims = list(dialogues)
    tagged = {"simulated": 0, "reference": 0}
    if stage_tagger is not None:
        sims, tagged["simulated"] = fill_stages(sims, stage_tagger)
        if has_ref:
            ref, tagged["reference"] = fill_stages(ref, stage_tagger)

    sim_lengths, ref_lengths = fid.customer_reply_lengths(sims), fid.customer_reply_lengths(ref)
    sim_ls, ref_ls = fid.length_stats(sim_lengths), fid.length_stats(ref_lengths)
    outcomes = fid.compare_outcomes(sims, ref)
    sim_dis, ref_dis = fid.disengagement(sims), fid.disengagement(ref)

    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run": run_info or {},
        "reference": {"name": reference_name, "dialogues": len(ref)} if has_ref else None,
        "taxonomy": list(taxonomy_ids),
        "stages_tagged": tagged if stage_tagger is not None else None,
        "summary": {
            "dialogues": len(sims),
            "customer_turns": len(sim_lengths),
            "errors": sum(1 for d in sims if d.error),
            "terminations": dict(sorted(_count(d.termination_reason.value for d in sims if d.termination_reason).items())),
        },
        "diversity": {"simulated": diversity_block(sims, taxonomy_ids, embed_fn), "reference": diversity_block(ref, taxonomy_ids, embed_fn) if has_ref else None},
        "fidelity": {
            "outcome_mix": {"simulated": fid.outcome_mix(sims), "reference": fid.outcome_mix(ref) if has_ref else None, "gap": outcomes["mix_gap"], "total_variation": outcomes["total_variation"]},
            "walk_away_rate": _pair(fid.walk_away_rate(sims), fid.walk_away_rate(ref), has_ref),
            "disengagement": {"simulated": sim_dis, "reference": ref_dis if has_ref else None, "deficit": fid.disengagement_deficit(sims, ref) if has_ref else None},
            "reply_length": {
                "mean": _pair(sim_ls and sim_ls["mean"], ref_ls and ref_ls["mean"], has_ref),
                "median": _pair(sim_ls and sim_ls["median"], ref_ls and ref_ls["median"], has_ref),
                "wasserstein": fid.wasserstein(sim_lengths, ref_lengths) if has_ref else None,
            },
            "role_inversion": fid.role_inversion(sims, judge=role_judge),
            "first_turn_disclosure": _pair(fid.first_turn_disclosure(sims), fid.first_turn_disclosure(ref), has_ref),
            "sentence_completeness": _pair(fid.sentence_completeness(sims), fid.sentence_completeness(ref), has_ref),
            "tfidf_redundancy": _pair(fid.tfidf_redundancy(sims), fid.tfidf_redundancy(ref), has_ref),
            "realism": None,
        },
        "judge": judge_summary,
        "likeness": likeness_summary,
        "distributions": {"reply_lengths": {"simulated": sim_lengths, "reference": ref_lengths if has_ref else None}},
        "trajectories": state_trajectories(sims, trajectories),
    }
    sim_real = ref_real = None
    if scorer is not None:
        sim_real = fid.realism(sims, scorer)
        ref_real = fid.realism(ref, scorer) if has_ref else None
        report["fidelity"]["realism"] = {
            "scorer": scorer_name,
            **_pair(sim_real["mean_p_real"], ref_real["mean_p_real"] if ref_real else None, has_ref),
        }
    sim_units = dialogue_units(sims, taxonomy_ids=taxonomy_ids, embed_fn=embed_fn, context=context, realism_scores=sim_real and sim_real["scores"], judge_scores=judge_scores)
    ref_units = dialogue_units(ref, taxonomy_ids=taxonomy_ids, embed_fn=embed_fn, context=context, realism_scores=ref_real and ref_real["scores"]) if has_ref else None
    if likeness_summary and "values" in likeness_summary:  # per replayed turn: units, not a summary figure
        values = likeness_summary.pop("values")
        sim_units.update({f"likeness_{k}": v for k, v in values.items()})
    report["figures"] = figures(sim_units, ref_units, len(taxonomy_ids))
    report["units"] = {"simulated": sim_units, "reference": ref_units}
    report["scorecard"] = scorecard(sims, context, ref if has_ref else None)
    # Coherence (P(the reply answers this call), grouped_sim.metrics.coherence): Figures with intervals.
    report["fidelity"]["coherence"] = coherence_figures(sims, coherence, ref if has_ref else None, scorer_name=coherence_name, max_calls=coherence_calls, leave_out=coherence_leave_out) if coherence is not None else None
    return rounded(report)


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


# --------------------------------------------------------------------------- flat view (tables)

# (key, label, path into the report, better: "up" | "down" | "ref" (closer to real) | "zero" | "")
METRICS: list[tuple[str, str, tuple[str, ...], str]] = [
    ("dialogues", "dialogues", ("summary", "dialogues"), ""),
    ("conversion", "agent: conversion (agreed)", ("scorecard", "conversion", "sim"), "up"),
    ("conversion_with_callback", "agent: agreed or callback", ("scorecard", "conversion_with_callback", "sim"), "up"),
    ("cut_off", "agent: calls cut off by max turns", ("scorecard", "cut_off", "sim"), ""),
    ("exit_turn", "agent: salesman turns per call", ("scorecard", "exit_turn", "sim"), ""),
    ("words_per_turn", "agent: words per turn", ("scorecard", "habits", "words_per_turn", "all", "sim"), ""),
    ("talk_ratio", "agent: talk ratio", ("scorecard", "habits", "talk_ratio", "all", "sim"), ""),
    ("questions", "agent: questions per call", ("scorecard", "habits", "questions", "all", "sim"), ""),
    ("pushes_in_a_row", "agent: longest run of pushes", ("scorecard", "habits", "pushes_in_a_row", "all", "sim"), ""),
    ("judge_pc", "judge: profile consistency", ("judge", "dimensions", "profile_consistency", "score"), "up"),
    ("judge_br", "judge: business realism", ("judge", "dimensions", "business_realism", "score"), "up"),
    ("judge_il", "judge: interaction logic", ("judge", "dimensions", "interaction_logic", "score"), "up"),
    ("judge_avg", "judge: average", ("judge", "overall"), "up"),
    ("tlv", "TLV (length variance, words²)", ("diversity", "simulated", "tlv"), "up"),
    ("irs", "IRS", ("diversity", "simulated", "irs"), "up"),
    ("snr", "SNR (per dialogue)", ("diversity", "simulated", "snr"), "up"),
    ("sop_coverage", "SOP coverage (run)", ("diversity", "simulated", "sop_coverage"), "up"),
    ("realism", "realism: mean P(real)", ("fidelity", "realism", "simulated"), "up"),
    ("coherence", "coherence: mean P(answers the call)", ("fidelity", "coherence", "mean", "sim"), "ref"),
    ("coherence_accept", "coherence: replies accepted (P ≥ 0.5)", ("fidelity", "coherence", "acceptance", "sim"), "ref"),
    ("walk_away", "walk-away rate", ("fidelity", "walk_away_rate", "simulated"), "ref"),
    ("walk_away_gap", "walk-away gap to real", ("fidelity", "walk_away_rate", "gap"), "zero"),
    ("outcome_tv", "outcome mix distance (TV)", ("fidelity", "outcome_mix", "total_variation"), "down"),
    ("nb_resistance", "non-buyers: resistance share", ("fidelity", "disengagement", "simulated", "non_buyers", "shares", "resistance"), "ref"),
    ("nb_deliberation", "non-buyers: deliberation share", ("fidelity", "disengagement", "simulated", "non_buyers", "shares", "deliberation"), "ref"),
    ("depth_bias", "non-buyers: depth bias vs real", ("fidelity", "disengagement", "deficit", "non_buyers", "depth_bias"), "zero"),
    ("len_mean", "reply length: mean (words)", ("fidelity", "reply_length", "mean", "simulated"), "ref"),
    ("len_median", "reply length: median (words)", ("fidelity", "reply_length", "median", "simulated"), "ref"),
    ("len_wasserstein", "reply length: Wasserstein to real", ("fidelity", "reply_length", "wasserstein"), "down"),
    ("role_inversion", "role inversion (heuristic)", ("fidelity", "role_inversion", "heuristic_rate"), "down"),
    ("role_inversion_judged", "role inversion (judged)", ("fidelity", "role_inversion", "judged_rate"), "down"),
    ("guard_rejected", "seller-like drafts rejected / turn", ("fidelity", "role_inversion", "guard_rejected_per_turn"), "down"),
    ("disclosure", "first-turn disclosure (criteria)", ("fidelity", "first_turn_disclosure", "simulated"), "ref"),
    ("completeness", "sentence completeness", ("fidelity", "sentence_completeness", "simulated"), "ref"),
    ("redundancy", "TF-IDF redundancy", ("fidelity", "tfidf_redundancy", "simulated"), "ref"),
    ("bleu4", "teacher-forced BLEU-4", ("likeness", "bleu4", "mean"), "up"),
    ("rougeL", "teacher-forced ROUGE-L", ("likeness", "rougeL", "mean"), "up"),
    ("cosine", "teacher-forced embedding cosine", ("likeness", "embedding_cosine", "mean"), "up"),
]

# Where the real corpus's own value of a metric lives (for the "reference" column).
REFERENCE_PATHS: dict[str, tuple[str, ...]] = {
    "dialogues": ("reference", "dialogues"),
    "conversion": ("scorecard", "conversion", "real"),
    "conversion_with_callback": ("scorecard", "conversion_with_callback", "real"),
    "exit_turn": ("scorecard", "exit_turn", "real"),
    "words_per_turn": ("scorecard", "habits", "words_per_turn", "all", "real"),
    "talk_ratio": ("scorecard", "habits", "talk_ratio", "all", "real"),
    "questions": ("scorecard", "habits", "questions", "all", "real"),
    "pushes_in_a_row": ("scorecard", "habits", "pushes_in_a_row", "all", "real"),
    "tlv": ("diversity", "reference", "tlv"),
    "irs": ("diversity", "reference", "irs"),
    "snr": ("diversity", "reference", "snr"),
    "sop_coverage": ("diversity", "reference", "sop_coverage"),
    "realism": ("fidelity", "realism", "reference"),
    "coherence": ("fidelity", "coherence", "mean", "real"),
    "coherence_accept": ("fidelity", "coherence", "acceptance", "real"),
    "walk_away": ("fidelity", "walk_away_rate", "reference"),
    "nb_resistance": ("fidelity", "disengagement", "reference", "non_buyers", "shares", "resistance"),
    "nb_deliberation": ("fidelity", "disengagement", "reference", "non_buyers", "shares", "deliberation"),
    "len_mean": ("fidelity", "reply_length", "mean", "reference"),
    "len_median": ("fidelity", "reply_length", "median", "reference"),
    "disclosure": ("fidelity", "first_turn_disclosure", "reference"),
    "completeness": ("fidelity", "sentence_completeness", "reference"),
    "redundancy": ("fidelity", "tfidf_redundancy", "reference"),
}


def dig(obj: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def flat_metrics(report: dict[str, Any]) -> dict[str, float | None]:
    """The headline figures of a report, in table order."""
    return {key: dig(report, path) for key, _, path, _ in METRICS}


def reference_metrics(report: dict[str, Any]) -> dict[str, float | None]:
    """The same headline figures measured on the reference corpus (None where not applicable)."""
    return {key: dig(report, REFERENCE_PATHS[key]) if key in REFERENCE_PATHS else None for key, _, _, _ in METRICS}


def figure_interval(report: dict[str, Any], key: str) -> list[float] | None:
    """The 95 % interval shown next to a headline figure (None where the report has none)."""
    return shown((report.get("figures") or {}).get(key))[1]


def reference_interval(report: dict[str, Any], key: str) -> list[float] | None:
    """The interval of the reference corpus's own value of a headline figure."""
    fig = (report.get("figures") or {}).get(key)
    return fig.get("real_ci") if fig and fig.get("kind") == "stat" else None
