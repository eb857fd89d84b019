"""What an incident says: the suggested holding reply and follow-up (grounded in an announcement when one
matches), which affected cases must get their own reply instead, and the approved text fitted to each case.

Nothing here is sent: a reviewer reads and edits the texts per language and approves them once
(``IncidentDesk.approve``); this module only proposes them and personalises the approved ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from copilot.compose import PhraseBook
from copilot.config import ChannelProfile
from copilot.guardrails import sentences
from copilot.pii import find_pii
from copilot.queue.records import crisis_level_of
from copilot.triage.screen import fold
from copilot.types import Entry

# A demand the incident's reply does not answer: money back, compensation, a chargeback (folded: no accents).
_REFUND = re.compile(
    r"\b(refund|money back|compensat|reimburs|chargeback|credit my|reembols|devolu[cç]|devuelv|indemni|rembours|"
    r"dedommag|erstatt|geld zuruck|entschadig|gutschrift|estorno|ressarc|rimbors|risarc)", re.IGNORECASE)
_RESOLVED = re.compile(
    r"\b(resolved|fixed|restored|back to normal|solucionad|resuelt|restablecid|resolu|retabli|regle|behoben|"
    r"wiederhergestellt|geloest|gelost|resolvid|restabelecid|risolt|ripristinat)", re.IGNORECASE)
_STATUS_LINE = re.compile(r"^\s*(status|estado|statut|etat|stato)\s*:", re.IGNORECASE)
OFF_TOPIC_WORDS = 6  # a sentence this long, unlike the incident, is a second problem
OFF_TOPIC_BELOW = 0.3  # its cosine to the incident's centroid


@dataclass(frozen=True)
class Suggestion:
    """A text per language for a reviewer to approve, and the announcement it stands on."""

    texts: dict[str, str]
    announcement_id: str | None
    notes: tuple[str, ...] = ()  # what a reviewer should know (a translation that failed, no announcement)


def left_out_reason(text: str, triage: dict[str, object], *, off_topic: str | None = None) -> str | None:
    """Why a case about the incident still needs its own reply, or None when the incident's reply fits it."""
    level = crisis_level_of(dict(triage))
    if level == "crisis":
        return "a crisis: a person answers it"
    if level == "possible":
        return "a possible crisis: a person answers it"
    if triage.get("kind") == "spam":
        return "spam: no reply"
    if triage.get("private_info") or find_pii(text):
        return "personal data in the message: it needs its own reply"
    if _REFUND.search(fold(text)):
        return "asks for a refund or compensation: it needs its own reply"
    if off_topic:
        return f"also says something the incident does not cover: \u201c{off_topic[:120]}\u201d"
    return None


def candidate_sentences(text: str) -> list[str]:
    """The sentences after the first that could be a second problem (long enough to say something)."""
    parts = sentences(" ".join(text.split()))
    return [s for s in parts[1:] if len(s.split()) >= OFF_TOPIC_WORDS]


def is_resolution(entry: Entry) -> bool:
    """Whether an announcement says the problem is over (its title, or a "Status:" line)."""
    if _RESOLVED.search(fold(entry.title)):
        return True
    return any(_STATUS_LINE.match(line) and _RESOLVED.search(fold(line)) for line in entry.body.splitlines())


def _updated(entry: Entry) -> date | None:
    try:
        return date.fromisoformat(str(entry.updated)[:10]) if entry.updated else None
    except ValueError:
        return None


def current_announcements(entries: Sequence[Entry], since: datetime) -> list[Entry]:
    """Announcements updated on or after the day before ``since`` (older ones are about older incidents)."""
    floor = since.date().toordinal() - 1
    return [e for e in entries if e.kind == "announcement" and (d := _updated(e)) is not None
            and d.toordinal() >= floor]


