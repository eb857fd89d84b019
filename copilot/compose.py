"""The model's narrow job: choose the facts first, let the model write only the human part around them.

A small model asked for a whole reply writes letter templates, restates the problem, dumps a table or
promises what no passage says. So the facts are chosen here, deterministically, from the passage the
retriever found: the line for the situation the customer named ("solid amber"), then the general steps,
never a step they say they already tried, always whole sentences and in the passage's order. The model
writes one or two opening sentences (acknowledgement, ownership) and the rest is assembled from the
passage and the phrase book of the customer's language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from copilot.guardrails import FORBIDDEN, PROMISE_WORDS, sentences, whole_sentences
from copilot.types import Passage

PHRASES_FILE = Path(__file__).parent / "data" / "reply_phrases.yaml"
LANGUAGES = ("en", "es", "fr", "de", "pt", "it")
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese",
                  "it": "Italian", "nl": "Dutch", "pl": "Polish", "sv": "Swedish", "da": "Danish",
                  "no": "Norwegian", "tr": "Turkish", "ro": "Romanian", "id": "Indonesian", "cs": "Czech"}
PHRASE_KEYS = ("greeting", "ack_words", "lead", "lead_workaround", "offer", "offer_fix", "offer_short", "private",
               "no_answer", "ack_complaint", "ack_question", "ack_feedback", "ack_praise", "ack_other",
               "praise_close", "feedback_close", "crisis", "guide_language", "incident_reply", "incident_update",
               "incident_fixed", "incident_fixed_offer")

_WORD = re.compile(r"[^\W_]+")
_BULLET = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
_LABEL = re.compile(r"^([^:.;!?]{2,48}):\s+(\S.*)$")
_CONDITION = re.compile(r"^(?:if|when|still)\s+([^,:?]{3,70})[,:?]\s", re.IGNORECASE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}")
# Words that carry no situation: a shared "the" or "my" says nothing about which step fits.
_STOP = frozenset(["a", "an", "the", "and", "or", "but", "if", "then", "so", "to", "of", "in", "on", "at", "by", "for", "with", "from", "into", "onto", "over", "under", "up", "down", "out", "off", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "done", "doing", "have", "has", "had", "having", "i", "me", "my", "mine", "we", "us", "our", "you", "your", "it", "its", "this", "that", "these", "those", "there", "here", "what", "which", "who", "when", "where", "why", "how", "not", "no", "yes", "can", "could", "will", "would", "should", "may", "might", "must", "just", "also", "still", "again", "already", "very", "really", "too", "any", "some", "all", "every", "each", "more", "most", "other", "please", "thanks", "thank", "hi", "hello", "hey", "get", "got", "make", "made", "go", "going", "gone", "keep", "kept", "lumio", "app", "one", "two"])
# Different words for the same attempt: a customer who "rebooted" it has done the "unplug it" step.
_CONCEPTS = {
    "restart": ("restart", "restarted", "restarting", "reboot", "rebooted", "rebooting", "unplug", "unplugged",
                "replug", "replugged", "plug", "plugged", "power", "cycle", "cycled", "reiniciar", "reinicie",
                "reinicié", "redémarré", "redémarrer", "neu", "neugestartet", "riavviato", "reiniciei"),
    "reset": ("reset", "resetting", "factory"),
    "reinstall": ("reinstall", "reinstalled", "uninstall", "uninstalled", "reinstalling"),
    "update": ("update", "updated", "updating", "upgrade", "upgraded", "firmware"),
    "relogin": ("logout", "login", "relogged", "signed", "sign", "log", "logged"),
    "cache": ("cache", "clear", "cleared"),
    "reconnect": ("reconnect", "reconnected", "repair", "repaired", "re-pair", "pair", "paired", "re-add"),
    "router": ("router", "modem", "wifi", "wi-fi"),
}
_CONCEPT_OF = {word: concept for concept, words in _CONCEPTS.items() for word in words}
_ACTIONS = frozenset({"restart", "reset", "reinstall", "update", "relogin", "cache", "reconnect"})
_TRIED = re.compile(
    r"\b(?:already|tried|tries|i've|i have|i did|we've|did that|done that|even|ya|he probado|intenté|déjà|"
    r"j'ai essayé|schon|bereits|versucht|già|ho provato|já|tentei)\b", re.IGNORECASE)
# A letter template or a placeholder is never a reply on social media (or anywhere).
TEMPLATE_MARKS = re.compile(
    r"\[[^\]]{2,40}\]|\{\{?[^}]{1,40}\}\}?|<[A-Za-z][^>]{0,40}>|\bdear\b|\bhope (?:this|my) (?:message|email) "
    r"finds you|\bi am writing to\b|\b(?:best|kind|warm) regards\b|\bsincerely\b|\byours (?:truly|faithfully)\b|"
    r"customer'?s name|your name here|\bto whom it may concern\b", re.IGNORECASE)
# What only the team can promise: a fix date, a refund, "we're working on it".
COMMITMENTS = re.compile(
    r"\bwe(?:'re| are) (?:working|looking into)\b|\bwill be (?:fixed|resolved|available|released|back)\b|"
    r"\b(?:fix|solve|resolve|sort) (?:it|this) (?:soon|today|tomorrow|shortly)\b|\bavailable soon\b|"
    r"\bwithin \d+ (?:hours?|days?|minutes?)\b|\b(?:by|on) (?:monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday|tomorrow)\b|\bnext (?:week|update|release)\b|\bguarantee\b", re.IGNORECASE)

CONFUSED = re.compile(r"\b(?:didn'?t|did not|don'?t|do not) (?:quite )?understand|not (?:quite )?sure what you(?:'re| are)? "
                      r"(?:mean|trying|asking|saying|referring|want)|\bunclear\b|what do you mean|"
                      r"could you (?:please )?(?:clarify|provide|share|tell)|can you (?:please )?(?:provide|clarify)|"
                      r"\bI (?:can'?t|cannot|am unable to)\b|(?:can'?t|cannot|unable to) (?:provide|write|help|continue|complete)|"
                      r"as requested|\b(?:an|any|the|my) opening\b|\bopening (?:line|sentence)|didn'?t provide|"
                      r"did not provide|more information",
                      re.IGNORECASE)

# The same refusals and confusion in the other phrase-book languages: a 1.5B model opens Spanish and
# French replies with "Lo siento, pero no puedo ayudarte con eso" when the question is outside its comfort.
REFUSED_ELSEWHERE = re.compile(
    r"\bno (?:puedo|podemos) (?:ayudar|seguir|responder|atender|hacer|cumplir|proporcionar)|"
    r"\bno (?:entiendo|entendí|estoy segur[oa] de (?:lo )?que)|"
    r"\bne (?:peux|pouvons) pas (?:vous |t')?(?:aider|répondre|suivre|traiter|fournir)|"
    r"\bje ne (?:comprends|suis pas sûr de comprendre)|"
    r"\b(?:kann|können) (?:ich |wir )?(?:ihnen |dir |euch )?(?:dabei |damit )?nicht (?:helfen|antworten|folgen)|"
    r"\bverstehe (?:ich )?nicht\b|"
    r"\bnão (?:posso|podemos) (?:ajudar|responder|seguir)|\bnão (?:entendi|percebi)\b|"
    r"\bnon (?:posso|possiamo) (?:aiutar|rispondere|seguire)|\bnon (?:capisco|ho capito)\b",
    re.IGNORECASE)


@dataclass(frozen=True)
class Unit:
    """One line or sentence of a passage's answer."""

    index: int
    text: str
    label: str | None = None  # "Solid amber" in "Solid amber: the hub has power but no internet."
    step: bool = False
    condition: str | None = None  # "it blinks red 3 times" in "If it blinks red 3 times, ..."


