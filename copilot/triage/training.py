"""Fitting and calibrating the triage heads: on the shipped seed set (trained once, cached under
``<data_dir>/triage/seed-<hash>.npz``, keyed by the seed data, the feature and training versions and the
embedder) or on a team's own labelled history (``copilot triage train FILE``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from langchain_core.embeddings import Embeddings

from copilot.errors import UserError
from copilot.triage.cases import GENERIC_CRISIS, NO_CRISIS, Case, load_cases
from copilot.triage.features import FEATURE_VERSION, HASH_FEATURES
from copilot.triage.meaning import MeaningScreen, fit_meaning
from copilot.triage.model import (
    CLEAR_FLOOR,
    HEADS,
    Features,
    LinearHead,
    TriageModel,
    embedder_name,
    featurize,
    precision_features,
)

# Per head: regularisation, class balancing, which features it reads, and the weight of the n-gram block.
# The crisis gate is fitted on the natural mix (balancing the 1:6 seed odds made every angry complaint look
# like a crisis) with a weak penalty, and its threshold sits low instead, for recall. Crisis heads read
# meaning only (the embedding): lexicon negativity and words are not danger. (Balanced kinds over-predict
# spam on real traffic; the triager asks for a clear majority before it calls a message spam.)
HEAD_OPTIONS: dict[str, dict[str, Any]] = {
    "kind": {"c": 1.0, "balance": True, "embedding_only": False, "hash_weight": 1.0},
    "sentiment": {"c": 1.0, "balance": True, "embedding_only": False, "hash_weight": 1.0},
    "crisis": {"c": 10.0, "balance": False, "embedding_only": True, "hash_weight": 0.0},
    "crisis_category": {"c": 3.0, "balance": True, "embedding_only": True, "hash_weight": 0.0},
    "private": {"c": 1.0, "balance": True, "embedding_only": False, "hash_weight": 1.0},
}
# The precision stage reads the embedding, the screen's cues and the n-grams (the only signal it has in a
# language the English embedder does not know).
PRECISION_OPTIONS: dict[str, Any] = {"c": 1.0, "balance": True, "hash_weight": 0.5}
# Shipped crisis data the precision stage learns from besides the seed set: hand-written crises and
# near-misses in six languages, at-risk Reddit excerpts (C-SSRS), ordinary urgent BANKING77 questions, and
# calm messages that borrow the words of harm (figures of speech, titles, health questions, urgent problems),
# and crises and calm messages in languages beyond the six.
CRISIS_FILES: tuple[str, ...] = ("triage_crisis.jsonl", "crisis_cssrs.jsonl", "triage_banking77_ordinary.jsonl",
                                 "crisis_calm.jsonl", "crisis_languages.jsonl")
# Labelled messages the meaning screen also learns from: the independent inbox sets of earlier rounds.
MEANING_FILES: tuple[str, ...] = ("crisis_inbox.jsonl",)
CLEAR_CAP = 0.25  # the highest calibrated "clear below" probability (the lowest is CLEAR_FLOOR)
# A team's heads pick regularisation and n-gram weight by 3-fold cross-validation on the team's own data.
TEAM_GRID_C: tuple[float, ...] = (0.3, 1.0, 3.0)
TEAM_GRID_HASH: tuple[float, ...] = (0.5, 1.0, 2.0)
SEED_FILES: tuple[str, ...] = ("triage_seed.jsonl", "triage_banking77.jsonl")
TRAIN_VERSION = "t12"
GATE_QUANTILE = 0.03
STRONG_QUANTILE = 0.995
MIN_TEAM_LABELS = 20  # fewer labels than this for a field: keep the seed head for it


def fit_head(
    features: Features, labels: Sequence[str], *, weights: np.ndarray | None = None, c: float = 1.0,
    balance: bool = True, embedding_only: bool = False, hash_weight: float = 1.0,
) -> LinearHead:
    """Fit a logistic regression (class-balanced unless told otherwise); a head needs two classes.

    ``embedding_only`` reads only the embedding columns; otherwise the lexical features and the hashed
    n-grams (scaled by ``hash_weight``) join in.
    """
    from sklearn.linear_model import LogisticRegression

    classes = sorted(set(labels))
    if len(classes) < 2:
        raise UserError(f"a triage head needs at least two classes to learn from, got {classes}")
    y = np.asarray(labels)
    counts = Counter(labels)
    if balance:
        sample_weight = np.asarray([len(labels) / (len(classes) * counts[label]) for label in labels])
    else:
        sample_weight = np.ones(len(labels))
    if weights is not None:
        sample_weight = sample_weight * weights
    use_hash = not embedding_only and hash_weight > 0
    dense = features.embedding if embedding_only else features.dense
    matrix: Any = sp.hstack([sp.csr_matrix(dense), features.hashed * hash_weight]).tocsr() if use_hash else dense
    clf = LogisticRegression(C=c, max_iter=3000, tol=1e-4)
    clf.fit(matrix, y, sample_weight=sample_weight)
    coef = np.zeros((clf.coef_.shape[0], features.dense.shape[1]), dtype=np.float32)
    coef[:, : dense.shape[1]] = clf.coef_[:, : dense.shape[1]]
    hashed_coef = (clf.coef_[:, dense.shape[1]:] * hash_weight).astype(np.float32) if use_hash else None
    return LinearHead(classes=tuple(str(k) for k in clf.classes_), coef=coef,
                      intercept=clf.intercept_.astype(np.float32), hashed_coef=hashed_coef)


def choose_options(
    features: Features, labels: Sequence[str], *, balance: bool, seed: int = 0,
    grid_c: Sequence[float] = TEAM_GRID_C, grid_hash: Sequence[float] = TEAM_GRID_HASH,
) -> tuple[float, float]:
    """``(C, n-gram weight)`` with the best 3-fold macro-F1 on these labels (deterministic folds)."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels)
    if min(Counter(labels).values()) < 3 or len(y) < 60:
        return 1.0, 1.0
    folds = list(StratifiedKFold(n_splits=3, shuffle=True, random_state=seed).split(features.dense, y))
    best, best_score = (1.0, 1.0), -1.0
    for c in grid_c:
        for hash_weight in grid_hash:
            scores = []
            for train, test in folds:
                head = fit_head(features.rows(train), list(y[train]), c=c, balance=balance, hash_weight=hash_weight)
                scores.append(f1_score(y[test], head.predict(features.rows(test)), average="macro"))
            score = float(np.mean(scores))
            if score > best_score + 1e-4:
                best, best_score = (c, hash_weight), score
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


