"""The meaning screen: a calibrated classifier that reads a message as a whole, in any language.

The phrase screen (``screen.py``) only catches the words somebody listed; each fresh set of crises showed a
fifth of them worded in ways nobody had listed. This stage generalises instead: a logistic regression over
the sentence embedding and hashed character n-grams (2 to 5 characters within words, over the folded text:
lower-cased, accents off, so "suicidio", "suicide" and "Suizid" share most of their n-grams and a
conjugation or a typo still lands near its stem). It is fitted on every labelled message the product ships:
the hand-written crises and near-misses in six languages, the independent inbox sets of earlier rounds
(``crisis_inbox.jsonl``), at-risk Reddit excerpts (C-SSRS) and ordinary BANKING77 questions.

It acts in three ways (``copilot.triage.crisis.with_meaning``):
- ``P >= FLAG_AT`` on a message nothing else stopped: ``possible``, with the category this stage names and
  the sentence that reads most like a crisis as the span;
- a phrase hit it reads as everyday (``P < DOUBT_BELOW``) is cleared when only ``possible``, and a ``crisis``
  from a phrase is held at ``possible`` (a person decides; nothing is escalated on a listed word alone);
- otherwise the cascade's call stands.
The two thresholds were chosen by leaving each inbox set out in turn (docs/triage.md gives the numbers).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp

from copilot.triage.features import clean_text
from copilot.triage.language import detect_language
from copilot.triage.screen import fold

CHAR_FEATURES = 2**18
CHAR_NGRAMS = (2, 5)
CHAR_WEIGHT = 4.0  # the n-gram block (unit length, as the embedding) counts four times the embedding: the only
# part that reads every language (L1-normalised n-grams made a three-letter tweet read like a crisis)
FLAG_AT = 0.5  # P(crisis) at or above this stops a message the phrases missed: possible
FIGURE_FLAG_AT = 0.9  # the same, for a message with a figure-of-speech cue ("lol", an idiom the screen blanked)
DOUBT_BELOW = 0.05  # a phrase hit this stage reads as everyday (six languages): cleared
FIGURE_DOUBT_BELOW = 0.1  # the same, beside a figure-of-speech cue
ESCALATE_FROM = 0.2  # a listed phrase escalates only from this P; below it, possible (a person decides)
C = 3.0
MIN_LANGUAGE_ROWS = 100  # a language with fewer labelled rows is balanced with the others pooled
SPAN_MAX = 200
_SENTENCE = re.compile(r"[^.!?\n;]+[.!?;]*")
NO_CRISIS = "none"


@lru_cache(maxsize=1)
def _hasher() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, n_features=CHAR_FEATURES,
                             alternate_sign=False, norm="l2", dtype=np.float32)


def char_ngrams(texts: Sequence[str]) -> sp.csr_matrix:
    """Hashed, L2-normalised character 2- to 5-grams of the folded texts (a sparse CSR matrix)."""
    return _hasher().transform([fold(clean_text(t)) for t in texts]).tocsr()


@dataclass(frozen=True)
class MeaningRead:
    """What the meaning screen makes of one message."""

    p: float  # P(a crisis)
    category: str  # the most likely crisis category
    span: str | None  # the sentence that reads most like a crisis (only when ``p >= FLAG_AT``: speed)


@dataclass(frozen=True)
class MeaningScreen:
    """A binary crisis head and a category head over ``[embedding, CHAR_WEIGHT * char n-grams]``."""

    dense_coef: np.ndarray  # (1, embedding dims)
    char_coef: np.ndarray  # (1, CHAR_FEATURES), CHAR_WEIGHT folded in
    intercept: float
    categories: tuple[str, ...]
    category_dense: np.ndarray  # (k, embedding dims)
    category_char: np.ndarray  # (k, CHAR_FEATURES)
    category_intercept: np.ndarray  # (k,)

    def read(self, embedding: np.ndarray, texts: Sequence[str]) -> list[MeaningRead]:
        """P(crisis), category and evidence sentence for each text (``embedding``: one row per text)."""
        if not texts:
            return []
        chars = char_ngrams(texts)
        dense_logit = embedding @ self.dense_coef[0]
        logit = dense_logit + np.asarray(chars @ self.char_coef[0]).ravel() + self.intercept
        p = 1.0 / (1.0 + np.exp(-logit))
        cat_logits = embedding @ self.category_dense.T + np.asarray(chars @ self.category_char.T) + \
            self.category_intercept
        out = []
        for i, text in enumerate(texts):
            category = self.categories[int(np.argmax(cat_logits[i]))] if self.categories else "self-harm"
            span = self._span(text, float(dense_logit[i])) if p[i] >= FLAG_AT else None
            out.append(MeaningRead(float(p[i]), category, span))
        return out

    def _span(self, text: str, dense_logit: float) -> str:
        """The sentence whose n-grams read most like a crisis (the message's embedding stays as it is: a
        sentence is not embedded again, for speed)."""
        sentences = [m.group(0).strip() for m in _SENTENCE.finditer(text) if len(m.group(0).strip()) >= 3]
        if len(sentences) < 2:
            return text.strip()[:SPAN_MAX]
        scores = np.asarray(char_ngrams(sentences) @ self.char_coef[0]).ravel() + dense_logit
        return sentences[int(np.argmax(scores))][:SPAN_MAX]

    def arrays(self) -> dict[str, np.ndarray]:
        """The screen as named arrays (saved beside the triage heads, no pickle)."""
        return {"meaning__dense": self.dense_coef, "meaning__char": self.char_coef,
                "meaning__intercept": np.asarray([self.intercept], dtype=np.float32),
                "meaning__categories": np.asarray(self.categories, dtype=str),
                "meaning__cat_dense": self.category_dense, "meaning__cat_char": self.category_char,
                "meaning__cat_intercept": self.category_intercept}

    @classmethod
    def from_arrays(cls, data: Any) -> MeaningScreen | None:
        """The screen saved by ``arrays``, or None when the file has none (a model from an older version)."""
        if "meaning__dense" not in getattr(data, "files", data):
            return None
        return cls(dense_coef=np.asarray(data["meaning__dense"], dtype=np.float32),
                   char_coef=np.asarray(data["meaning__char"], dtype=np.float32),
                   intercept=float(np.asarray(data["meaning__intercept"])[0]),
                   categories=tuple(str(c) for c in data["meaning__categories"]),
                   category_dense=np.asarray(data["meaning__cat_dense"], dtype=np.float32),
                   category_char=np.asarray(data["meaning__cat_char"], dtype=np.float32),
                   category_intercept=np.asarray(data["meaning__cat_intercept"], dtype=np.float32))


def _design(embedding: np.ndarray, texts: Sequence[str]) -> sp.csr_matrix:
    return sp.hstack([sp.csr_matrix(embedding), char_ngrams(texts) * CHAR_WEIGHT]).tocsr()


def _balanced_weights(y: np.ndarray, languages: Sequence[str]) -> np.ndarray:
    """Sample weights under which crises and calm messages weigh the same within each language, and each
    language weighs as many rows as it has. Without them the screen learns the language itself as evidence:
    the shipped Spanish or French rows are 40% crises against 27% of the English ones, so a long, calm
    Spanish question scored like a crisis. Languages with fewer than ``MIN_LANGUAGE_ROWS`` rows, or only one
    class, are pooled."""
    counts = Counter(languages)
    groups = np.asarray([language if counts[language] >= MIN_LANGUAGE_ROWS else "" for language in languages])
    for group in set(groups.tolist()):  # a language with one class only cannot be balanced: pooled too
        if len(set(y[groups == group].tolist())) < 2:
            groups[groups == group] = ""
    weights = np.ones(len(y))
    for group in set(groups.tolist()):
        rows = groups == group
        share = y[rows].mean()
        if 0.0 < share < 1.0:  # (the pool itself may hold one class: its rows keep weight 1)
            weights[rows] = np.where(y[rows], 0.5 / share, 0.5 / (1.0 - share))
    return weights


def fit_meaning(embedding: np.ndarray, texts: Sequence[str], labels: Sequence[str]) -> MeaningScreen:
    """Fit the screen on labelled messages: ``labels`` are ``"none"`` or a crisis category.

    Both classes weigh the same in total within each language (see ``_balanced_weights``). The category head
    learns from the crises alone; a generic label ("crisis") is left out of it.
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray([label != NO_CRISIS for label in labels])
    if y.all() or not y.any():
        raise ValueError("the meaning screen needs crises and ordinary messages to learn from")
    x = _design(embedding, texts)
    weights = _balanced_weights(y, [detect_language(t) for t in texts])
    binary = LogisticRegression(C=C, max_iter=3000)
    binary.fit(x, y, sample_weight=weights)
    dims = embedding.shape[1]
    named = [i for i, label in enumerate(labels) if label not in (NO_CRISIS, "crisis")]
    categories: tuple[str, ...] = tuple(sorted({labels[i] for i in named}))
    k = len(categories)
    cat_dense = np.zeros((k, dims), dtype=np.float32)
    cat_char = np.zeros((k, CHAR_FEATURES), dtype=np.float32)
    cat_intercept = np.zeros(k, dtype=np.float32)
    if k >= 2:
        multi = LogisticRegression(C=C, max_iter=3000, class_weight="balanced")
        multi.fit(x[named], [labels[i] for i in named])
        order = [list(multi.classes_).index(c) for c in categories]
        coef = multi.coef_[order] if multi.coef_.shape[0] == k else np.vstack([-multi.coef_, multi.coef_])
        cat_dense, cat_char = coef[:, :dims].astype(np.float32), (coef[:, dims:] * CHAR_WEIGHT).astype(np.float32)
        intercept = multi.intercept_[order] if multi.intercept_.shape[0] == k else \
            np.asarray([-multi.intercept_[0], multi.intercept_[0]])
        cat_intercept = intercept.astype(np.float32)
    return MeaningScreen(
        dense_coef=binary.coef_[:, :dims].astype(np.float32),
        char_coef=(binary.coef_[:, dims:] * CHAR_WEIGHT).astype(np.float32),
        intercept=float(binary.intercept_[0]), categories=categories, category_dense=cat_dense,
        category_char=cat_char, category_intercept=cat_intercept,
    )