@dataclass(frozen=True)
class Facts:
    """The part of a passage that answers this customer, and what was left out and why."""

    passage_id: str
    units: tuple[Unit, ...]
    matched: tuple[str, ...] = ()
    skipped_tried: tuple[str, ...] = ()
    truncated: bool = False
    skipped_told: tuple[str, ...] = ()  # what we already told them earlier in the conversation

    def render(self, *, inline: bool) -> str:
        """The facts as text: numbered steps when there are several, whole sentences always."""
        numbered = sum(1 for u in self.units if u.step and not u.label) >= 2
        out: list[str] = []
        n = 0
        for unit in self.units:
            line = _sentence(f"{unit.label}: {unit.text}" if unit.label else unit.text)
            if numbered and unit.step and not unit.label:
                n += 1
                out.append(f"{n}) {line}" if inline else f"\n{n}. {line}")
            else:
                out.append(line if inline or not out or not out[-1].startswith("\n") else f"\n{line}")
        text = " ".join(out)
        return " ".join(text.split()) if inline else re.sub(r" ?\n", "\n", text).strip()


def words(text: str) -> set[str]:
    """Content words of ``text``, lower-cased, attempts mapped to one concept ("rebooted" -> "restart")."""
    out: set[str] = set()
    for raw in _WORD.findall(text.lower()):
        if raw in _STOP or len(raw) < 2:
            continue
        out.add(_CONCEPT_OF.get(raw, raw[:-1] if len(raw) > 4 and raw.endswith("s") else raw))
    return out