def crisis_prototypes(features: Features, cases: Sequence[Case]) -> tuple[np.ndarray, float, float]:
    """The embeddings of known crises, the similarity gate a new crisis must clear, and the similarity
    that counts as evidence on its own.

    Both are calibrated on the labelled messages themselves. The gate: the 3rd percentile of each crisis's
    similarity to its nearest other crisis (a message less like any known crisis than that is not flagged by
    the classifier alone). The strong similarity: the 99.5th percentile of the non-crises' similarity to
    their nearest crisis (a message closer than that to a known crisis is flagged on weak classifier support).
    """
    crisis_rows = [i for i, c in enumerate(cases) if c.crisis not in (None, NO_CRISIS)]
    other_rows = [i for i, c in enumerate(cases) if c.crisis == NO_CRISIS]
    prototypes = features.embedding[crisis_rows].astype(np.float32)
    if len(crisis_rows) < 2:
        return prototypes, 0.0, 1.0
    sims = prototypes @ prototypes.T
    np.fill_diagonal(sims, -1.0)
    gate = float(np.quantile(sims.max(axis=1), GATE_QUANTILE))
    strong = 1.0
    if other_rows:
        nearest = (features.embedding[other_rows] @ prototypes.T).max(axis=1)
        strong = float(np.quantile(nearest, STRONG_QUANTILE))
    return prototypes, gate, max(strong, gate)


# ---------------------------------------------------------------------------------------------------------
# The shipped seed set


