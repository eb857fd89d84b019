"""The crisis screen: recall-first phrase matching over every message, in every supported language.

The screen reads the message as a person would scan it: markup blanked out, lower-cased, accents
removed, apostrophes straightened. Idioms, ordinary urgent problems and titles are blanked first (and
remembered, as the reason a message may be cleared); then every category's strong and weak phrases run.
The phrases live in ``copilot/data/crisis_screen.yaml``; a team adds its own in a file of the same shape
(``COPILOT_CRISIS_SCREEN``). Offsets are kept, so each hit quotes the customer's own words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from copilot.errors import ConfigError

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it")
STRENGTHS: tuple[str, ...] = ("strong", "weak")
CLEAR_KINDS: tuple[str, ...] = ("idiom", "urgent", "title")  # urgent: everyday problems and mentions
_FOLDED_SCRIPTS_END = 0x0530  # Latin, Greek, Cyrillic end before Armenian; Latin and Greek Extended at 1E00-1FFF
SPAN_CONTEXT = 40  # characters of the customer's words kept either side of a hit, up to a sentence end

_MARKUP = re.compile(r"<[^<>]{0,400}>|&[a-z]{2,8};|&#\d{1,6};|\[/?[a-z]{1,10}\]", re.IGNORECASE)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
                              "\u201c": '"', "\u201d": '"', "\u00a0": " "})


@dataclass(frozen=True)
class Hit:
    """One screen phrase that fired: its category, strength, and the customer's words around it."""

    category: str
    strength: str  # "strong" | "weak"
    language: str  # the language of the phrase ("any" for language-neutral ones)
    start: int
    end: int
    span: str


@dataclass(frozen=True)
class Screened:
    """What the screen found in one message: crisis hits, and the everyday readings it blanked out."""

    hits: tuple[Hit, ...]
    cleared_by: tuple[tuple[str, str], ...]  # (clear kind, the words), e.g. ("idiom", "to die for")

    @property
    def fired(self) -> bool:
        return bool(self.hits)

    @property
    def strong(self) -> bool:
        return any(h.strength == "strong" for h in self.hits)

    def best(self) -> Hit | None:
        """The hit that names the message's category: strong before weak, then the first in the text."""
        if not self.hits:
            return None
        return min(self.hits, key=lambda h: (h.strength != "strong", h.start))


def fold(text: str) -> str:
    """Lower-case, accents removed, apostrophes straightened, markup blanked; same length as ``text``.

    Keeping the length lets a match's offsets quote the original text.
    """
    blanked = _MARKUP.sub(lambda m: " " * len(m.group()), text.translate(_APOSTROPHES))
    out = []
    for ch in blanked:
        lowered = ch.lower()
        if len(lowered) != 1:  # "İ".lower() is two code points: keep the length
            lowered = ch
        # Accents come off Latin, Greek and Cyrillic letters only: in Hangul, kana or Devanagari the first
        # code point of the decomposition is not the letter (a Korean syllable would become its first jamo).
        if ord(lowered) < _FOLDED_SCRIPTS_END or 0x1E00 <= ord(lowered) <= 0x1FFF:
            lowered = unicodedata.normalize("NFKD", lowered)[:1] or lowered
        out.append(lowered)
    return "".join(out)