def _plain(text: str) -> str:
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    text = re.sub(r"^\s*>+\s*", "", text)
    text = re.sub(r"[*_`#]+", "", text)
    return " ".join(text.split())


def _sentence(text: str) -> str:
    text = re.sub(r"[,;]?\s+(?:or|and|then)$", "", text.strip())
    return text if re.search(r"[.!?)]$", text) else text + "."


def answer_units(answer: str) -> list[Unit]:
    """The answer of a passage as units: list items and table rows one each, prose by sentence.

    Lines that only introduce what follows ("First, look at the hub's LED:", "Then:") are no facts.
    """
    units: list[Unit] = []
    for raw in answer.splitlines():
        line = raw.strip()
        if not line or _TABLE_RULE.match(line):
            continue
        if line.startswith("|"):
            cells = [_plain(c) for c in line.strip("|").split("|") if c.strip()]
            if len(cells) >= 2 and not all(c.istitle() or c.isupper() for c in cells):
                units.append(Unit(len(units), " ".join(cells[1:]), label=cells[0]))
            continue
        step = bool(_BULLET.match(line))
        text = _plain(_BULLET.sub("", line))
        if not text or (text.endswith(":") and len(text) < 80):
            continue
        parts = [text] if step else sentences(text)
        for part in parts:
            label_match = _LABEL.match(part)
            label = None
            if label_match and len(label_match.group(1).split()) <= 6 and not label_match.group(1).startswith("http"):
                label, part = label_match.group(1).strip(), label_match.group(2).strip()
            cond = _CONDITION.match(part) if label is None else None
            units.append(Unit(len(units), part, label=label, step=step,
                              condition=cond.group(1) if cond else None))
    return units


def tried_by_customer(message: str) -> list[set[str]]:
    """The content words of each sentence where the customer says what they already did."""
    return [words(s) for s in re.split(r"(?<=[.!?\n])\s+|,\s*(?:and|but)\s+", message) if _TRIED.search(s)]


def already_tried(unit: Unit, attempts: list[set[str]]) -> bool:
    """Whether a step repeats an attempt: the same action on the same thing, or mostly the same words."""
    mine = words(unit.text)
    if not mine:
        return False
    for attempt in attempts:
        shared = mine & attempt
        if (shared & _ACTIONS and len(shared) >= 2) or len(shared) / len(mine) >= 0.6:
            return True
    return False


def label_matches(label: str, said: set[str]) -> bool:
    wanted = words(label)
    return bool(wanted) and len(wanted & said) / len(wanted) >= 0.6