def seed_paths() -> list[Path]:
    """The packaged seed case files."""
    base = resources.files("copilot") / "data"
    return [Path(str(base / name)) for name in SEED_FILES]


def crisis_paths() -> list[Path]:
    """The packaged crisis files the precision stage also learns from, and the screen's phrases."""
    base = resources.files("copilot") / "data"
    return [Path(str(base / name)) for name in (*CRISIS_FILES, *MEANING_FILES, "crisis_screen.yaml")]


def seed_cases() -> list[Case]:
    """Every shipped seed case (hand-written messages, plus BANKING77 questions)."""
    cases: list[Case] = []
    for path in seed_paths():
        cases.extend(load_cases(path).cases)
    return cases


def seed_key(embedder: Embeddings) -> str:
    """A hash of the seed data, the feature and training versions, and the embedder."""
    digest = hashlib.sha256()
    for path in [*seed_paths(), *crisis_paths()]:
        digest.update(path.read_bytes())
    digest.update(f"{FEATURE_VERSION}|{TRAIN_VERSION}|{HASH_FEATURES}|{embedder_name(embedder)}".encode())
    return digest.hexdigest()[:16]


def _labelled(features: Features, cases: Sequence[Case], head: str) -> tuple[Features, list[str], np.ndarray]:
    labels = head_labels(cases, head)
    keep = np.asarray([label is not None for label in labels], dtype=bool)
    return features.rows(keep), [label for label in labels if label is not None], keep


def _card(source: str, embedder: Embeddings, features: Features, stats: dict[str, Any], gate: float,
          strong: float, **extra: Any) -> dict[str, Any]:
    return {
        "source": source, "embedder": embedder_name(embedder), "feature_version": FEATURE_VERSION,
        "train_version": TRAIN_VERSION, "dim": int(features.dense.shape[1]), "heads": stats,
        "crisis_gate": round(gate, 4), "crisis_strong_similarity": round(strong, 4),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra,
    }


def screen_evidence(texts: Sequence[str]) -> list[Any]:
    """Phrase-screen evidence for training rows (the meaning signals are left out: in-sample they would lie)."""
    from copilot.triage.crisis import Evidence
    from copilot.triage.language import detect_language
    from copilot.triage.screen import load_lexicon

    lexicon = load_lexicon()
    out = []
    for text in texts:
        language = detect_language(text)
        out.append(Evidence(lexicon.screen(text, language), language, 0.0, 0.0, False, None))
    return out


def crisis_cases() -> list[Case]:
    """The shipped crisis files' cases (hand-written inbox crises and near-misses, C-SSRS, BANKING77 urgent)."""
    base = resources.files("copilot") / "data"
    cases: list[Case] = []
    for name in CRISIS_FILES:
        cases.extend(load_cases(Path(str(base / name))).cases)
    return cases


def _english(case: Case) -> bool:
    from copilot.triage.language import detect_language

    return (case.language or detect_language(case.text)) == "en"


def fit_precision(features: Features, rows: Sequence[Case]) -> tuple[LinearHead, float, dict[str, Any]]:
    """The precision head, fitted on ``rows`` (the seed cases and the shipped crisis files), and the
    probability below which it may clear a screened message.

    That bound is calibrated for recall: the lowest out-of-fold probability any labelled crisis got (5 folds),
    halved, within ``CLEAR_FLOOR``..``CLEAR_CAP``; a message below it looks less like a crisis than every
    crisis the stage has seen.
    """
    from sklearn.model_selection import StratifiedKFold

    labels_all = head_labels(rows, "crisis")
    keep = np.asarray([label is not None for label in labels_all], dtype=bool)
    kept = [c for c, k in zip(rows, keep, strict=True) if k]
    labels = [label for label in labels_all if label is not None]
    joined = features.rows(keep)
    x = precision_features(joined, [c.text for c in kept], screen_evidence([c.text for c in kept]))
    head = fit_head(x, labels, **PRECISION_OPTIONS)
    y = np.asarray(labels)
    oof = np.zeros(len(y), dtype=np.float32)
    for train, test in StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(x.dense, y):
        fold = fit_head(x.rows(train), list(y[train]), **PRECISION_OPTIONS)
        oof[test] = fold.proba(x.rows(test))[:, fold.classes.index("crisis")]
    positives = oof[y == "crisis"]
    clear_below = float(np.clip(0.5 * positives.min(), CLEAR_FLOOR, CLEAR_CAP)) if positives.size else CLEAR_FLOOR
    stats = {"source": "seed+crisis files", "n": len(labels), "classes": dict(Counter(labels)),
             "clear_below": round(clear_below, 4), "oof_min_positive": round(float(positives.min()), 4)
             if positives.size else None}
    return head, clear_below, stats


