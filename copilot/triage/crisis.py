"""The crisis cascade: a recall-first screen, then a precision stage that clears only with high confidence.

1. Screen (``screen.py``): multilingual phrases, strong and weak, over every message; plus the meaning of
   the message (the seed model's crisis head and its similarity to known crises), which catches English
   paraphrases the phrases miss.
2. Precision: a logistic head over the embedding and the screen's cues, fitted on screened messages (the
   shipped hand-written crises and near-misses, real at-risk Reddit posts graded on the Columbia scale, and
   ordinary banking questions), gives P(a real crisis | screened).
3. Levels. ``crisis`` (escalated): a strong phrase with no figure-of-speech cue beside it, or any screened
   message the precision stage is sure about. ``possible`` (first in the inbox; a person decides): every
   other screened message, unless the precision stage clears it with high confidence, and always when the
   message's language is not one the screen knows well. A cleared message keeps a note saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from copilot.triage.features import hyperbole_cues
from copilot.triage.meaning import (
    DOUBT_BELOW,
    ESCALATE_FROM,
    FIGURE_DOUBT_BELOW,
    FIGURE_FLAG_AT,
    FLAG_AT,
    MeaningRead,
)
from copilot.triage.screen import SUPPORTED_LANGUAGES, Screened

# P(real | screened) at or above this makes a weak or meaning-only hit a crisis.
PROMOTE = 0.97
# A meaning-only hit whose alarming words the screen read as an idiom, an everyday mention or a title is
# cleared below this.
EXPLAINED_BELOW = 0.3
# Laughter or a joking emoji beside a strong phrase ("gonna kill myself if this update fails again lol"):
# not waved away, but a person reads it before anything is sent.
_JOKE = re.compile(r"\b(?:lol+|lmao+|lmfao|rofl|a?hah(?:ah)*a?|hehe+|jk|kidding|joking|ja(?:ja)+|je(?:je)+|k{4,}|"
                   r"rs(?:rs)+|mdr|ptdr|xd+|broma|blague|scherzo|brincadeira)\b|😂|🤣|😆|😹|😅|🙃|😜|😝",
                   re.IGNORECASE)
# Other playful markers: they do not soften a plain statement of danger, but raise the meaning screen's bar.
_PLAYFUL = re.compile(r"💀|🙄|🙈|🤯|💸|\b(?:omg|smh|xd)\b", re.IGNORECASE)
# Said in earnest: the writer rules out the joke reading.
_EARNEST = re.compile(r"\b(?:not\s+(?:a\s+)?jok\w*|no\s+joke|not\s+kidding|i\s+mean\s+it|i'?m\s+serious|for\s+real|"
                      r"seriously|kein\s+witz|no\s+es\s+broma|pas\s+une\s+blague|non\s+e\s+uno\s+scherzo|"
                      r"nao\s+e\s+brincadeira|to\s+falando\s+serio)\b", re.IGNORECASE)

CUE_NAMES: tuple[str, ...] = (
    "strong", "weak_only", "categories", "joke", "earnest", "cleared", "hyperbole", "question", "first_person",
    "supported_language", "length",
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|im|me|my|myself|mine|yo|me|mi|je|moi|mon|ma|ich|mich|mir|mein|eu|meu|minha|io)\b",
                           re.IGNORECASE)


@dataclass(frozen=True)
class CrisisCall:
    """The cascade's verdict on one message."""

    level: str | None  # "crisis" | "possible" | None
    reason: str | None  # the category
    span: str | None  # the customer's words that fired
    note: str | None  # why possible, or why cleared
    p_real: float  # the precision stage's P(a real crisis | screened); 0 when nothing fired


@dataclass(frozen=True)
class Evidence:
    """Everything the cascade knows about one message before it decides."""

    screened: Screened
    language: str
    p_meaning: float  # the seed crisis head's probability
    similarity: float  # to the nearest known crisis
    meaning_fired: bool  # the classifier rule (``decide_crisis``) fired on its own
    meaning_category: str | None
    meaning_span: str | None = None  # the sentence that read as a crisis, when one sentence did
    read: MeaningRead | None = None  # the multilingual meaning screen's reading (``meaning.py``)


def cues(text: str, evidence: Evidence) -> list[float]:
    """The screen's cues as numbers for the precision head (see ``CUE_NAMES``)."""
    s = evidence.screened
    span_text = " ".join(h.span for h in s.hits) or text
    return [
        1.0 if s.strong else 0.0,
        1.0 if s.fired and not s.strong else 0.0,
        min(len({h.category for h in s.hits}), 3) / 3.0,
        1.0 if _JOKE.search(text) else 0.0,
        1.0 if _EARNEST.search(text) else 0.0,
        1.0 if s.cleared_by else 0.0,
        1.0 if hyperbole_cues(text) else 0.0,
        1.0 if "?" in span_text else 0.0,
        1.0 if _FIRST_PERSON.search(span_text) else 0.0,
        1.0 if evidence.language in SUPPORTED_LANGUAGES else 0.0,
        min(len(text) / 600.0, 1.0),
    ]


def screen_fired(evidence: Evidence) -> bool:
    """Whether the screen stops this message for a second look."""
    return evidence.screened.fired or evidence.meaning_fired