def already_told(unit: Unit, told: list[set[str]]) -> bool:
    """Whether a unit is (nearly) a sentence of a reply we already posted in this conversation, or a reply's
    sentence is (nearly) all of the unit's action ("Hold the reset for 5 seconds" for "... until it blinks")."""
    mine = words(f"{unit.label or ''} {unit.text}")
    if not mine:
        return False
    for sentence in told:
        shared = mine & sentence
        if len(shared) / len(mine) >= 0.8 or (len(shared) >= 3 and len(shared) / max(1, len(sentence)) >= 0.9):
            return True
    return False


def select_facts(passage: Passage, answer: str, message: str, budget: int, *, told: str = "") -> Facts:
    """The units of ``answer`` that fit this customer's situation, within ``budget`` characters.

    Situation lines ("Solid amber: ...") are kept only for the situation the customer named; general
    steps follow in the passage's order, best-matching first when the budget is short; a step the
    customer says they already took, or one we already told them (``told``: our earlier replies in the
    conversation), is left out, so a follow-up gets the next step. Nothing is ever cut inside a sentence.
    When everything was told already the facts are empty: a person takes over.
    """
    all_units = answer_units(answer)
    told_sentences = [words(s) for s in sentences(" ".join(told.split()))] if told.strip() else []
    told_units = [u for u in all_units if told_sentences and already_told(u, told_sentences)]
    units = [u for u in all_units if u not in told_units]
    if told_units and not units:
        return Facts(passage.id, (), skipped_told=tuple(u.text for u in told_units))
    said = words(message)
    attempts = tried_by_customer(message)
    labelled = [u for u in units if u.label]
    matched = [u for u in labelled if label_matches(u.label or "", said)]
    matched += [u for u in units if u.condition and not u.label and label_matches(u.condition, said)]
    general = [u for u in units if not u.label and u not in matched]
    if not general and not matched:
        # Nothing but situation lines and none named: the lines closest to the message.
        matched = sorted(labelled, key=lambda u: (-len(words(f"{u.label} {u.text}") & said), u.index))[:2]
    skipped = [u for u in general if already_tried(u, attempts)]
    general = [u for u in general if u not in skipped]
    relevance = said | {w for u in matched for w in words(u.text)}
    chosen: list[Unit] = []
    used = 0
    truncated = False

    def take(unit: Unit) -> bool:
        nonlocal used
        cost = len(unit.text) + len(unit.label or "") + 6
        if used + cost > budget:
            return False
        chosen.append(unit)
        used += cost
        return True

    for unit in matched:
        truncated |= not take(unit)
    prose = not any(u.step for u in general)
    # Prose answers read in order (the first sentence is the answer); where there are steps, the steps go
    # first, best-matching first, and the explanation around them only if room is left.
    ranked = general if prose else sorted(
        general, key=lambda u: (not u.step, bool(u.condition), -len(words(u.text) & relevance), u.index))
    for unit in ranked:
        if not take(unit):
            truncated = True
            if prose or not unit.step:
                break
    if not chosen and units:
        first = (matched or general or units)[0]
        chosen = [Unit(first.index, whole_sentences(first.text, budget) or first.text, first.label, first.step)]
        truncated = True
    first_ids = {u.index for u in matched}
    chosen.sort(key=lambda u: (u.index not in first_ids, u.index))
    return Facts(passage.id, tuple(chosen), tuple(u.label or "" for u in matched),
                 tuple(u.text for u in skipped), truncated, tuple(u.text for u in told_units))


