"""The embedder keeps the vectors of the texts it embedded last: a batch triaged and then placed costs one pass."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from copilot.models import embeddings
from copilot.models.embeddings import MiniLMEmbeddings


class _CountingModel:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        self.calls.append(list(texts))
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=384) for t in texts]
        return np.stack([r / np.linalg.norm(r) for r in rows]).astype(np.float32)


def _embedder() -> tuple[MiniLMEmbeddings, _CountingModel]:
    embedder = MiniLMEmbeddings.__new__(MiniLMEmbeddings)  # the fake model instead of the weights
    model = _CountingModel()
    embedder.batch_size, embedder.threads, embedder._model = 8, 1, model
    embedder._recent, embedder._lock = OrderedDict(), threading.Lock()
    return embedder, model


def test_a_text_embedded_recently_or_twice_in_a_batch_is_embedded_once() -> None:
    embedder, model = _embedder()
    first = embedder.encode(["card lost", "app down", "card lost"])
    assert model.calls == [["card lost", "app down"]]
    assert np.array_equal(first[0], first[2])
    again = embedder.encode(["app down", "new one"])
    assert model.calls[-1] == ["new one"]
    assert np.array_equal(again[0], first[1])
    again[0][:] = 0.0  # the caller's matrix is its own: the kept vector is untouched
    assert np.linalg.norm(embedder.encode(["app down"])[0]) > 0.99


def test_only_the_most_recent_texts_are_kept(monkeypatch: Any) -> None:
    monkeypatch.setattr(embeddings, "RECENT_TEXTS", 3)
    embedder, model = _embedder()
    embedder.encode(["a", "b", "c"])
    embedder.encode(["a"])  # used again: now the newest
    embedder.encode(["d"])  # "b" was the oldest: forgotten
    embedder.encode(["a", "b", "c", "d"])
    assert model.calls[-1] == ["b"]
    assert embedder.encode([]).shape == (0, 384)