def train_seed_model(embedder: Embeddings) -> tuple[TriageModel, Features]:
    """Fit every head on the seed set (the precision head on the crisis files too); returns the model and
    the seed features."""
    cases = seed_cases()
    features, _ = featurize(embedder, [c.text for c in cases])
    extra = crisis_cases()
    extra_x, _ = featurize(embedder, [c.text for c in extra])
    # The meaning heads and the prototypes learn from the English crisis rows too (the embedder is English:
    # other languages would only teach it that Spanish looks like a crisis).
    english = np.asarray([_english(c) for c in extra], dtype=bool)
    meaning_cases = [*cases, *(c for c, keep in zip(extra, english, strict=True) if keep)]
    meaning_x = Features.stack([features, extra_x.rows(english)])
    heads: dict[str, LinearHead] = {}
    stats: dict[str, Any] = {}
    for head in HEADS:
        if head == "crisis_precision":
            continue
        head_cases, head_x = (meaning_cases, meaning_x) if head in ("crisis", "crisis_category") else (cases, features)
        x, y, _ = _labelled(head_x, head_cases, head)
        heads[head] = fit_head(x, y, **HEAD_OPTIONS[head])
        stats[head] = {"source": "seed" if head_x is features else "seed+crisis files (English)", "n": len(y),
                       "classes": dict(Counter(y))}
    heads["crisis_precision"], clear_below, stats["crisis_precision"] = fit_precision(
        Features.stack([features, extra_x]), [*cases, *extra])
    prototypes, gate, strong = crisis_prototypes(meaning_x, meaning_cases)
    meaning, stats["meaning"] = train_meaning(embedder, [*cases, *extra], Features.stack([features, extra_x]))
    card = _card("seed", embedder, features, stats, gate, strong, crisis_clear_below=round(clear_below, 4))
    return TriageModel(heads=heads, card=card, prototypes=prototypes, meaning=meaning), features


def train_meaning(embedder: Embeddings, cases: Sequence[Case], features: Features) -> tuple[MeaningScreen, dict[str, Any]]:
    """The meaning screen, fitted on ``cases`` (with their ``features``) and the shipped inbox sets."""
    base = resources.files("copilot") / "data"
    more = [c for name in MEANING_FILES for c in load_cases(Path(str(base / name))).cases]
    more_x, _ = featurize(embedder, [c.text for c in more])
    rows = [(c, i) for i, c in enumerate([*cases, *more]) if c.crisis is not None]
    embedding = np.vstack([features.embedding, more_x.embedding])[[i for _, i in rows]]
    labels = [str(c.crisis) for c, _ in rows]
    screen = fit_meaning(embedding, [c.text for c, _ in rows], labels)
    return screen, {"source": "seed+crisis files+inbox sets", "n": len(labels),
                    "crises": sum(1 for label in labels if label != NO_CRISIS), "categories": list(screen.categories)}


def _save_features(path: Path, features: Features) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, dense=features.dense, data=features.hashed.data, indices=features.hashed.indices,
                        indptr=features.hashed.indptr)
    os.replace(tmp, path)


def _load_features(path: Path) -> Features | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            dense = np.asarray(data["dense"], dtype=np.float32)
            hashed = sp.csr_matrix((data["data"], data["indices"], data["indptr"]),
                                   shape=(dense.shape[0], HASH_FEATURES))
    except (OSError, KeyError, ValueError):
        return None  # a stale or broken cache is rebuilt
    return Features(dense=dense, hashed=hashed)


