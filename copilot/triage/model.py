"""The triage model: linear heads (kind, sentiment, crisis, private channel) over sentence embeddings plus
lexical features; trained on the shipped seed set out of the box, or on a team's own labelled history.

Fitted heads are plain arrays (``.npz`` + a JSON card, no pickle), cached under ``<data_dir>/triage/``:
``seed-<hash>.npz`` keyed by the seed data, the feature version and the embedder, and ``team.npz`` for a
team's trained model (``copilot triage train FILE``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from copilot.errors import ConfigError, UserError
from copilot.models.embeddings import as_matrix
from copilot.triage.cases import GENERIC_CRISIS, NO_CRISIS, Case, load_cases
from copilot.triage.features import FEATURE_VERSION, lexical_matrix

HEADS: tuple[str, ...] = ("kind", "sentiment", "crisis", "crisis_category", "private")
# Per-head fitting: regularisation, and whether classes are re-weighted to balance. The crisis gate is
# fitted on the natural mix (balancing 1:6 seed odds made every angry complaint look like a crisis) with a
# weak penalty; its decision threshold sits low instead, for recall.
HEAD_OPTIONS: dict[str, dict[str, Any]] = {
    "kind": {"c": 1.0, "balance": True},
    "sentiment": {"c": 1.0, "balance": True},
    "crisis": {"c": 10.0, "balance": False},
    "crisis_category": {"c": 3.0, "balance": True},
    "private": {"c": 1.0, "balance": True},
}
SEED_FILES: tuple[str, ...] = ("triage_seed.jsonl", "triage_banking77.jsonl")
TRAIN_VERSION = "t3"
MIN_TEAM_LABELS = 20  # fewer labels than this for a field: keep the seed head for it
TEAM_STEM = "team"


def embedder_name(embedder: Embeddings) -> str:
    """A stable name for an embedder: fitted heads only fit the embedder they were trained with."""
    for attribute in ("name", "model", "model_name"):
        value = getattr(embedder, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(embedder).__name__


def featurize(embedder: Embeddings, texts: Sequence[str]) -> tuple[np.ndarray, float]:
    """The feature matrix (embedding, then lexical features) and the seconds spent embedding."""
    start = time.perf_counter()
    embedded = as_matrix(embedder, list(texts))
    embed_s = time.perf_counter() - start
    return np.hstack([embedded, lexical_matrix(list(texts))]).astype(np.float32), embed_s


@dataclass(frozen=True)
class LinearHead:
    """A multinomial (or binary) logistic-regression head stored as plain arrays."""

    classes: tuple[str, ...]
    coef: np.ndarray  # (k, d), or (1, d) for two classes
    intercept: np.ndarray  # (k,) or (1,)

    def proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per input, columns in ``classes`` order."""
        logits = features @ self.coef.T + self.intercept
        if len(self.classes) == 2 and self.coef.shape[0] == 1:
            p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            return np.stack([1.0 - p1, p1], axis=1)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def fit_head(
    features: np.ndarray, labels: Sequence[str], *, weights: np.ndarray | None = None, c: float = 1.0,
    balance: bool = True,
) -> LinearHead:
    """Fit a logistic regression (class-balanced unless told otherwise); a head needs two classes."""
    from sklearn.linear_model import LogisticRegression

    classes = sorted(set(labels))
    if len(classes) < 2:
        raise UserError(f"a triage head needs at least two classes to learn from, got {classes}")
    y = np.asarray(labels)
    counts = Counter(labels)
    # Balanced classes, scaled by any per-row weight (seed rows count less beside a team's own data).
    if balance:
        sample_weight = np.asarray([len(labels) / (len(classes) * counts[label]) for label in labels])
    else:
        sample_weight = np.ones(len(labels))
    if weights is not None:
        sample_weight = sample_weight * weights
    clf = LogisticRegression(C=c, max_iter=3000, tol=1e-5)
    clf.fit(features, y, sample_weight=sample_weight)
    return LinearHead(
        classes=tuple(str(c_) for c_ in clf.classes_),
        coef=clf.coef_.astype(np.float32),
        intercept=clf.intercept_.astype(np.float32),
    )


