"""Deterministic scorers for one drafted reply against its support case.

Each scorer returns a ``Score``: a value in 0..1 (``None`` when it does not apply to the case) and a
verdict (``passed``; ``None`` for scores that only inform). Which checks apply follows the case's expected
labels, not the triager's guess, so a mislabelled message is caught by the checks it should have met.

- content: ``must_include`` (share of phrases found), ``must_not_include`` (none may appear).
- citations: ``citation_valid`` (cited ids ⊆ retrieved ids; an escalation may cite the crisis policy),
  ``citation_correct`` (at least one cited id is an expected id; for praise, feedback and conversation
  only when the draft cites something).
- retrieval on the draft's own search: ``hit``, ``recall``, ``rr`` (reciprocal rank), ``ndcg``.
- decisions: ``abstention`` (questions and complaints with ``expected_ids == []`` must flag a knowledge gap
  and cite nothing; answerable ones must not), ``escalation`` (escalated exactly when the case is a crisis),
  ``no_reply`` (no reply drafted when the case's reference is ``null``).
- policy: ``length`` per channel profile, ``no_pii_echo`` (personal data from the message never appears in
  a reply on a public channel; card, IBAN and national id numbers never anywhere), ``next_step`` and
  ``offer_help`` (complaints and questions), ``no_forbidden`` (guardrails' list plus ``forbidden`` in
  ``markers.yaml``), ``private_invite`` (a case with private info on a public channel moves to a DM),
  ``same_language`` (the reply is in the customer's language); ``policy`` is all of them together.
- empathy: acknowledgement (every reply to a complaint, question or feedback), apology (complaints and
  negative messages), ownership (complaints). Passes when the acknowledgement is there and at least half
  of the applicable markers are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from copilot.config import ChannelProfile
from copilot.guardrails import FORBIDDEN, PRIVATE_CUES
from copilot.pii import find_pii
from copilot.retrieve import ndcg
from copilot.types import Draft

MARKERS_FILE = Path(__file__).with_name("markers.yaml")
MARKER_CATEGORIES = (
    "acknowledgement",
    "apology",
    "ownership",
    "next_step",
    "offer_help",
    "forbidden",
    "filler",
)
ANSWER_KINDS = ("complaint", "question")
NEVER_ECHO = ("card", "iban", "national_id")


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one case."""

    name: str
    value: float | None
    passed: bool | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def na(name: str, detail: str = "not applicable") -> Score:
    """A score that does not apply to this case."""
    return Score(name, None, None, detail)


def verdict(name: str, ok: bool, detail: str = "") -> Score:
    """A pass/fail score (value 1.0 or 0.0)."""
    return Score(name, 1.0 if ok else 0.0, ok, detail)


# -- markers ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Markers:
    """Compiled phrase lists, one regular expression per phrase."""

    phrases: dict[str, tuple[str, ...]]
    patterns: dict[str, tuple[re.Pattern[str], ...]]

    def find(self, text: str, category: str) -> list[str]:
        """The phrases of ``category`` that occur in ``text``."""
        return [
            phrase
            for phrase, pattern in zip(self.phrases[category], self.patterns[category], strict=True)
            if pattern.search(text)
        ]

    def words(self) -> frozenset[str]:
        """Every lower-cased word of every phrase (groundedness ignores them)."""
        return frozenset(
            w for phrases in self.phrases.values() for p in phrases for w in re.findall(r"[^\W_]+", p.lower())
        )


def _compile(phrase: str) -> re.Pattern[str]:
    prefix = phrase.endswith("*")
    body = re.escape(phrase.rstrip("*").lower()).replace("\\ ", r"\s+").replace("'", "['’]")
    return re.compile(rf"(?<![^\W_]){body}" + ("" if prefix else r"(?![^\W_])"), re.IGNORECASE)


def build_markers(data: dict[str, Any]) -> Markers:
    """Markers from a mapping of category -> phrases; every category must be present."""
    missing = [c for c in MARKER_CATEGORIES if c not in data]
    if missing:
        raise ValueError(f"markers file lacks {', '.join(missing)}")
    phrases = {c: tuple(str(p) for p in data[c] or ()) for c in MARKER_CATEGORIES}
    return Markers(phrases=phrases, patterns={c: tuple(_compile(p) for p in ps) for c, ps in phrases.items()})