# -- the model's part ---------------------------------------------------------------------------
def opener_problems(text: str, *, message: str, language: str, prompt: str = "", cited_text: str = "",
                    ack_words: str = "") -> list[str]:
    """Why a model-written opening cannot open a reply (empty: it can)."""
    from copilot.guardrails import REFUSAL, _copies, leaked_prompt
    from copilot.triage.language import detect_language

    problems: list[str] = []
    stripped = text.strip()
    if len(stripped) < 8:
        problems.append("the opening is empty")
        return problems
    if TEMPLATE_MARKS.search(stripped):
        problems.append("it is a letter template or has a placeholder; write a plain, personal sentence")
    if COMMITMENTS.search(stripped):
        problems.append("it promises something (a fix, a date, 'we're working on it'); acknowledge only")
    lower = stripped.lower()
    promised = [w for w in PROMISE_WORDS if w in lower and w not in cited_text.lower()]
    if promised:
        problems.append(f"it offers {', '.join(promised)}; acknowledge only")
    if any(re.search(rf"\b{re.escape(w)}\b", lower) for w in FORBIDDEN):
        problems.append("it talks about instructions or being an AI; write to the customer")
    if _mostly_copied(stripped, message):
        problems.append("it copies the customer's message; say it in your own words")
    wanted = [w.strip() for w in ack_words.split(",") if w.strip()]
    if wanted and not any(w in lower for w in wanted):
        problems.append("it does not acknowledge the customer; say sorry or thank them for this")
    if CONFUSED.search(stripped):
        problems.append("it says it did not understand; acknowledge what the customer told you")
    if REFUSAL.search(stripped) or REFUSED_ELSEWHERE.search(stripped):
        problems.append("it refuses; acknowledge what happened to the customer")
    if prompt and (leaked_prompt(stripped, prompt, n=7) or any(
            _copies(stripped, example) or _copies(example, stripped) for example in _examples(prompt))):
        problems.append("it repeats the instructions or an example; write about this customer")
    if re.search(r"\d", stripped) and not all(n in message for n in re.findall(r"\d+", stripped)):
        problems.append("it states numbers; the facts are added separately")
    if len(stripped) > 240 or len(sentences(stripped)) > 3:
        problems.append("it is too long; one or two short sentences")
    if not re.search(r"[.!?…)]$|[\U0001F300-\U0001FAFF]$", stripped):
        problems.append("the sentence is cut off; finish it")
    if language != "en" and detect_language(stripped, default="en") != language:
        problems.append(f"it is not in {LANGUAGE_NAMES.get(language, language)}")
    return problems


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def translation_problems(source: str, translated: str, language: str) -> list[str]:
    """Why a model's translation of the chosen facts cannot replace them (empty: it can).

    The facts are the one part of a reply a reviewer trusts without reading the source, so a translation
    must keep every number, the line structure and whole sentences, and come out in the language asked.
    """
    from copilot.triage.language import detect_language

    out = translated.strip()
    if len(out) < 0.6 * len(source.strip()) or len(out) > 1.8 * len(source.strip()) + 20:
        return ["its length is far from the original's"]
    problems: list[str] = []
    missing = [n for n in _NUMBER.findall(source) if n not in out and n.replace(".", ",") not in out]
    if missing:
        problems.append(f"it lost numbers: {', '.join(missing[:3])}")
    added = [n for n in _NUMBER.findall(out) if n not in source and n.replace(",", ".") not in source]
    if added:
        problems.append(f"it adds numbers: {', '.join(added[:3])}")
    if source.strip().count("\n") != out.count("\n"):
        problems.append("it changed the lines")
    if TEMPLATE_MARKS.search(out) or re.search(r"</?text>|^(?:here is|translation|sure)\b", out, re.IGNORECASE):
        problems.append("it is not only the translation")
    if not re.search(r"[.!?…)]$", out):
        problems.append("it is cut off")
    if detect_language(out, default="en") != language:
        problems.append(f"it is not in {LANGUAGE_NAMES.get(language, language)}")
    return problems


def _mostly_copied(text: str, message: str) -> bool:
    """Whether half or more of the opening's 4-word runs come from the message (a paraphrase may share a few)."""
    said = re.findall(r"\w+", message.lower())
    wrote = re.findall(r"\w+", text.lower())
    grams = {" ".join(said[i : i + 4]) for i in range(len(said) - 3)}
    runs = [" ".join(wrote[i : i + 4]) for i in range(len(wrote) - 3)]
    return bool(runs) and sum(r in grams for r in runs) >= max(2, len(runs) / 2)


