"""Discriminator fixtures: real negatives from the embedded model on a few contexts, a trained MiniLM."""

from __future__ import annotations

from pathlib import Path

import pytest

N_CONTEXTS = 8


@pytest.fixture(scope="session")
def d_sim_records(corpus):
    from grouped_sim.discriminator.data import records_from_dialogues

    return records_from_dialogues(corpus)


@pytest.fixture(scope="session")
def spread_records(d_sim_records):
    """One customer turn from each of N dialogues, so a dialogue-level split has something to hold out."""
    seen, picked = set(), []
    for record in d_sim_records:
        if record["dialogue_id"] not in seen:
            seen.add(record["dialogue_id"])
            picked.append(record)
    return picked[:: max(1, len(picked) // N_CONTEXTS)][:N_CONTEXTS]


@pytest.fixture(scope="session")
def pairs_dir(tmp_path_factory, spread_records, embedded_chat) -> Path:
    """pairs.jsonl with negatives written for real by the untuned embedded model (chat form)."""
    from grouped_sim.discriminator.data import NegativeParams, build_pairs

    out = tmp_path_factory.mktemp("pairs")
    build_pairs(spread_records, out, params=NegativeParams(max_new_tokens=16, batch_size=N_CONTEXTS), model=embedded_chat)
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory, pairs_dir):
    """A MiniLM discriminator trained on those pairs (a few steps; quality is not the point here)."""
    from grouped_sim.discriminator.data import read_pairs
    from grouped_sim.discriminator.model import DiscriminatorConfig, train_discriminator

    out = tmp_path_factory.mktemp("disc")
    cfg = DiscriminatorConfig(epochs=4, batch_size=8, learning_rate=2e-4, holdout=0.25, context_turns=2, max_length=96)
    report = train_discriminator(read_pairs(pairs_dir), out, cfg)
    return out, report
