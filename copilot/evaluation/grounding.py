"""Groundedness: is each factual sentence of a draft supported by a passage it cites?

A sentence is split from the draft (handle removed) and reduced to its *claim words*: content words
(``copilot.lexical.tokenize``: lower-cased, stemmed, stopwords dropped) that are not in the customer's own
message, not in any phrase of ``markers.yaml`` (acknowledgements, offers, next-step wording, filler) and
not in the brand name or signature. A sentence with fewer than ``MIN_CLAIM_WORDS`` claim words and no new
number makes no factual claim ("Sorry about that!", "We're here if you need anything else.") and is
skipped. Every other sentence is *supported* when

- every number in it (two digits or more, as the drafting guardrails count them) appears in a cited
  passage or in the message, and
- its lexical coverage (the share of its claim words found in a cited passage) is at least
  ``MIN_COVERAGE``, or its embedding similarity (cosine, with the pipeline's embedder) to the closest
  sentence of a cited passage is at least ``MIN_COSINE``.

The thresholds were set with all-MiniLM-L6-v2 on the shipped support set (``calibrate``): the claim
sentences of its English reference replies against their expected entries (113 sentences, taken as
supported) and against as many randomly chosen other entries (113, taken as not supported). At 0.6/0.6,
87% of the supported sentences pass and 3.5% of the unsupported ones do (accuracy 0.92); lower
thresholds let more invented sentences through, higher ones fail more honest paraphrases.

The words of an English passage say nothing about a Spanish sentence, so a draft in another language
than its passages is not scored (``None``, "languages differ"). The score is the share of claim sentences
supported (1.0 when there are none); it passes at 1.0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from copilot.evaluation.scorers import Markers, Score, load_markers, na
from copilot.guardrails import sentences
from copilot.lexical import tokenize
from copilot.models.embeddings import as_matrix
from copilot.triage.language import detect_language

MIN_CLAIM_WORDS = 2
MIN_COVERAGE = 0.6
MIN_COSINE = 0.6
_HANDLES = re.compile(r"^(?:@[\w.]+[\s,:]*)+")
_NUMBER = re.compile(r"\b\d+(?:[.,:]\d+)*\b")


@dataclass(frozen=True)
class SentenceSupport:
    """How one sentence of a draft is (or is not) supported."""

    sentence: str
    claim: bool
    supported: bool
    coverage: float
    cosine: float | None  # None: not needed, the words decided
    best_id: str | None
    new_numbers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Grounder:
    """Scores groundedness with one embedder; passage vectors are cached across cases."""

    def __init__(
        self,
        embedder: Embeddings,
        *,
        markers: Markers | None = None,
        extra_filler: Sequence[str] = (),
        min_coverage: float = MIN_COVERAGE,
        min_cosine: float = MIN_COSINE,
        min_claim_words: int = MIN_CLAIM_WORDS,
    ) -> None:
        self.embedder = embedder
        self.markers = markers or load_markers()
        self.ignored = set(tokenize(" ".join(self.markers.words()))) | set(tokenize(" ".join(extra_filler)))
        self.min_coverage = min_coverage
        self.min_cosine = min_cosine
        self.min_claim_words = min_claim_words
        self._vectors: dict[str, np.ndarray] = {}

    def _embed(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if todo:
            for text, vector in zip(todo, as_matrix(self.embedder, todo), strict=True):
                self._vectors[text] = vector
        return np.vstack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)

    def claim_words(self, sentence: str, message: str) -> list[str]:
        """The sentence's content words that say something the message and the markers don't."""
        said = set(tokenize(message)) | self.ignored
        # Contractions ("we'll", "that's") are function words, not claims.
        return [w for w in tokenize(sentence) if w not in said and "'" not in w]

    def support(
        self, text: str, passages: Mapping[str, str], message: str, *, full: bool = False
    ) -> list[SentenceSupport]:
        """Each sentence of ``text`` with its support from ``passages`` (cited id -> passage text).

        The cosine is computed only where the words alone do not decide (``full``: for every claim, as
        ``calibrate`` needs); elsewhere it is ``None``. Embedding is the expensive part of scoring.
        """
        parts = sentences(_HANDLES.sub("", text.strip()))
        if not parts:
            return []
        passage_words = {pid: set(tokenize(body)) for pid, body in passages.items()}
        cited_text = " ".join(passages.values())
        rows: list[dict[str, Any]] = []
        for sentence in parts:
            claim = self.claim_words(sentence, message)
            numbers = tuple(
                n
                for n in _NUMBER.findall(sentence)
                if len(n) > 1 and n not in cited_text and n not in message
            )
            row: dict[str, Any] = {
                "sentence": sentence,
                "claim": len(set(claim)) >= self.min_claim_words or bool(numbers),
                "numbers": numbers,
                "coverage": 1.0,
                "best": None,
            }
            if row["claim"]:
                row["coverage"] = 0.0
                for pid, words in passage_words.items():
                    share = sum(w in words for w in claim) / len(claim) if claim else 1.0
                    if share > row["coverage"]:
                        row["coverage"], row["best"] = share, pid
            rows.append(row)
        undecided = [
            r
            for r in rows
            if r["claim"] and (full or (not r["numbers"] and r["coverage"] < self.min_coverage))
        ]
        if undecided and passages:
            units: list[tuple[str, str]] = []
            for pid, body in passages.items():
                # Sentences only: one long text in a batch would pad every short one to its length.
                pieces = [s for s in sentences(" ".join(body.split())) if len(s) > 15] or [body]
                units += [(pid, piece) for piece in pieces]
            unit_vecs = self._embed([u for _, u in units])
            sent_vecs = self._embed([r["sentence"] for r in undecided])
            for r, vector in zip(undecided, sent_vecs, strict=True):
                sims = unit_vecs @ vector
                j = int(np.argmax(sims))
                r["cosine"] = float(sims[j])
                if r["best"] is None or r["coverage"] < self.min_coverage:
                    r["best"] = units[j][0]
        out = []
        for r in rows:
            cosine = r.get("cosine")
            supported = not r["claim"] or (
                not r["numbers"]
                and (r["coverage"] >= self.min_coverage or (cosine is not None and cosine >= self.min_cosine))
            )
            out.append(
                SentenceSupport(
                    r["sentence"],
                    r["claim"],
                    supported,
                    round(r["coverage"], 3),
                    None if cosine is None else round(cosine, 3),
                    r["best"],
                    r["numbers"],
                )
            )
        return out

    def score(
        self, text: str, passages: Mapping[str, str], message: str
    ) -> tuple[Score, list[SentenceSupport]]:
        """The groundedness score of a draft: the share of its claim sentences that are supported."""
        if not text.strip():
            return na("groundedness", "no reply text"), []
        if passages:
            language, source = detect_language(text), detect_language(" ".join(passages.values()))
            if language != source:
                return na("groundedness", f"languages differ (reply {language}, passages {source})"), []
        detail = self.support(text, passages, message)
        claims = [d for d in detail if d.claim]
        if not claims:
            return Score("groundedness", 1.0, True, "no factual claims"), detail
        bad = [d for d in claims if not d.supported]
        value = 1 - len(bad) / len(claims)
        why = "; ".join(
            f"unsupported: {d.sentence[:80]!r}"
            + (f" (numbers {', '.join(d.new_numbers)})" if d.new_numbers else "")
            for d in bad[:3]
        )
        return Score("groundedness", value, not bad, why), detail


def calibrate(
    grounder: Grounder, pairs: Sequence[tuple[str, Mapping[str, str], str, bool]]
) -> dict[str, Any]:
    """Coverage and cosine of claim sentences in labelled ``(text, passages, message, supported)`` pairs.

    Returns the distributions and, for each signal alone, the threshold that best separates supported
    from unsupported sentences (the accuracy-maximising cut), to re-check ``MIN_COVERAGE``/``MIN_COSINE``.
    """
    rows: list[tuple[float, float, bool]] = []
    for text, passages, message, label in pairs:
        for detail in grounder.support(text, passages, message, full=True):
            if detail.claim:
                rows.append((detail.coverage, detail.cosine or 0.0, label))
    result: dict[str, Any] = {"n": len(rows), "n_supported": sum(r[2] for r in rows)}
    for index, name in ((0, "coverage"), (1, "cosine")):
        values = np.array([r[index] for r in rows])
        labels = np.array([r[2] for r in rows])
        best = max(
            ((float(np.mean((values >= t) == labels)), float(t)) for t in np.arange(0.3, 0.95, 0.01)),
            default=(0.0, 0.0),
        )
        result[name] = {
            "best_threshold": round(best[1], 2),
            "accuracy": round(best[0], 3),
            "supported_p10": round(float(np.percentile(values[labels], 10)), 3) if labels.any() else None,
            "unsupported_p90": round(float(np.percentile(values[~labels], 90)), 3)
            if (~labels).any()
            else None,
        }
    both = [((c >= grounder.min_coverage) or (s >= grounder.min_cosine)) == label for c, s, label in rows]
    result["combined_accuracy"] = round(float(np.mean(both)), 3) if both else None
    return result
