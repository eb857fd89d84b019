"""Surge detection: many messages about the same thing at once, far more than that topic's normal rate.

Every inbound message that is not spam leaves its sentence embedding (normalised, so a dot product is the
cosine). :func:`find_surges` looks at the messages of the sliding window that belong to no incident yet:
the message with the most neighbours (cosine at least ``similarity``) seeds a group, the group's centroid
gathers its members, and the group is a surge when it has at least ``min_members`` messages and at least
``ratio`` times as many as the same topic had in an equally long stretch of the baseline (the days before the
window). A topic people always write about (a password reset) never becomes an incident by its volume alone;
a topic nobody wrote about yesterday does once a handful of people write about it within the window.
Until the desk has seen ``min_baseline_s`` of traffic it knows no topic's normal rate (a new install, or the
first messages after a quiet spell longer than the baseline): then a group must also be ``cold_share`` of the
window's messages, so a burst still stands out and everyday topics do not each become an incident.

A message that arrives once an incident exists joins it directly when it is close enough to one of its
centroids (:func:`nearest_centroid`), so a burst of thousands is one pass over the open incidents, not a
clustering. An incident keeps one centroid per group it gathered: the sentence embedder reads one language
well, so the same outage written in Spanish is a group of its own, tight within itself; a group close to an
incident's centroid (``merge_similarity``) becomes one more centroid of that incident, and a reviewer merges
the groups the embedder cannot tell are the same (``copilot incidents merge``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

MAX_WINDOW_POINTS = 3000  # the newest messages of a window that are clustered (a burst joins by centroid)


@dataclass(frozen=True)
class SurgeRules:
    """When a group of similar messages is an incident."""

    window_s: float = 1800.0  # the sliding window: the last 30 minutes
    similarity: float = 0.55  # cosine to the group's centroid to be "about the same thing"
    join_similarity: float = 0.55  # cosine to one of an open incident's centroids for a new message to join it
    merge_similarity: float = 0.45  # a new group this close to an incident's centroid is more of that incident
    min_members: int = 8  # a surge has at least this many messages in the window
    ratio: float = 4.0  # ... and this many times the topic's normal count for a window as long
    baseline_s: float = 7 * 24 * 3600.0  # the normal rate is read from the week before the window
    min_baseline_s: float = 1800.0  # less history than this: no topic's normal rate is known yet ...
    cold_share: float = 0.2  # ... and a group must also be this share of the window's messages

    def __post_init__(self) -> None:
        if not all(0.0 < x < 1.0 for x in (self.similarity, self.join_similarity, self.merge_similarity)):
            raise ValueError("the similarities are cosines between 0 and 1")
        if self.min_members < 2 or self.window_s <= 0 or self.ratio <= 0:
            raise ValueError("min_members must be at least 2; the window and the ratio must be positive")
        if self.min_baseline_s < 0 or not 0.0 <= self.cold_share <= 1.0:
            raise ValueError("min_baseline_s cannot be negative; cold_share is a share between 0 and 1")


@dataclass(frozen=True)
class Point:
    """One message's place in the embedding space."""

    case_id: int
    at: datetime
    vector: np.ndarray  # normalised float32


@dataclass(frozen=True)
class Surge:
    """A group of messages the rules call an incident."""

    case_ids: tuple[int, ...]
    similarities: tuple[float, ...]  # each member's cosine to the centroid
    centroid: np.ndarray
    medoid: int  # the case closest to the centroid: the example that stands for the group
    expected: float  # the topic's normal count for a window as long (from the baseline)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def expected_count(centroid: np.ndarray, baseline: np.ndarray, rules: SurgeRules, baseline_span_s: float) -> float:
    """How many messages of this topic a window normally has: the baseline's count, scaled to the window."""
    if baseline.size == 0 or baseline_span_s <= 0:
        return 0.0
    similar = int(np.count_nonzero(baseline @ centroid >= rules.similarity))
    return similar * rules.window_s / baseline_span_s