def load_seed_model(folder: Path, embedder: Embeddings) -> TriageModel:
    """The seed model from the cache under ``folder``, trained and cached on first use."""
    stem = f"seed-{seed_key(embedder)}"
    if (folder / f"{stem}.npz").exists() and (folder / f"{stem}.json").exists():
        return TriageModel.load(folder, stem)
    model, features = train_seed_model(embedder)
    model.save(folder, stem)
    _save_features(folder / f"{stem}.features.npz", features)
    return model


def _seed_features(folder: Path | None, embedder: Embeddings, cases: Sequence[Case]) -> Features:
    path = folder / f"seed-{seed_key(embedder)}.features.npz" if folder is not None else None
    if path is not None:
        cached = _load_features(path)
        if cached is not None and len(cached) == len(cases):
            return cached
    features, _ = featurize(embedder, [c.text for c in cases])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_features(path, features)
    return features


# ---------------------------------------------------------------------------------------------------------
# A team's own labelled history


def train_team_model(
    embedder: Embeddings, cases: Sequence[Case], *, cache_dir: Path | None = None, source: str = "",
    seed_weight: float = 0.25,
) -> TriageModel:
    """Fit heads on a team's labelled cases.

    A field with at least ``MIN_TEAM_LABELS`` team labels (and two classes) is learned from the team's
    cases plus the seed set at ``seed_weight``, with C and the n-gram weight chosen by cross-validation on
    the team's cases; other fields keep the seed head. The crisis heads always keep the seed's crises at
    full weight: a team's history rarely holds enough of them, and a missed crisis is the worst error.
    """
    if not cases:
        raise UserError("no labelled messages to train on")
    seeds = seed_cases()
    if cache_dir is not None:
        seed_model, seed_x = load_seed_model(cache_dir, embedder), _seed_features(cache_dir, embedder, seeds)
    else:
        seed_model, seed_x = train_seed_model(embedder)
    team_x, _ = featurize(embedder, [c.text for c in cases])
    heads: dict[str, LinearHead] = {}
    stats: dict[str, Any] = {}
    for head in HEADS:
        if head == "crisis_precision":  # the precision stage is calibrated on the shipped crisis data
            heads[head] = seed_model.heads[head]
            stats[head] = {"source": "seed"}
            continue
        options = dict(HEAD_OPTIONS[head])
        crisis_head = head in ("crisis", "crisis_category")
        tx, ty, _ = _labelled(team_x, cases, head)
        sx, sy, _ = _labelled(seed_x, seeds, head)
        usable = len(ty) > 0 if crisis_head else (len(ty) >= MIN_TEAM_LABELS and len(set(ty)) >= 2)
        if not usable:
            heads[head] = seed_model.heads[head]
            stats[head] = {"source": "seed", "n": len(sy)}
            continue
        weight_of_seed = 1.0 if crisis_head else seed_weight
        if not crisis_head:
            options["c"], options["hash_weight"] = choose_options(tx, ty, balance=options["balance"])
        weights = np.concatenate([np.ones(len(ty)), np.full(len(sy), weight_of_seed)])
        heads[head] = fit_head(Features.stack([tx, sx]), ty + sy, weights=weights, **options)
        stats[head] = {"source": "team+seed", "n_team": len(ty), "n_seed": len(sy), "seed_weight": weight_of_seed,
                       "c": options["c"], "hash_weight": options["hash_weight"], "classes": dict(Counter(ty))}
    if any(c.crisis not in (None, NO_CRISIS) for c in cases):
        prototypes, gate, strong = crisis_prototypes(Features.stack([team_x, seed_x]), [*cases, *seeds])
    else:
        prototypes, gate = seed_model.prototypes, seed_model.crisis_gate
        strong = seed_model.crisis_strong_similarity
    card = _card(source or "team", embedder, team_x, stats, gate, strong, n_cases=len(cases),
                 crisis_clear_below=seed_model.crisis_clear_below)
    return TriageModel(heads=heads, card=card, prototypes=prototypes, meaning=seed_model.meaning)
