"""Text vectors kept on disk: a reference corpus is encoded once per machine, and the stored
vectors are the ones the encoder gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grouped_sim import embeddings


def test_stored_vectors_match_the_encoder_and_are_read_back_without_encoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROUPED_SIM_CACHE", str(tmp_path))
    texts = ["no thanks, not interested", "how much is it a month?", "no thanks, not interested"]
    first = embeddings.embed_stored(texts)
    assert first.shape == (3, embeddings.EMBEDDING_DIM) and np.array_equal(first[0], first[2])
    assert np.allclose(first, embeddings.embed(texts), atol=1e-5)

    def no_encoding(*_: object) -> np.ndarray:
        raise AssertionError("a stored text was encoded again")

    monkeypatch.setattr(embeddings, "_encode", no_encoding)
    assert np.array_equal(embeddings.embed_stored(texts[::-1]), first[::-1])


def test_a_store_that_cannot_be_written_costs_the_encoding_not_the_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    monkeypatch.setenv("GROUPED_SIM_CACHE", str(blocked))
    vectors = embeddings.embed_stored(["call me back next week", "who is this?"])
    assert vectors.shape == (2, embeddings.EMBEDDING_DIM) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
