"""Label inbound messages: kind, sentiment, crisis, private channel, language and priority."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from copilot.config import Settings
from copilot.errors import ConfigError
from copilot.pii import pii_kinds
from copilot.triage.crisis import CrisisCall, Evidence, decide, with_meaning
from copilot.triage.features import explicit_self_harm, hyperbole_cues, private_cue, safety_detail
from copilot.triage.language import detect_language
from copilot.triage.model import (
    TEAM_STEM,
    Features,
    TriageModel,
    embedder_name,
    featurize,
    precision_features,
)
from copilot.triage.screen import Lexicon, load_lexicon
from copilot.triage.training import load_seed_model
from copilot.types import Inbound, Triage

# Crisis decision (favours recall: a missed crisis is the worst error).
CRISIS_THRESHOLD = 0.45  # P(crisis) at or above this screens a message on its meaning...
HYPERBOLE_OVERRIDE = 0.80  # ...unless it reads as a figure of speech and P(crisis) stays below this;
EXPLICIT_FLOOR = 0.10  # a plain statement of self-harm, or a near twin of a known crisis, needs only this.
SENTENCE_READ_CHARS = 120  # shorter messages are read whole (speed: a tweet is read once, not once per sentence)
MIN_SENTENCE_CHARS = 30  # a fragment ("What is going on?") read alone means little
MAX_SENTENCES = 8  # sentences of one message read on their own (the rest of a very long message is not)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
SPAM_FLOOR = 0.5  # spam only on a clear majority: a customer misread as spam is left unanswered
PRIVATE_THRESHOLD = 0.5
PRIVATE_CUE_THRESHOLD = 0.25  # with an account-specific cue ("charged twice", "my order") a lower bar

KIND_BASE = {"complaint": 45.0, "question": 30.0, "feedback": 15.0, "praise": 15.0, "conversation": 8.0,
             "spam": 0.0}


def priority_of(
    kind: str, sentiment_score: float, *, crisis: bool, crisis_probability: float = 1.0,
    followers: int | None = None, waiting_minutes: float = 0.0, private_info: bool = False,
) -> tuple[int, float]:
    """``(priority, priority_score)``: priority 1 (urgent) .. 4 (low), score 0..100 (higher is sooner).

    - A crisis scores ``90 + 10 * P(crisis)`` and is always priority 1, above everything else.
    - Otherwise ``score = base(kind) + negativity + reach + waiting + private``, capped at 89:
      base: complaint 45, question 30, feedback 15, praise 15 (a promoter is a relationship),
      conversation 8, spam 0; negativity ``20 * max(0, -sentiment_score)``;
      reach ``min(15, 2.5 * log10(1 + followers))`` (1k followers: 7.5, 1M: 15);
      waiting ``min(20, 5 * log2(1 + minutes / 15))`` (15 min: 5, 45 min: 10, 105 min: 15);
      private ``+5`` (the case needs a hand-over to a private channel).
    - Spam scores at most 5.
    - Priority: 1 from 75, 2 from 50, 3 from 25, else 4.
    """
    if crisis:
        return 1, round(90.0 + 10.0 * min(max(crisis_probability, 0.0), 1.0), 1)
    negativity = 20.0 * max(0.0, -sentiment_score)
    reach = min(15.0, 2.5 * math.log10(1 + followers)) if followers and followers > 0 else 0.0
    waiting = min(20.0, 5.0 * math.log2(1 + max(waiting_minutes, 0.0) / 15.0))
    score = KIND_BASE.get(kind, 15.0) + negativity + reach + waiting + (5.0 if private_info else 0.0)
    score = min(score, 89.0)
    if kind == "spam":
        score = min(score, 5.0)
    priority = 1 if score >= 75 else 2 if score >= 50 else 3 if score >= 25 else 4
    return priority, round(score, 1)


@dataclass
class BatchTiming:
    """Where the time of the last batch went."""

    n: int = 0
    embed_s: float = 0.0
    total_s: float = 0.0


class Triager:
    """Labels messages with an injected LangChain embedder and a fitted ``TriageModel``."""

    def __init__(self, embedder: Embeddings, model: TriageModel, lexicon: Lexicon | None = None) -> None:
        expected = model.card.get("embedder")
        actual = embedder_name(embedder)
        if expected and expected != actual:
            raise ConfigError(
                f"the triage model was trained with the embedder {expected!r} but the current one is "
                f"{actual!r}: retrain it with `copilot triage train FILE`"
            )
        self.embedder = embedder
        self.model = model
        self.lexicon = lexicon or load_lexicon()
        self.last = BatchTiming()

    @property
    def source(self) -> str:
        """What the model was trained on ("seed", or the team's file)."""
        return str(self.model.card.get("source", "seed"))

    def triage(self, inbound: Inbound) -> Triage:
        """Labels for one message."""
        return self.triage_batch([inbound])[0]

    def triage_batch(self, inbounds: Sequence[Inbound]) -> list[Triage]:
        """Labels for many messages; the texts are embedded in one batch."""
        start = time.perf_counter()
        if not inbounds:
            self.last = BatchTiming()
            return []
        texts = [m.text for m in inbounds]
        features, embed_s = featurize(self.embedder, texts)
        heads = self.model.heads
        kind_p = heads["kind"].proba(features)
        sentiment_p = heads["sentiment"].proba(features)
        crisis_p, category_p, similarity = self._meaning(features)
        private_p = heads["private"].proba(features)
        languages = [detect_language(t) for t in texts]
        categories = heads["crisis_category"].classes
        sentences = self._sentence_meaning(texts)
        reads = (self.model.meaning.read(features.embedding, texts) if self.model.meaning is not None
                 else [None] * len(texts))
        evidences = []
        for i, text in enumerate(texts):
            p_i, sim_i, cat_i, span = float(crisis_p[i]), float(similarity[i]), category_p[i], None
            best = sentences.get(i)
            if best is not None and best[0] > p_i:  # one sentence reads as a crisis more than the whole message
                p_i, sim_i, cat_i, span = best[0], max(sim_i, best[1]), best[2], best[3]
            meaning = decide_crisis(span or text, p_i, sim_i, gate=self.model.crisis_gate,
                                    strong=self.model.crisis_strong_similarity)
            category = categories[int(np.argmax(cat_i))]
            evidences.append(Evidence(self.lexicon.screen(text, languages[i]), languages[i], p_i, sim_i, meaning,
                                      _named(category, span or text), span, reads[i]))
        precision = heads["crisis_precision"]
        p_real = precision.proba(precision_features(features, texts, evidences))[:, precision.classes.index("crisis")]
        calls = [with_meaning(t, decide(t, e, float(p), self.model.crisis_clear_below), e,
                              _named(e.read.category, e.read.span or t) if e.read is not None else None)
                 for t, e, p in zip(texts, evidences, p_real, strict=True)]
        results = [
            self._label(m, heads["kind"].classes, kind_p[i], heads["sentiment"].classes, sentiment_p[i],
                        calls[i], languages[i], heads["private"].classes, private_p[i])
            for i, m in enumerate(inbounds)
        ]
        self.last = BatchTiming(n=len(inbounds), embed_s=embed_s, total_s=time.perf_counter() - start)
        return results

    def _meaning(self, features: Features) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The seed crisis head's P(crisis), its category probabilities, and the similarity to the nearest
        known crisis, one row per text."""
        heads = self.model.heads
        p = heads["crisis"].proba(features)[:, heads["crisis"].classes.index("crisis")]
        prototypes = self.model.prototypes
        if prototypes.size:
            similarity = (features.embedding @ prototypes.T).max(axis=1)
        else:
            similarity = np.ones(len(features), dtype=np.float32)
        return p, heads["crisis_category"].proba(features), similarity

    def _sentence_meaning(self, texts: Sequence[str]) -> dict[int, tuple[float, float, np.ndarray, str]]:
        """For messages of several sentences: the sentence most like a crisis (P, similarity, category
        probabilities, the sentence). A disclosure buried in a long complaint is diluted in the whole
        message's embedding; read alone, it is not."""
        owners: list[int] = []
        parts: list[str] = []
        for i, text in enumerate(texts):
            found = [m.group(0).strip() for m in _SENTENCE.finditer(text)
                     if len(m.group(0).strip()) >= MIN_SENTENCE_CHARS]
            if len(found) >= 2 and len(text) >= SENTENCE_READ_CHARS:
                for sentence in found[:MAX_SENTENCES]:
                    owners.append(i)
                    parts.append(sentence)
        if not parts:
            return {}
        features, _ = featurize(self.embedder, parts)
        p, category_p, sim = self._meaning(features)
        best: dict[int, tuple[float, float, np.ndarray, str]] = {}
        for j, owner in enumerate(owners):
            if owner not in best or p[j] > best[owner][0]:
                best[owner] = (float(p[j]), float(sim[j]), category_p[j], parts[j])
        return best

    def _label(
        self, inbound: Inbound, kind_classes: tuple[str, ...], kind_p: np.ndarray,
        sentiment_classes: tuple[str, ...], sentiment_p: np.ndarray, call: CrisisCall, language: str,
        private_classes: tuple[str, ...], private_p: np.ndarray,
    ) -> Triage:
        text = inbound.text
        crisis = call.level == "crisis"
        flagged = call.level is not None

        sentiments = dict(zip(sentiment_classes, sentiment_p.tolist(), strict=True))
        sentiment = max(sentiments, key=lambda k: sentiments[k])
        sentiment_score = sentiments.get("positive", 0.0) - sentiments.get("negative", 0.0)
        if flagged and sentiment_score > -0.3:
            sentiment, sentiment_score = "negative", min(sentiment_score, -0.3)

        kinds = dict(zip(kind_classes, kind_p.tolist(), strict=True))
        if crisis:
            kind, confidence = "crisis", max(call.p_real, 0.5)
        else:
            kinds.pop("crisis", None)
            if flagged:
                kinds.pop("spam", None)  # a possible crisis is never filed away as spam
            total = sum(kinds.values()) or 1.0
            kind = max(kinds, key=lambda k: kinds[k])
            if kind == "spam" and kinds["spam"] / total < SPAM_FLOOR:
                kind = max((k for k in kinds if k != "spam"), key=lambda k: kinds[k])
            confidence = kinds[kind] / total

        found = pii_kinds(text)
        p_private = float(dict(zip(private_classes, private_p.tolist(), strict=True)).get("private", 0.0))
        cue = private_cue(text)
        if found:
            private_info, private_reason = True, "personal data in the message: " + ", ".join(found)
        elif p_private >= PRIVATE_THRESHOLD or (cue and p_private >= PRIVATE_CUE_THRESHOLD):
            private_info, private_reason = True, f"account-specific: {cue or 'needs account details'}"
        else:
            private_info, private_reason = False, None

        priority, score = priority_of(
            kind, sentiment_score, crisis=crisis, crisis_probability=call.p_real,
            followers=inbound.author_followers, waiting_minutes=inbound.waiting_minutes, private_info=private_info,
        )
        if call.level == "possible":  # first in the inbox after the crises: a person decides
            priority, score = 1, max(score, 89.0)
        return Triage(
            kind=kind, sentiment=sentiment, sentiment_score=round(float(sentiment_score), 3), priority=priority,
            priority_score=score, crisis=crisis, crisis_reason=call.reason if flagged else None,
            private_info=private_info, private_reason=private_reason, language=language,
            confidence=round(float(confidence), 3), crisis_level=call.level,
            crisis_span=call.span if flagged or call.note else None, crisis_note=call.note,
        )


def _named(category: str, text: str) -> str:
    """The crisis head's category in the screen's words ("danger: fire" rather than "danger")."""
    if category != "danger":
        return category
    detail = safety_detail(text)
    return {"fire/overheating": "danger: fire", "electric shock": "danger: electric",
            "gas/carbon monoxide": "danger: gas"}.get(detail or "", "danger: medical")


def decide_crisis(text: str, p_crisis: float, similarity: float, *, gate: float, strong: float) -> bool:
    """Whether a message is a crisis.

    The classifier's ``p_crisis`` must reach ``CRISIS_THRESHOLD`` and the message must be at least ``gate``
    similar to a known crisis; or, with ``p_crisis`` of at least ``EXPLICIT_FLOOR``, be ``strong``-ly similar
    to one. Either way a figure of speech ("killing me lol") is let go unless ``p_crisis`` reaches
    ``HYPERBOLE_OVERRIDE``. A plain statement of self-harm needs only ``EXPLICIT_FLOOR``.
    """
    if explicit_self_harm(text) and p_crisis >= EXPLICIT_FLOOR:
        return True
    classifier = p_crisis >= CRISIS_THRESHOLD and similarity >= gate
    near_twin = p_crisis >= EXPLICIT_FLOOR and similarity >= strong
    if not (classifier or near_twin):
        return False
    return p_crisis >= HYPERBOLE_OVERRIDE or not hyperbole_cues(text)


def triage_dir(settings: Settings) -> Path:
    """Where fitted triage models live."""
    return settings.data_dir / "triage"


def build_triager(settings: Settings, embedder: Embeddings | None = None) -> Triager:
    """The team's trained triager when ``<data_dir>/triage/team.npz`` exists, else the seed triager."""
    if embedder is None:
        from copilot.models.factory import build_embedder

        embedder = build_embedder(settings)
    folder = triage_dir(settings)
    lexicon = load_lexicon(settings.crisis_screen)
    if (folder / f"{TEAM_STEM}.npz").exists():
        return Triager(embedder, TriageModel.load(folder, TEAM_STEM), lexicon)
    return Triager(embedder, load_seed_model(folder, embedder), lexicon)