def _facts(entry: Entry, *, resolution: bool, limit: int = 2) -> str:
    """The announcement's own words: its status line for a resolution, else its first sentences."""
    lines = [line.strip() for line in entry.body.splitlines() if line.strip()]
    if entry.question:
        lines = [line for line in lines if line != entry.question]
    if lines and lines[0].endswith("?"):  # the customer's question the entry answers, not a fact
        lines = lines[1:]
    if resolution:
        status = [line for line in lines if _STATUS_LINE.match(line)]
        if status:
            return " ".join(sentences(re.sub(_STATUS_LINE, "", status[0]).strip())[:limit])
    return " ".join(sentences(" ".join(lines[:1]))[:limit])


def suggest(phase: str, languages: Sequence[str], phrases: PhraseBook, *, announcement: Entry | None,
            translate: object | None = None, kb_language: str = "en") -> Suggestion:
    """The holding reply (``phase`` "reply") or the follow-up, in each language the affected cases write in.

    The fixed frame comes from the phrase book in each language; the announcement's facts are quoted in the
    knowledge base's language and translated for the others by ``translate(text, language, source)`` (the
    drafter's checked translation: a string, or the list of its problems). A failed translation leaves
    that language with the frame alone and a note.
    """
    resolution = phase == "followup"
    facts = _facts(announcement, resolution=resolution) if announcement is not None else ""
    notes: list[str] = [] if announcement is not None else [
        "no announcement matches this incident: the text says only what the team knows"]
    texts: dict[str, str] = {}
    for language in sorted(set(languages) | {kb_language}):
        lang = phrases.language(language)
        head, tail = (("incident_fixed", "incident_fixed_offer") if resolution else
                      ("incident_reply", "incident_update"))
        said = facts
        if facts and lang != kb_language:
            out = translate(facts, lang, kb_language) if callable(translate) else ["no translator"]
            if isinstance(out, str):
                said = out
            else:
                said = ""
                notes.append(f"{lang}: the announcement's facts were not translated ({'; '.join(out)}); "
                             f"the text has the frame alone")
        parts = [phrases.get(lang, head), said, phrases.get(lang, tail)]
        texts[lang] = " ".join(p.strip() for p in parts if p and p.strip())
    return Suggestion(texts, announcement.id if announcement is not None else None, tuple(notes))


def fit_keeping_close(text: str, limit: int) -> str:
    """``text`` in ``limit`` characters by whole sentences: the first and the last (the promise to come back)
    stay, the middle ones are kept while they fit; a text whose first and last alone are too long keeps the
    leading sentences that fit."""
    if len(text) <= limit:
        return text
    parts = sentences(text)
    if len(parts) < 2:
        return text[: max(limit - 1, 1)].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"
    head, middle, last = parts[0], parts[1:-1], parts[-1]
    if len(head) + 1 + len(last) > limit:
        out = ""
        for sentence in parts:
            if len(f"{out} {sentence}".strip()) > limit:
                break
            out = f"{out} {sentence}".strip()
        return out or head[: max(limit - 1, 1)].rsplit(" ", 1)[0] + "\u2026"
    kept = [head]
    for sentence in middle:
        if len(" ".join([*kept, sentence, last])) <= limit:
            kept.append(sentence)
    return " ".join([*kept, last])


def personalise(texts: dict[str, str], *, language: str, author: str | None,
                profile: ChannelProfile, phrases: PhraseBook, signature: str) -> str | None:
    """The approved text for one case: its language, its @handle or greeting, its channel's length; None when
    no approved text is in its language (the case gets its own reply)."""
    text = texts.get(language)
    if not text:
        return None
    lang = phrases.language(language)
    name = (author or "").lstrip("@").split()[0] if author and author.strip() else ""
    handle = f"@{name}" if profile.use_handle and name else ""
    greeting = f"{phrases.get(lang, 'greeting')} {name}," if profile.greeting and name and not handle else (
        f"{phrases.get(lang, 'greeting')}," if profile.greeting and not handle else "")
    closing = f"\n\n{signature}" if profile.sign_off and signature else ""
    room = profile.max_chars - len(handle) - (1 if handle else 0) - len(greeting) - (2 if greeting else 0) - len(
        closing)
    body = fit_keeping_close(text.strip(), max(room, 40))
    out = f"{handle} {body}" if handle else body
    if greeting:
        out = f"{greeting}\n\n{out}"
    return out + closing
