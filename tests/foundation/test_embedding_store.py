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


def test_a_store_built_again_from_the_same_calls_encodes_nothing_and_retrieves_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sop build` embeds a corpus's chains and moves through the vector store (`make install`
    warms it for the sample corpus, so the demo's first build is quick); a query still gets the
    one vector the query path gives it."""
    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.sop_db.store import SOPStore, build_store

    monkeypatch.setenv("GROUPED_SIM_CACHE", str(tmp_path / "cache"))
    calls = read_corpus(sample_corpus_path())[:6]
    build_store(tmp_path / "first", calls)
    profile = "a retired teacher who watches every penny"
    before = SOPStore(str(tmp_path / "first")).retrieve(profile, k=3)

    encoded: list[int] = []
    encode = embeddings._encode
    monkeypatch.setattr(embeddings, "_encode", lambda texts, batch: encoded.append(len(texts)) or encode(texts, batch))
    build_store(tmp_path / "again", calls)
    assert encoded == []
    after = SOPStore(str(tmp_path / "again")).retrieve(profile, k=3)
    assert [c.id for c in after] == [c.id for c in before]