@lru_cache(maxsize=4)
def load_markers(path: str | None = None) -> Markers:
    """The phrase lists of ``markers.yaml`` (or another file of the same shape)."""
    data = yaml.safe_load(Path(path or MARKERS_FILE).read_text(encoding="utf-8"))
    return build_markers(data)


# -- content ------------------------------------------------------------------------------------
def _contains(text: str, phrase: str) -> bool:
    return phrase.lower() in text.lower()


def must_include(text: str, phrases: list[str]) -> Score:
    """Share of required phrases found (case-insensitive); passes when all are."""
    if not phrases:
        return na("must_include", "nothing required")
    missing = [p for p in phrases if not _contains(text, p)]
    value = 1 - len(missing) / len(phrases)
    return Score("must_include", value, not missing, f"missing: {', '.join(missing)}" if missing else "")


def must_not_include(text: str, phrases: list[str]) -> Score:
    """Passes when none of the phrases appears (case-insensitive)."""
    if not phrases:
        return na("must_not_include", "nothing forbidden")
    found = [p for p in phrases if _contains(text, p)]
    return verdict("must_not_include", not found, f"contains: {', '.join(found)}" if found else "")


# -- citations and retrieval --------------------------------------------------------------------
def citation_valid(cited: Iterable[str], retrieved: Iterable[str], *, escalated: bool) -> Score:
    """Cited ids must be among the retrieved ones (an escalation may cite the crisis policy)."""
    cited, retrieved_set = list(cited), set(retrieved)
    if not cited:
        return na("citation_valid", "cites nothing")
    allowed = retrieved_set | ({"kb-crisis-policy"} if escalated else set())
    stray = [c for c in cited if c not in allowed]
    return verdict("citation_valid", not stray, f"not retrieved: {', '.join(stray)}" if stray else "")


def citation_correct(cited: Iterable[str], expected_ids: list[str], kind: str) -> Score:
    """At least one cited id is an expected one.

    Applies where the case expects ids and is a complaint, question or crisis (a reply that must rest on
    the knowledge base), or where the draft cites anything at all (then it must cite the right entry).
    """
    cited = list(cited)
    if not expected_ids:
        return na("citation_correct", "no expected ids")
    if not cited and kind not in (*ANSWER_KINDS, "crisis"):
        return na("citation_correct", "no citation needed")
    if not cited:
        return verdict("citation_correct", False, "cites nothing")
    hit = set(cited) & set(expected_ids)
    return verdict("citation_correct", bool(hit), "" if hit else f"cites {', '.join(cited)}")


def retrieval_scores(retrieved: list[str], expected_ids: list[str], k: int) -> list[Score]:
    """hit@k, recall@k, reciprocal rank and nDCG@k of the draft's own search."""
    names = ("hit", "recall", "rr", "ndcg")
    if not expected_ids:
        return [na(n, "no expected ids") for n in names]
    if not retrieved:
        return [Score(n, 0.0, None, "nothing retrieved") for n in names]
    relevant = set(expected_ids)
    top = retrieved[:k]
    rank = next((i + 1 for i, rid in enumerate(top) if rid in relevant), None)
    return [
        Score("hit", 1.0 if rank else 0.0, None, f"rank {rank}" if rank else "not in top k"),
        Score("recall", len(set(top) & relevant) / len(relevant), None),
        Score("rr", 1.0 / rank if rank else 0.0, None),
        Score("ndcg", ndcg(top, relevant, k), None),
    ]


# -- decisions ----------------------------------------------------------------------------------
def abstention(expected_ids: list[str], expected_kind: str, draft: Draft) -> Score:
    """A question or complaint nothing answers must be flagged as a gap and cite nothing; others not."""
    if expected_kind not in ANSWER_KINDS or draft.status != "pending":
        return na("abstention")
    abstained = draft.knowledge_gap or not draft.cited_ids
    if not expected_ids:
        return verdict(
            "abstention", abstained, "" if abstained else f"answered citing {', '.join(draft.cited_ids)}"
        )
    return verdict("abstention", not abstained, "abstained on an answerable case" if abstained else "")


def escalation(expected_crisis: bool, status: str) -> Score:
    """Escalated exactly when the case is a crisis (a hyperbole must not be escalated)."""
    escalated = status == "escalated"
    if expected_crisis:
        return verdict("escalation", escalated, "" if escalated else f"not escalated (status {status})")
    return verdict("escalation", not escalated, "escalated a non-crisis" if escalated else "")