def choose_c(features: np.ndarray, labels: Sequence[str], grid: Sequence[float] = (0.3, 1.0, 3.0, 10.0),
             seed: int = 0) -> float:
    """The regularisation strength with the best 3-fold macro-F1 (deterministic folds)."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels)
    if min(Counter(labels).values()) < 3 or len(y) < 60:
        return 1.0
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    best, best_score = 1.0, -1.0
    for c in grid:
        scores = []
        for train, test in folds.split(features, y):
            head = fit_head(features[train], list(y[train]), c=c)
            predicted = np.asarray(head.classes)[head.proba(features[test]).argmax(axis=1)]
            scores.append(f1_score(y[test], predicted, average="macro"))
        score = float(np.mean(scores))
        if score > best_score + 1e-4:
            best, best_score = c, score
    return best


def head_labels(cases: Sequence[Case], head: str) -> list[str | None]:
    """Each case's label for one head (``None``: not labelled)."""
    out: list[str | None] = []
    for case in cases:
        if head == "kind":
            out.append(case.kind)
        elif head == "sentiment":
            out.append(case.sentiment)
        elif head == "crisis":
            out.append(None if case.crisis is None else ("none" if case.crisis == NO_CRISIS else "crisis"))
        elif head == "crisis_category":
            named = case.crisis not in (None, NO_CRISIS, GENERIC_CRISIS)
            out.append(case.crisis if named else None)
        else:
            out.append(None if case.private_info is None else ("private" if case.private_info else "public"))
    return out


@dataclass
class TriageModel:
    """The fitted heads and a card saying what they were trained on."""

    heads: dict[str, LinearHead]
    card: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path, stem: str) -> Path:
        """Write ``<stem>.npz`` and ``<stem>.json`` atomically; returns the ``.npz`` path."""
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for name, head in self.heads.items():
            arrays[f"{name}__classes"] = np.asarray(head.classes, dtype=str)
            arrays[f"{name}__coef"] = head.coef
            arrays[f"{name}__intercept"] = head.intercept
        target = folder / f"{stem}.npz"
        tmp = folder / f".{stem}.{os.getpid()}.tmp.npz"
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
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
                    )
                    for name in HEADS
                }
            card = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"the triage model {path} is unreadable ({exc}): delete it to rebuild") from exc
        return cls(heads=heads, card=card)


# ---------------------------------------------------------------------------------------------------------
# The shipped seed set


def seed_paths() -> list[Path]:
    """The packaged seed case files."""
    base = resources.files("copilot") / "data"
    return [Path(str(base / name)) for name in SEED_FILES]


def seed_cases() -> list[Case]:
    """Every shipped seed case (hand-written messages, plus BANKING77 questions)."""
    cases: list[Case] = []
    for path in seed_paths():
        cases.extend(load_cases(path).cases)
    return cases


def seed_key(embedder: Embeddings) -> str:
    """A hash of the seed data, the feature and training versions, and the embedder."""
    digest = hashlib.sha256()
    for path in seed_paths():
        digest.update(path.read_bytes())
    digest.update(f"{FEATURE_VERSION}|{TRAIN_VERSION}|{embedder_name(embedder)}".encode())
    return digest.hexdigest()[:16]


def _fit_all(features: np.ndarray, cases: Sequence[Case], *, weights: np.ndarray | None = None,
             tune: bool = False) -> tuple[dict[str, LinearHead], dict[str, Any]]:
    heads: dict[str, LinearHead] = {}
    stats: dict[str, Any] = {}
    for head in HEADS:
        labels = head_labels(cases, head)
        keep = np.asarray([label is not None for label in labels])
        y = [label for label in labels if label is not None]
        x = features[keep]
        w = weights[keep] if weights is not None else None
        options = HEAD_OPTIONS[head]
        c = choose_c(x, y) if tune else options["c"]
        heads[head] = fit_head(x, y, weights=w, c=c, balance=options["balance"])
        stats[head] = {"n": len(y), "c": c, "classes": dict(Counter(y))}
    return heads, stats