def find_surges(points: Sequence[Point], baseline: np.ndarray, rules: SurgeRules, *,
                baseline_span_s: float | None = None) -> list[Surge]:
    """The surges among ``points`` (the window's messages in no incident), biggest first.

    ``baseline`` holds the vectors of the days before the window (one row each); ``baseline_span_s`` is how
    long a stretch they cover (default: the rules' baseline; shorter than ``min_baseline_s``: see the module).
    """
    if len(points) < rules.min_members:
        return []
    points = sorted(points, key=lambda p: p.at)[-MAX_WINDOW_POINTS:]
    span = rules.baseline_s if baseline_span_s is None else baseline_span_s
    floor = max(rules.min_members, rules.cold_share * len(points) if span < rules.min_baseline_s else 0)
    vectors = normalise(np.stack([p.vector for p in points]))
    base = normalise(baseline) if baseline.size else np.zeros((0, vectors.shape[1]), dtype=np.float32)
    near = (vectors @ vectors.T) >= rules.similarity
    remaining = np.ones(len(points), dtype=bool)
    surges: list[Surge] = []
    while remaining.sum() >= rules.min_members:
        counts = (near & remaining[None, :]).sum(axis=1) * remaining
        seed = int(np.argmax(counts))
        if counts[seed] < rules.min_members:
            break
        group = near[seed] & remaining
        centroid = normalise(vectors[group].mean(axis=0))[0]
        sims = vectors @ centroid
        members = (sims >= rules.similarity) & remaining
        if members.sum() < rules.min_members:  # the seed's neighbours spread out: try the next seed
            remaining[seed] = False
            continue
        centroid = normalise(vectors[members].mean(axis=0))[0]
        sims = vectors @ centroid
        members = (sims >= rules.similarity) & remaining
        remaining &= ~members
        expected = expected_count(centroid, base, rules, span)
        if members.sum() < floor or members.sum() < rules.ratio * expected:
            continue  # the topic's usual volume (or, with no history yet, too small a share): no incident
        index = np.flatnonzero(members)
        medoid = int(index[np.argmax(sims[index])])
        surges.append(Surge(case_ids=tuple(points[i].case_id for i in index),
                            similarities=tuple(float(sims[i]) for i in index), centroid=centroid,
                            medoid=points[medoid].case_id, expected=expected))
    return sorted(surges, key=lambda s: -len(s.case_ids))


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray, threshold: float) -> list[tuple[int, float] | None]:
    """For each vector, the row of the closest centroid and its cosine, or None below ``threshold``."""
    if vectors.size == 0:
        return []
    if centroids.size == 0:
        return [None] * len(vectors)
    sims = normalise(vectors) @ normalise(centroids).T
    best = sims.argmax(axis=1)
    return [(int(b), float(sims[i, b])) if sims[i, b] >= threshold else None for i, b in enumerate(best)]


_WORD = re.compile(r"[^\W\d_][\w'-]{2,}", re.UNICODE)
_STOP = frozenset(word for word in """
the and for you your are was were has have had this that with from not but all any can cant can't could
would should will just since again still now get got its it's i'm im ive i've our out what when who how why
there their them they then than too very been being also into onto about after before over under while
please help anyone else does did doing done is isn't wont won't don't dont didnt didn't my me mine here
today tonight morning hours hour minutes minute day days week one two lol omg wtf
los las del por para una que con como pero mas más esta está este hoy todo nada desde
les des une est pas pour que qui avec mais sur dans depuis plus encore tout rien mon mes
der die das und ist nicht ein eine mit seit heute noch auch bei mein meine kein keine
para uma não nao com mas está esta hoje desde ainda meu minha
per una che non con come sono oggi ancora mio mia del della
""".split())  # noqa: SIM905


def keywords(texts: Sequence[str], *, limit: int = 4) -> tuple[str, ...]:
    """The words most of the group's messages share (each counted once per message), commonest first."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({w.lower() for w in _WORD.findall(text)} - _STOP)
    floor = max(2, len(texts) // 5)
    return tuple(w for w, n in counts.most_common(limit * 3) if n >= floor)[:limit]