def no_reply(reference: str | None, status: str) -> Score:
    """Where the case's reference is ``null`` (spam, baiting), no reply should be drafted."""
    if reference is not None:
        return na("no_reply")
    return verdict(
        "no_reply", status == "skipped", "" if status == "skipped" else f"drafted a reply ({status})"
    )


# -- policy -------------------------------------------------------------------------------------
def length_ok(text: str, profile: ChannelProfile) -> Score:
    """The reply fits the channel's character limit."""
    return verdict(
        "length",
        len(text) <= profile.max_chars,
        f"{len(text)} characters; the channel allows {profile.max_chars}",
    )


def _pii_values(message: str, public: bool) -> list[tuple[str, str]]:
    out = []
    for kind, (start, end) in find_pii(message):
        if public or kind in NEVER_ECHO:
            out.append((kind, message[start:end]))
    return out


def _echoed(value: str, text: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if "@" not in value and len(digits) >= 4:
        return re.search(rf"(?<!\d){digits}(?!\d)", re.sub(r"(?<=\d)[\s().-]+(?=\d)", "", text)) is not None
    return value.lower().strip(" #") in text.lower()


def no_pii_echo(text: str, message: str, profile: ChannelProfile) -> Score:
    """No personal data from the message in a public reply; card, IBAN, national id never at all."""
    values = _pii_values(message, profile.public)
    if not values:
        return na("no_pii_echo", "no personal data to protect")
    echoed = [kind for kind, value in values if _echoed(value, text)]
    return verdict("no_pii_echo", not echoed, f"repeats: {', '.join(echoed)}" if echoed else "")


def next_step(text: str, kind: str, markers: Markers, *, answered: bool = False) -> Score:
    """A complaint or question gets a next step: an instruction, what happens now, or for a question the
    answer itself (``answered``: a sentence supported by a cited passage, e.g. "You can open one from 16")."""
    if kind not in ANSWER_KINDS:
        return na("next_step")
    steps = re.search(r"(?:^|\s)(?:1[.)]|step 1)\s", text, re.IGNORECASE) is not None
    found = markers.find(text, "next_step")
    ok = steps or bool(found) or (answered and kind == "question")
    return verdict("next_step", ok, "" if ok else "no next step")


def offer_help(text: str, kind: str, markers: Markers) -> Score:
    """A complaint or question ends with an offer of more help."""
    if kind not in ANSWER_KINDS:
        return na("offer_help")
    found = markers.find(text, "offer_help")
    return verdict("offer_help", bool(found), "" if found else "no offer of further help")


def no_forbidden(text: str, markers: Markers) -> Score:
    """None of the forbidden phrases (the drafting guardrails' list and the markers file's)."""
    lower = text.lower()
    found = [w for w in FORBIDDEN if re.search(rf"\b{re.escape(w)}\b", lower)]
    found += markers.find(text, "forbidden")
    return verdict("no_forbidden", not found, f"contains: {', '.join(found)}" if found else "")


def private_invite(text: str, expected_private: bool, profile: ChannelProfile) -> Score:
    """A case with personal or account details on a public channel is moved to a private one."""
    if not (expected_private and profile.public):
        return na("private_invite")
    lower = text.lower()
    found = [c for c in PRIVATE_CUES if re.search(rf"(?<!\w){re.escape(c)}(?!\w)", lower)]
    return verdict("private_invite", bool(found), "" if found else "no invitation to a private channel")


def same_language(text: str, message: str) -> Score:
    """The reply is in the language the customer wrote in (``copilot.triage.language``)."""
    from copilot.triage.language import detect_language

    wrote, replied = detect_language(message), detect_language(text)
    return verdict(
        "same_language", wrote == replied, "" if wrote == replied else f"message {wrote}, reply {replied}"
    )


def policy(scores: list[Score]) -> Score:
    """All applicable policy checks together: value is the share that pass."""
    applicable = [s for s in scores if s.passed is not None]
    if not applicable:
        return na("policy")
    failed = [s.name for s in applicable if not s.passed]
    value = 1 - len(failed) / len(applicable)
    return Score("policy", value, not failed, f"failed: {', '.join(failed)}" if failed else "")


# -- empathy ------------------------------------------------------------------------------------
def empathy(text: str, kind: str, sentiment: str, markers: Markers) -> Score:
    """Acknowledgement, apology where fitting, ownership; value is the share of applicable markers present."""
    wanted: list[str] = []
    if kind in (*ANSWER_KINDS, "feedback"):
        wanted.append("acknowledgement")
    if kind == "complaint" or (sentiment == "negative" and kind in (*ANSWER_KINDS, "feedback")):
        wanted.append("apology")
    if kind == "complaint":
        wanted.append("ownership")
    if not wanted:
        return na("empathy")
    present = [c for c in wanted if markers.find(text, c)]
    value = len(present) / len(wanted)
    ok = "acknowledgement" in present and value >= 0.5
    missing = [c for c in wanted if c not in present]
    return Score("empathy", value, ok, f"missing: {', '.join(missing)}" if missing else "")


# -- what a reviewer would rewrite --------------------------------------------------------------
def _restates(sentence: str, message: str) -> bool:
    said = re.findall(r"\w+", message.lower())
    wrote = re.findall(r"\w+", sentence.lower())
    grams = {" ".join(said[i : i + 4]) for i in range(len(said) - 3)}
    runs = [" ".join(wrote[i : i + 4]) for i in range(len(wrote) - 3)]
    return len(runs) >= 3 and sum(r in grams for r in runs) >= len(runs) * 0.6


def reviewer_check(text: str, message: str, sources: Iterable[str], *, signature: str = "") -> Score:
    """What a reviewer rewrites by hand: a letter template or placeholder, a cut-off last sentence, a
    sentence that restates the customer's message or the problem as if it were the answer, and a
    commitment (a fix date, "we're working on it", a refund) that no cited passage makes."""
    from copilot.compose import COMMITMENTS, TEMPLATE_MARKS
    from copilot.guardrails import sentences

    body = text.replace(signature, "").strip() if signature else text.strip()
    # A sign-off line of its own ("The support team", "L'équipe support") ends a letter-shaped reply
    # without a full stop; it is not a cut-off sentence.
    head, _, last = body.rpartition("\n\n")
    if head and len(last.split()) <= 5 and not re.search(r"[.!?:;,]", last):
        body = head.strip()
    if not body:
        return na("reviewer", "no reply text")
    found: list[str] = []
    if TEMPLATE_MARKS.search(body):
        found.append(f"letter template or placeholder ({TEMPLATE_MARKS.search(body).group(0)})")  # type: ignore[union-attr]
    if not re.search(r"[.!?)…]$|[\U0001F300-\U0001FAFF]$", body):
        found.append(f"cut off (…{body[-30:]})")
    sources = list(sources)
    source_text = " ".join(sources)
    # A passage's first paragraph states the problem ("The app says my hub is offline"); the answer follows.
    problems = [src.strip().split("\n\n")[0] for src in sources if "\n\n" in src.strip()]
    for sentence in sentences(" ".join(body.split())):
        if _restates(sentence, message):
            found.append(f"restates the message ({sentence[:60]})")
            break
        if any(_restates(sentence, problem) for problem in problems) and len(sentence) < 200:
            found.append(f"restates the problem as the answer ({sentence[:60]})")
            break
    unsupported = [m.group(0) for m in COMMITMENTS.finditer(body) if m.group(0).lower() not in source_text.lower()]
    if unsupported:
        found.append(f"unsupported commitment ({unsupported[0]})")
    return verdict("reviewer", not found, "; ".join(found))


def approvable(scores: list[Score], judge: dict[str, Any] | None = None) -> Score:
    """Whether a reviewer would send the draft as is or with a trivial edit: the reviewer check, policy,
    groundedness and empathy all pass where they apply, and the judge (when it ran) rates it 4 or more."""
    by_name = {s.name: s for s in scores}
    needed = [by_name[n] for n in ("reviewer", "policy", "groundedness", "empathy", "must_not_include")
              if n in by_name and by_name[n].passed is not None]
    if not needed:
        return na("approvable", "no reply to judge")
    failed = [s.name for s in needed if not s.passed]
    if judge and not judge.get("error"):
        marks = [v for k, v in judge.items() if isinstance(v, int) and not isinstance(v, bool)]
        if marks and min(marks) < 4:
            failed.append(f"judge {min(marks)}/5")
    return verdict("approvable", not failed, f"fails: {', '.join(failed)}" if failed else "")