def _examples(prompt: str) -> list[str]:
    return [line.partition(":")[2].strip() for line in prompt.splitlines()
            if line.startswith(("Opening:", "Message:"))]


# Languages whose sentence after "Hi Dana," goes on in lower case; German capitalises nouns and "Sie", so a
# capital there is usually right and is left alone.
_LOWER_AFTER_GREETING = frozenset({"en", "es", "fr", "pt", "it"})
_KEEPS_CAPITAL = re.compile(r"^(?:I|I'm|I've|I'll|I'd)\b")


def after_greeting(opener: str, language: str, message: str = "") -> str:
    """The opening as it reads after ``Hi Dana,``: "Thanks for..." becomes "thanks for...".

    A first word that is "I", an acronym, or a name the customer wrote with a capital keeps its capital.
    """
    match = re.match(r"(\W*)(\w[\w'’-]*)", opener)
    if language not in _LOWER_AFTER_GREETING or not match:
        return opener
    word = match.group(2)
    if not word[0].isupper() or _KEEPS_CAPITAL.match(word) or sum(c.isupper() for c in word) > 1:
        return opener
    for found in re.finditer(rf"\b{re.escape(word)}\b", message):
        if message[:found.start()].rstrip()[-1:] not in ("", ".", "!", "?", "\n"):
            return opener  # capitalised mid-sentence by the customer: a name
    start = match.start(2)
    return opener[:start] + word[0].lower() + opener[start + 1:]


def clean_opener(raw: str) -> str:
    """The model's opening without quotes, labels, a leading handle or a greeting line."""
    text = re.sub(r"^\s*(?:opening|reply|answer|respuesta|réponse)\s*:\s*", "", raw, flags=re.IGNORECASE)
    text = text.strip().strip('"“”').strip()
    text = re.sub(r"^(?:@\w+\s*)+", "", text)
    text = re.sub(r"^(?:hi|hello|hey|hola|bonjour|salut|hallo|ciao|olá|oi)\b[^,.!?\n]{0,30}[,!]\s*", "", text,
                  flags=re.IGNORECASE)
    first = " ".join(text.strip().split("\n")[0].split())  # an opening is one line; what follows is not ours
    parts = sentences(first)
    # The first sentence acknowledges; a second one is kept only after a very short first (small models
    # go on to restate the problem or to promise).
    if len(parts) > 1:
        first = parts[0] if len(parts[0]) >= 30 else " ".join(parts[:2])
    return first


# -- the phrase book ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PhraseBook:
    """The fixed parts of a reply in each language (holding, no-answer, offers, acknowledgements)."""

    phrases: dict[str, dict[str, str]] = field(default_factory=dict)

    def language(self, code: str) -> str:
        """The language used for ``code``: itself when the book has it, else English."""
        return code if code in self.phrases else "en"

    def get(self, code: str, key: str, **values: Any) -> str:
        lang = self.language(code)
        text = self.phrases[lang].get(key) or self.phrases["en"][key]
        return text.format(**values) if values else text


def build_phrase_book(data: dict[str, Any], source: str = "phrases") -> PhraseBook:
    """A phrase book from a mapping of language -> key -> text; English must have every key."""
    if not isinstance(data, dict) or "en" not in data:
        raise ValueError(f"{source}: needs an 'en' section")
    missing = [k for k in PHRASE_KEYS if not data["en"].get(k)]
    if missing:
        raise ValueError(f"{source}: the 'en' section lacks {', '.join(missing)}")
    return PhraseBook({str(lang): {str(k): str(v) for k, v in (rows or {}).items()} for lang, rows in data.items()})


@lru_cache(maxsize=4)
def load_phrase_book(path: str | None = None) -> PhraseBook:
    """The shipped phrase book, or a team's own file of the same shape."""
    file = Path(path) if path else PHRASES_FILE
    return build_phrase_book(yaml.safe_load(file.read_text(encoding="utf-8")), str(file))