def train_seed_model(embedder: Embeddings) -> tuple[TriageModel, np.ndarray]:
    """Fit every head on the seed set; returns the model and the seed feature matrix."""
    cases = seed_cases()
    features, _ = featurize(embedder, [c.text for c in cases])
    heads, stats = _fit_all(features, cases)
    card = {
        "source": "seed", "embedder": embedder_name(embedder), "feature_version": FEATURE_VERSION,
        "train_version": TRAIN_VERSION, "dim": int(features.shape[1]), "heads": stats,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return TriageModel(heads=heads, card=card), features


def load_seed_model(folder: Path, embedder: Embeddings) -> TriageModel:
    """The seed model from the cache under ``folder``, trained and cached on first use."""
    stem = f"seed-{seed_key(embedder)}"
    if (folder / f"{stem}.npz").exists() and (folder / f"{stem}.json").exists():
        return TriageModel.load(folder, stem)
    model, features = train_seed_model(embedder)
    model.save(folder, stem)
    np.save(folder / f"{stem}.features.npy", features)
    return model


def _seed_features(folder: Path | None, embedder: Embeddings, cases: Sequence[Case]) -> np.ndarray:
    if folder is not None:
        cached = folder / f"seed-{seed_key(embedder)}.features.npy"
        if cached.exists():
            features = np.load(cached, allow_pickle=False)
            if features.shape[0] == len(cases):
                return features
    features, _ = featurize(embedder, [c.text for c in cases])
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"seed-{seed_key(embedder)}.features.npy", features)
    return features


def train_team_model(
    embedder: Embeddings, cases: Sequence[Case], *, cache_dir: Path | None = None, source: str = "",
    seed_weight: float = 0.25,
) -> TriageModel:
    """Fit heads on a team's labelled cases.

    A field with at least ``MIN_TEAM_LABELS`` team labels (and two classes) is learned from the team's
    cases plus the seed set at ``seed_weight``; other fields keep the seed head. The crisis head always
    keeps the seed's crisis examples at full weight: a team's history rarely holds enough crises, and a
    missed crisis is the worst error.
    """
    seeds = seed_cases()
    seed_x = _seed_features(cache_dir, embedder, seeds)
    team_x, _ = featurize(embedder, [c.text for c in cases])
    heads: dict[str, LinearHead] = {}
    stats: dict[str, Any] = {}
    for head in HEADS:
        team_labels = head_labels(cases, head)
        team_y = [label for label in team_labels if label is not None]
        team_keep = np.asarray([label is not None for label in team_labels], dtype=bool)
        seed_labels = head_labels(seeds, head)
        seed_keep = np.asarray([label is not None for label in seed_labels], dtype=bool)
        seed_y = [label for label in seed_labels if label is not None]
        usable = len(team_y) >= MIN_TEAM_LABELS and len(set(team_y)) >= 2
        if head in ("crisis", "crisis_category"):
            usable = len(team_y) > 0  # every labelled message sharpens the line, next to the seed's crises
        options = HEAD_OPTIONS[head]
        crisis_head = head in ("crisis", "crisis_category")
        if not usable:
            x, y, w = seed_x[seed_keep], seed_y, None
            c = options["c"]
            stats[head] = {"source": "seed", "n": len(y)}
        else:
            x = np.vstack([team_x[team_keep], seed_x[seed_keep]])
            y = team_y + seed_y
            weight_of_seed = 1.0 if crisis_head else seed_weight
            w = np.concatenate([np.ones(len(team_y)), np.full(len(seed_y), weight_of_seed)])
            c = options["c"] if crisis_head else choose_c(team_x[team_keep], team_y)
            stats[head] = {"source": "team+seed", "n_team": len(team_y), "n_seed": len(seed_y),
                           "seed_weight": weight_of_seed, "c": c, "classes": dict(Counter(team_y))}
        heads[head] = fit_head(x, y, weights=w, c=c, balance=options["balance"])
    card = {
        "source": source or "team", "embedder": embedder_name(embedder), "feature_version": FEATURE_VERSION,
        "train_version": TRAIN_VERSION, "dim": int(team_x.shape[1]), "heads": stats, "n_cases": len(cases),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return TriageModel(heads=heads, card=card)
