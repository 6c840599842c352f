"""Metrics of simulated dialogues: diversity (TLV/IRS/SNR), fidelity to a real corpus, turn
likeness, and LLM-judge scores. Plain functions over `Dialogue` lists and numbers; nothing here
imports `graphs`, `sop_db` or `discriminator` (models, taxonomies and scorers are passed in).
"""

from grouped_sim.metrics.diversity import (
    irs_by_turn,
    irs_from_vectors,
    mean_irs,
    mean_snr,
    mean_tlv,
    normalised_tlv_shares,
    run_coverage,
    snr,
    tlv,
)
from grouped_sim.metrics.fidelity import (
    compare_lengths,
    compare_outcomes,
    disengagement_deficit,
    first_turn_disclosure,
    outcome_mix,
    realism,
    role_inversion,
    sentence_completeness,
    tfidf_redundancy,
    walk_away_rate,
)
from grouped_sim.metrics.likeness import bleu4, likeness, rouge_l, rouge_n

__all__ = [
    "bleu4",
    "compare_lengths",
    "compare_outcomes",
    "disengagement_deficit",
    "first_turn_disclosure",
    "irs_by_turn",
    "irs_from_vectors",
    "likeness",
    "mean_irs",
    "mean_snr",
    "mean_tlv",
    "normalised_tlv_shares",
    "outcome_mix",
    "realism",
    "role_inversion",
    "rouge_l",
    "rouge_n",
    "run_coverage",
    "sentence_completeness",
    "snr",
    "tfidf_redundancy",
    "tlv",
    "walk_away_rate",
]