@dataclass(frozen=True)
class _Pattern:
    category: str
    strength: str
    language: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class Lexicon:
    """Compiled screen phrases and clearing phrases."""

    patterns: tuple[_Pattern, ...]
    clears: tuple[tuple[str, str, re.Pattern[str]], ...]  # (kind, language, regex)

    @property
    def categories(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for p in self.patterns:
            seen.setdefault(p.category, None)
        return tuple(seen)

    def screen(self, text: str, language: str = "en") -> Screened:
        """Every crisis phrase in ``text`` once the idioms, ordinary problems and titles are blanked.

        Strong phrases of every language run on every message (a message's language is a guess); weak ones
        of English on English messages, and of every language on the others.
        A weak hit inside a short quoted, capitalised phrase (a title: 'Death on the Nile') is dropped.
        """
        folded = fold(text)
        cleared: list[tuple[str, str]] = []
        chars = list(folded)
        for kind, _, regex in self.clears:
            for m in regex.finditer(folded):
                if m.end() > m.start():
                    cleared.append((kind, text[m.start():m.end()].strip()))
                    chars[m.start():m.end()] = " " * (m.end() - m.start())
        masked = "".join(chars)
        titles = _quoted_titles(text, folded)
        # English messages get English weak phrases only ("brand" is German for fire); any other message gets
        # the weak phrases of all six languages, since a short message's language is a guess.
        every_language = language != "en"
        hits: list[Hit] = []
        seen: set[tuple[str, int]] = set()
        for p in self.patterns:
            if p.strength == "weak" and not (every_language or p.language in (language, "any")):
                continue
            for m in p.regex.finditer(masked):
                if m.end() <= m.start() or (p.category, m.start()) in seen:
                    continue
                if p.strength == "weak" and any(a <= m.start() and m.end() <= b for a, b in titles):
                    cleared.append(("title", text[m.start():m.end()].strip()))
                    continue
                seen.add((p.category, m.start()))
                hits.append(Hit(p.category, p.strength, p.language, m.start(), m.end(),
                                evidence(text, m.start(), m.end())))
        return Screened(hits=tuple(hits), cleared_by=tuple(dict.fromkeys(cleared)))


_QUOTED = re.compile(r"""(?:(?<=^)|(?<=[\s(\[:,]))(['"«])([^'"«»\n]{2,60})(['"»])(?=$|[\s).,!?:;\]])""")


def _quoted_titles(text: str, folded: str) -> list[tuple[int, int]]:
    """Offsets of short quoted phrases that start with a capital letter, as titles are written."""
    spans = []
    for m in _QUOTED.finditer(folded):
        inner = text[m.start(2):m.end(2)].strip()
        if inner and inner[0].isupper() and len(inner.split()) <= 8:
            spans.append((m.start(2), m.end(2)))
    return spans


def evidence(text: str, start: int, end: int) -> str:
    """The customer's words around a match, trimmed to the sentence and to ``SPAN_CONTEXT`` either side."""
    left = max(0, start - SPAN_CONTEXT)
    for stop in (".", "!", "?", "\n"):
        cut = text.rfind(stop, left, start)
        if cut >= 0:
            left = max(left, cut + 1)
    right = min(len(text), end + SPAN_CONTEXT)
    for stop in (".", "!", "?", "\n"):
        cut = text.find(stop, end, right)
        if cut >= 0:
            right = min(right, cut + 1)
    span = _MARKUP.sub(" ", text[left:right])
    span = re.sub(r"\s+", " ", span).strip()
    return (("…" if left > 0 and not text[left - 1] in ".!?\n" else "") + span
            + ("…" if right < len(text) and text[right - 1] not in ".!?\n" else ""))


def _compile(source: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(source)
    except re.error as exc:
        raise ConfigError(f"{where}: bad pattern {source!r} ({exc})") from None


def _parse(data: Any, where: str) -> tuple[list[_Pattern], list[tuple[str, str, re.Pattern[str]]]]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with 'categories' and 'clear'")
    patterns: list[_Pattern] = []
    for category, by_strength in (data.get("categories") or {}).items():
        if not isinstance(by_strength, dict):
            raise ConfigError(f"{where}: category {category!r} needs 'strong' and/or 'weak' lists")
        for strength, by_language in by_strength.items():
            if strength not in STRENGTHS:
                raise ConfigError(f"{where}: {category!r} has {strength!r}; use one of {', '.join(STRENGTHS)}")
            for language, sources in (by_language or {}).items():
                for source in _strings(sources, f"{where}: {category}/{strength}/{language}"):
                    patterns.append(_Pattern(str(category), strength, str(language),
                                             _compile(source, f"{where}: {category}/{strength}/{language}")))
    clears: list[tuple[str, str, re.Pattern[str]]] = []
    for kind, by_language in (data.get("clear") or {}).items():
        if kind not in CLEAR_KINDS:
            raise ConfigError(f"{where}: clear kind {kind!r}; use one of {', '.join(CLEAR_KINDS)}")
        for language, sources in (by_language or {}).items():
            for source in _strings(sources, f"{where}: clear/{kind}/{language}"):
                clears.append((str(kind), str(language), _compile(source, f"{where}: clear/{kind}/{language}")))
    return patterns, clears


def _strings(value: Any, where: str) -> Iterable[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of pattern strings")
    return value


@lru_cache(maxsize=8)
def load_lexicon(extra: str | None = None) -> Lexicon:
    """The shipped lexicon, plus a team's own file of the same shape when ``extra`` names one."""
    shipped = resources.files("copilot") / "data" / "crisis_screen.yaml"
    sources: list[tuple[str, str]] = [(shipped.read_text(encoding="utf-8"), "crisis_screen.yaml")]
    if extra:
        path = Path(extra)
        try:
            sources.append((path.read_text(encoding="utf-8"), str(path)))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the crisis screen file ({exc.strerror})") from None
    patterns: list[_Pattern] = []
    clears: list[tuple[str, str, re.Pattern[str]]] = []
    for text, where in sources:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: invalid YAML ({exc})") from None
        more_patterns, more_clears = _parse(data, where)
        patterns.extend(more_patterns)
        clears.extend(more_clears)
    return Lexicon(patterns=_merged_patterns(patterns), clears=_merged_clears(clears))


def _merged_patterns(patterns: list[_Pattern]) -> tuple[_Pattern, ...]:
    """One alternation per category, strength and language: a message is scanned once per group, not once
    per phrase (each phrase was compiled alone first, so an error still names it)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for p in patterns:
        groups.setdefault((p.category, p.strength, p.language), []).append(p.regex.pattern)
    return tuple(_Pattern(c, s, lang, re.compile("|".join(f"(?:{x})" for x in sources)))
                 for (c, s, lang), sources in groups.items())


def _merged_clears(clears: list[tuple[str, str, re.Pattern[str]]]) -> tuple[tuple[str, str, re.Pattern[str]], ...]:
    groups: dict[tuple[str, str], list[str]] = {}
    for kind, language, regex in clears:
        groups.setdefault((kind, language), []).append(regex.pattern)
    return tuple((kind, lang, re.compile("|".join(f"(?:{x})" for x in sources)))
                 for (kind, lang), sources in groups.items())
