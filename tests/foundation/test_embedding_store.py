"""Text vectors kept on disk: a reference corpus is encoded once per machine, and the stored
vectors are the ones the encoder gives."""

from __future__ import annotations

import hashlib
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


def test_a_store_built_again_encodes_nothing_and_holds_the_vectors_a_fresh_build_computes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sop build` keeps a corpus's chain and move vectors on disk (`make install` warms them for
    the sample corpus), as whole lists: what another command stored for the same texts (vectors
    computed in other batches, a few bits apart) must not reach the store, whose graph and ties
    decide which real lines a simulated customer is shown."""
    import chromadb

    from grouped_sim.corpus import read_corpus
    from grouped_sim.data import sample_corpus_path
    from grouped_sim.sop_db.store import build_store

    calls = read_corpus(sample_corpus_path())[:6]
    monkeypatch.setenv("GROUPED_SIM_CACHE", str(tmp_path / "fresh"))
    build_store(tmp_path / "fresh-store", calls)

    monkeypatch.setenv("GROUPED_SIM_CACHE", str(tmp_path / "lived-in"))
    texts = [t.text for d in calls for t in d.turns] + [d.profile.summary for d in calls if d.profile]
    embeddings._store({hashlib.sha256(t.encode("utf-8")).hexdigest()[:32]: np.full(embeddings.EMBEDDING_DIM, 0.05, dtype=np.float32) for t in texts})
    build_store(tmp_path / "first", calls)
    encoded: list[int] = []
    encode = embeddings._encode
    monkeypatch.setattr(embeddings, "_encode", lambda texts, batch: encoded.append(len(texts)) or encode(texts, batch))
    build_store(tmp_path / "again", calls)
    assert encoded == []

    def vectors(folder: Path) -> dict[str, list[float]]:
        client = chromadb.PersistentClient(path=str(folder))
        return {c.name: dict(zip(*(lambda got: (got["ids"], [list(v) for v in got["embeddings"]]))(c.get(include=["embeddings"])))) for c in client.list_collections()}

    fresh = vectors(tmp_path / "fresh-store")
    assert fresh and vectors(tmp_path / "first") == fresh and vectors(tmp_path / "again") == fresh
