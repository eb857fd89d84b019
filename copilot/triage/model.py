"""The fitted triage model at inference time: linear heads (kind, sentiment, crisis, crisis category, private
channel, crisis precision) over sentence embeddings, lexical features and hashed word n-grams.

Fitted heads are plain arrays (``.npz`` + a JSON card, no pickle), cached under ``<data_dir>/triage/``:
``seed-<hash>.npz`` for the model fitted on the shipped seed set and ``team.npz`` for a team's trained model
(``copilot triage train FILE``). Fitting and calibrating them is ``copilot.triage.training``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from langchain_core.embeddings import Embeddings

from copilot.errors import ConfigError
from copilot.models.embeddings import as_matrix
from copilot.triage.features import (
    FEATURE_VERSION,
    LEXICAL_NAMES,
    clean_text,
    embedding_text,
    hashed_ngrams,
    lexical_matrix,
)
from copilot.triage.meaning import MeaningScreen

HEADS: tuple[str, ...] = ("kind", "sentiment", "crisis", "crisis_category", "private", "crisis_precision")
CLEAR_FLOOR = 0.02  # the lowest calibrated "clear below" probability, and the default of an uncalibrated card
TEAM_STEM = "team"


def embedder_name(embedder: Embeddings) -> str:
    """A stable name for an embedder: fitted heads only fit the embedder they were trained with."""
    for attribute in ("name", "model", "model_name"):
        value = getattr(embedder, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(embedder).__name__


@dataclass(frozen=True)
class Features:
    """Dense features (embedding, then lexical) and hashed n-grams, one row per message."""

    dense: np.ndarray
    hashed: sp.csr_matrix

    def __len__(self) -> int:
        return int(self.dense.shape[0])

    @property
    def embedding(self) -> np.ndarray:
        """The embedding columns (the lexical features come last)."""
        return self.dense[:, : self.dense.shape[1] - len(LEXICAL_NAMES)]

    def rows(self, index: np.ndarray | Sequence[int]) -> Features:
        """A subset of rows (an index array or a boolean mask)."""
        return Features(dense=self.dense[index], hashed=self.hashed[index])

    @staticmethod
    def stack(parts: Sequence[Features]) -> Features:
        """Rows of several feature sets, in order."""
        return Features(dense=np.vstack([p.dense for p in parts]),
                        hashed=sp.vstack([p.hashed for p in parts]).tocsr())


def featurize(embedder: Embeddings, texts: Sequence[str]) -> tuple[Features, float]:
    """Features for ``texts`` and the seconds spent embedding."""
    cleaned = [embedding_text(t) for t in texts]
    start = time.perf_counter()
    embedded = as_matrix(embedder, cleaned)
    embed_s = time.perf_counter() - start
    dense = np.hstack([embedded, lexical_matrix([clean_text(t) for t in texts])]).astype(np.float32)
    return Features(dense=dense, hashed=hashed_ngrams(cleaned)), embed_s


@dataclass(frozen=True)
class LinearHead:
    """A multinomial (or binary) logistic-regression head stored as plain arrays."""

    classes: tuple[str, ...]
    coef: np.ndarray  # (k, dense dims), or (1, dense dims) for two classes
    intercept: np.ndarray  # (k,) or (1,)
    hashed_coef: np.ndarray | None = None  # (k or 1, HASH_FEATURES), the n-gram weight folded in

    def proba(self, features: Features) -> np.ndarray:
        """Class probabilities, one row per message, columns in ``classes`` order."""
        logits = features.dense @ self.coef.T + self.intercept
        if self.hashed_coef is not None:
            logits = logits + np.asarray(features.hashed @ self.hashed_coef.T)
        if len(self.classes) == 2 and self.coef.shape[0] == 1:
            p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, features: Features) -> list[str]:
        """The most likely class of each message."""
        return [self.classes[i] for i in self.proba(features).argmax(axis=1)]


@dataclass
class TriageModel:
    """The fitted heads, the crisis prototypes, and a card saying what they were trained on."""

    heads: dict[str, LinearHead]
    card: dict[str, Any] = field(default_factory=dict)
    prototypes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    meaning: MeaningScreen | None = None  # the multilingual meaning screen (None in a model from before it)

    @property
    def crisis_gate(self) -> float:
        """The minimum similarity to a known crisis for a classifier-only crisis flag."""
        return float(self.card.get("crisis_gate", 0.0))

    @property
    def crisis_clear_below(self) -> float:
        """The precision stage clears a screened message only below this probability."""
        return float(self.card.get("crisis_clear_below", CLEAR_FLOOR))

    @property
    def crisis_strong_similarity(self) -> float:
        """A similarity to a known crisis that is evidence on its own."""
        return float(self.card.get("crisis_strong_similarity", 1.0))

    def save(self, folder: Path, stem: str) -> Path:
        """Write ``<stem>.npz`` and ``<stem>.json`` atomically; returns the ``.npz`` path."""
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"crisis_prototypes": self.prototypes}
        if self.meaning is not None:
            arrays.update(self.meaning.arrays())
        for name, head in self.heads.items():
            arrays[f"{name}__classes"] = np.asarray(head.classes, dtype=str)
            arrays[f"{name}__coef"] = head.coef
            arrays[f"{name}__intercept"] = head.intercept
            if head.hashed_coef is not None:
                arrays[f"{name}__hashed"] = head.hashed_coef
        target = folder / f"{stem}.npz"
        tmp = folder / f".{stem}.{os.getpid()}.tmp.npz"
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
        card_tmp = folder / f".{stem}.{os.getpid()}.tmp.json"
        card_tmp.write_text(json.dumps(self.card, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(card_tmp, folder / f"{stem}.json")
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, folder: Path, stem: str) -> TriageModel:
        """Read a model written by ``save``."""
        path = folder / f"{stem}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                heads = {
                    name: LinearHead(
                        classes=tuple(str(c) for c in data[f"{name}__classes"]),
                        coef=np.asarray(data[f"{name}__coef"], dtype=np.float32),
                        intercept=np.asarray(data[f"{name}__intercept"], dtype=np.float32),
                        hashed_coef=(np.asarray(data[f"{name}__hashed"], dtype=np.float32)
                                     if f"{name}__hashed" in data.files else None),
                    )
                    for name in HEADS
                }
                prototypes = np.asarray(data["crisis_prototypes"], dtype=np.float32)
                meaning = MeaningScreen.from_arrays(data)
            card = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"the triage model {path} is unreadable ({exc}): delete it to rebuild") from exc
        if card.get("feature_version") != FEATURE_VERSION:
            raise ConfigError(
                f"the triage model {path} was built for features {card.get('feature_version')!r}, not "
                f"{FEATURE_VERSION!r}: retrain it with `copilot triage train FILE` (or delete it)"
            )
        return cls(heads=heads, card=card, prototypes=prototypes, meaning=meaning)


def precision_features(features: Features, texts: Sequence[str], evidences: Sequence[Any]) -> Features:
    """The precision stage's input: the embedding and the screen's cues, with the n-grams."""
    from copilot.triage.crisis import cue_matrix

    dense = np.hstack([features.embedding, cue_matrix(list(texts), list(evidences))]).astype(np.float32)
    return Features(dense=dense, hashed=features.hashed)