def decide(text: str, evidence: Evidence, p_real: float, clear_below: float) -> CrisisCall:
    """The level, category, evidence span and note for one screened (or unscreened) message."""
    s = evidence.screened
    if not screen_fired(evidence):
        if s.cleared_by:
            kind, words = s.cleared_by[0]
            return CrisisCall(None, None, None, f"not screened: “{words}” reads as {_CLEAR_WORDS[kind]}", 0.0)
        return CrisisCall(None, None, None, None, 0.0)
    best = s.best()
    if best is not None:
        reason, span = best.category, best.span
    else:
        reason, span = evidence.meaning_category or "self-harm", evidence.meaning_span or _first_sentence(text)
    joke = bool(_JOKE.search(text)) and not _EARNEST.search(text)
    supported = evidence.language in SUPPORTED_LANGUAGES
    if s.strong and not joke:
        if supported:
            return CrisisCall("crisis", reason, span, None, p_real)
        return CrisisCall("possible", reason, span,
                          f"screened in a language the screen does not know well ({evidence.language}): "
                          "a person decides", p_real)
    if s.strong:
        return CrisisCall("possible", reason, span, "a plain statement of danger beside a joke: a person decides",
                          p_real)
    if supported and p_real >= PROMOTE and not joke:
        return CrisisCall("crisis", reason, span, None, p_real)
    # A meaning-only hit on a message whose alarming words were read as an idiom, everyday mention or title is
    # explained away unless the precision stage leans towards a crisis.
    explained = best is None and bool(s.cleared_by) and p_real < EXPLAINED_BELOW
    if supported and (p_real < clear_below or explained):
        why = f"cleared (P {p_real:.2f}): reads as an everyday message"
        if s.cleared_by:
            kind, words = s.cleared_by[0]
            why = f"cleared (P {p_real:.2f}): “{words}” reads as {_CLEAR_WORDS[kind]}"
        return CrisisCall(None, None, span, f"screened for {reason} on “{span}”; {why}", p_real)
    source = "its words" if best is not None else "its meaning"
    return CrisisCall("possible", reason, span, f"screened on {source} (P {p_real:.2f}): a person decides",
                      p_real)


def figure_of_speech(text: str, screened: Screened) -> bool:
    """Whether the message carries a cue that its words of harm are a figure of speech: laughter or a joking
    emoji (not ruled out by "not joking"), an English hyperbole, or an idiom, everyday mention or title the
    screen blanked."""
    if _EARNEST.search(text):
        return False
    return bool(_JOKE.search(text) or _PLAYFUL.search(text) or hyperbole_cues(text) or screened.cleared_by)


def with_meaning(text: str, call: CrisisCall, evidence: Evidence, category: str | None = None) -> CrisisCall:
    """The cascade's call with the meaning screen's reading applied (see ``copilot.triage.meaning``).

    A message nothing else stopped is ``possible`` when the meaning screen reads it as a crisis (a message with
    a figure-of-speech cue needs ``FIGURE_FLAG_AT``). In the six languages a phrase hit it reads as everyday
    is cleared when only possible (below ``DOUBT_BELOW``), or beside a figure-of-speech cue (below
    ``FIGURE_DOUBT_BELOW``, even a listed phrase); a listed phrase is escalated only when the meaning screen
    gives it at least ``ESCALATE_FROM`` (else possible: a person decides, never cleared without such a cue).
    Elsewhere the phrase screen is conservative: its call stands.
    ``category`` is the meaning screen's category in the screen's words ("danger: gas").
    """
    read = evidence.read
    if read is None:
        return call
    supported = evidence.language in SUPPORTED_LANGUAGES
    figure = supported and figure_of_speech(text, evidence.screened)
    if call.level is None:
        if read.p < (FIGURE_FLAG_AT if figure else FLAG_AT):
            return call
        return CrisisCall("possible", category or read.category, read.span or _first_sentence(text),
                          f"screened on its meaning (P {read.p:.2f} like the crises the screen has learnt): "
                          "a person decides", max(call.p_real, read.p))
    if not supported:
        return call
    if read.p < (FIGURE_DOUBT_BELOW if figure else DOUBT_BELOW) and (call.level == "possible" or figure):
        why = "beside a figure of speech, " if figure else ""
        return CrisisCall(None, None, call.span,
                          f"screened for {call.reason} on “{call.span}”; cleared: {why}the message reads as "
                          f"everyday (P {read.p:.2f})", call.p_real)
    if call.level == "crisis" and read.p < ESCALATE_FROM:
        return CrisisCall("possible", call.reason, call.span,
                          f"a listed phrase fired, but the message reads as everyday (P {read.p:.2f}): "
                          "a person decides", call.p_real)
    return call


_CLEAR_WORDS = {"idiom": "a figure of speech", "urgent": "an everyday urgent problem", "title": "a title or name"}
_SENTENCE = re.compile(r"[^.!?\n]{3,}[.!?]?")


def _first_sentence(text: str) -> str:
    match = _SENTENCE.search(text)
    return (match.group(0).strip() if match else text.strip())[:160]


def cue_matrix(texts: list[str], evidences: list[Evidence]) -> np.ndarray:
    """Cues for many messages as a float32 matrix."""
    if not texts:
        return np.zeros((0, len(CUE_NAMES)), dtype=np.float32)
    return np.asarray([cues(t, e) for t, e in zip(texts, evidences, strict=True)], dtype=np.float32)
