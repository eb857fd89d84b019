"""Checks on a drafted reply: citations, length, personal data, leaks, invented promises, tone."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from copilot.pii import find_pii
from copilot.types import Passage

# Words that promise money or goods; allowed only when a cited passage says them too.
PROMISE_WORDS = ("refund", "compensation", "reimburse", "voucher", "discount", "coupon", "credit", "free of charge",
                 "for free", "free replacement", "guarantee", "promise")
# Never in a reply, whatever the customer asked for.
FORBIDDEN = ("ignore previous instructions", "ignore all previous", "system prompt", "as an ai", "language model",
             "idiot", "stupid", "moron", "dumb", "shut up", "pathetic", "loser", "arrr", "matey", "ahoy")
PRIVATE_CUES = ("dm", "direct message", "private message", "message us", "privately", "inbox", "email thread",
                "this chat", "send us a message", "mensaje privado", "message privé", "direktnachricht")
REFUSAL = re.compile(r"\b(?:I'?m sorry,? but I (?:can(?:no|')t|am unable)|I (?:can(?:no|')t|am unable to) "
                     r"(?:assist|help) with (?:that|this)|as an AI)\b", re.IGNORECASE)
_REPLY = re.compile(r"^\s*REPLY\s*:\s*", re.IGNORECASE | re.MULTILINE)
_SOURCES = re.compile(r"^\s*SOURCES?\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"\b\d+(?:[.,:]\d+)*\b")
_HANDLE = re.compile(r"^(?:@\w+\s*)+")


@dataclass(frozen=True)
class Parsed:
    """A chat model's answer split into reply text and cited ids."""

    text: str
    cited: tuple[str, ...]
    had_format: bool
    cut_off: bool = False


_PARTIAL_REPLY = re.compile(r'"reply"\s*:\s*"((?:[^"\\]|\\.)*)', re.DOTALL)
_PARTIAL_SOURCES = re.compile(r'"(?:cite|sources)"\s*:\s*\[([^\]]*)\]', re.DOTALL)


def _parse_json(raw: str) -> Parsed | None:
    start, end = raw.find("{"), raw.rfind("}")
    if start < 0:
        return None
    try:
        data = json.loads(raw[start : end + 1]) if end > start else None
    except json.JSONDecodeError:
        data = None
    if data is None:
        # Cut off by the token limit: keep what was written so far.
        reply = _PARTIAL_REPLY.search(raw)
        if not reply:
            return None
        sources = _PARTIAL_SOURCES.search(raw)
        try:
            text = json.loads('"' + reply.group(1).rstrip("\\") + '"')
        except json.JSONDecodeError:
            text = reply.group(1)
        cited = tuple(s.strip(' "') for s in sources.group(1).split(",") if s.strip(' "')) if sources else ()
        return Parsed(text=text.strip(), cited=cited, had_format=False, cut_off=True)
    if not isinstance(data, dict) or not isinstance(data.get("reply"), str):
        return None
    listed = data.get("cite") or data.get("sources") or []
    if isinstance(listed, str):
        listed = [listed]
    cited = tuple(dict.fromkeys(str(s).strip() for s in listed if str(s).strip()))
    return Parsed(text=data["reply"].strip(), cited=cited, had_format=True)


def parse_reply(raw: str) -> Parsed:
    """The reply and its sources from JSON (``{"sources": [...], "reply": ...}``) or ``REPLY:``/``SOURCES:`` lines."""
    parsed = _parse_json(raw)
    if parsed is not None:
        return parsed
    sources = _SOURCES.search(raw)
    body = raw[: sources.start()] if sources else raw
    reply_label = _REPLY.search(body)
    text = body[reply_label.end():] if reply_label else body
    cited: tuple[str, ...] = ()
    if sources:
        cleaned = sources.group(1).strip().strip(".")
        if cleaned.lower() not in ("none", "n/a", "-", ""):
            cited = tuple(dict.fromkeys(s.strip(" []`'\"") for s in re.split(r"[,\s]+", cleaned) if s.strip(" []`'\"")))
    text = text.strip().strip('"').strip()
    return Parsed(text=text, cited=cited, had_format=bool(reply_label and sources))


def strip_handle(text: str) -> str:
    """Remove handles the model put at the start (the code adds the right one)."""
    return _HANDLE.sub("", text).lstrip(" ,:-")


def sentences(text: str) -> list[str]:
    """Rough sentence split."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9@¿¡])", text.strip()) if s.strip()]


def whole_sentences(text: str, limit: int) -> str:
    """The leading whole sentences of ``text`` that fit ``limit`` characters ("" when not even one does)."""
    out = ""
    for sentence in sentences(text):
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > limit:
            break
        out = candidate
    return out


def fit_length(text: str, limit: int) -> str:
    """Cut at a sentence (else word) boundary so the text fits ``limit`` characters."""
    if len(text) <= limit:
        return text
    out = whole_sentences(text, limit)
    if out:
        return out
    cut = text[: max(limit - 1, 1)].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def leaked_prompt(text: str, prompt: str, n: int = 9) -> bool:
    """Whether the reply copies any run of ``n`` words from the system prompt."""
    words = re.findall(r"\w+", prompt.lower())
    grams = {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
    reply = re.findall(r"\w+", text.lower())
    return any(" ".join(reply[i : i + n]) in grams for i in range(len(reply) - n + 1))


def check_reply(text: str, *, cited: tuple[str, ...], retrieved: list[Passage], message: str, max_chars: int,
                system_prompt: str, needs_citation: bool, private_public: bool) -> list[str]:
    """Every reason the reply is not acceptable (empty list: it is)."""
    problems: list[str] = []
    lower = text.lower()
    if len(text.strip()) < 10:
        problems.append("the reply is empty or too short")
    if REFUSAL.search(text):
        problems.append("it refuses; the customer needs a helpful reply from the passages")
    if _copies(text, message):
        problems.append("it copies the customer's message; write a reply to it instead")
    if len(text) > max_chars:
        problems.append(f"the reply is {len(text)} characters; the channel allows {max_chars}")
    retrieved_ids = {p.id for p in retrieved}
    unknown = [c for c in cited if c not in retrieved_ids]
    if unknown:
        problems.append(f"it cites {', '.join(unknown)}, which is not one of the passages "
                        f"({', '.join(sorted(retrieved_ids)) or 'none'})")
    if needs_citation and not cited:
        problems.append("SOURCES must list the id of the passage the answer comes from")
    cited_text = " ".join(p.text.lower() for p in retrieved if p.id in cited)
    # Personal data in a reply is an echo unless it is the company's own (a support line in a passage).
    pii = [lower_slice(text, span) for _, span in find_pii(text) if text[span[0]:span[1]].lower() not in cited_text]
    if pii:
        problems.append("it repeats personal data (" + ", ".join(pii[:3]) + "); never repeat it")
    if leaked_prompt(text, system_prompt):
        problems.append("it repeats the instructions; write only the reply")
    bad = [w for w in FORBIDDEN if re.search(rf"\b{re.escape(w)}\b", lower)]
    if bad:
        problems.append(f"it contains forbidden wording ({', '.join(bad)})")
    promised = [w for w in PROMISE_WORDS if w in lower and w not in cited_text]
    if promised:
        problems.append(f"it offers {', '.join(promised)}, which no cited passage supports")
    numbers = [n for n in _NUMBER.findall(text)
               if len(n) > 1 and n not in cited_text and n not in message]
    if numbers:
        problems.append(f"it states {', '.join(numbers[:3])}, which no cited passage contains")
    if private_public and not any(cue in lower for cue in PRIVATE_CUES):
        problems.append("the case needs personal details: invite them to a private message (DM)")
    return problems


def lower_slice(text: str, span: tuple[int, int]) -> str:
    value = text[span[0] : span[1]]
    return value[:2] + "…" if len(value) > 4 else value


def _copies(reply: str, message: str) -> bool:
    """Whether the reply mostly repeats the customer's own words."""
    said = re.findall(r"\w+", message.lower())
    wrote = re.findall(r"\w+", reply.lower())
    if len(said) < 4 or not wrote:
        return False
    grams = {" ".join(said[i : i + 4]) for i in range(len(said) - 3)}
    hits = sum(" ".join(wrote[i : i + 4]) in grams for i in range(len(wrote) - 3))
    return hits >= min(3, len(grams))


def trim_cut_off(text: str, limit: int, *, cut_off: bool = False) -> str:
    """A reply cut at the length or token limit loses its unfinished last sentence."""
    stripped = text.rstrip()
    if (len(stripped) < 0.85 * limit and not cut_off) or re.search(r"[.!?)…]$", stripped):
        return text
    parts = sentences(stripped)
    return " ".join(parts[:-1]) if len(parts) > 1 else text


def drop_echo(reply: str, message: str) -> str:
    """Leading sentences that only repeat the customer's message are dropped (small models do this)."""
    parts = sentences(reply)
    while len(parts) > 1 and _copies(parts[0], message):
        parts = parts[1:]
    rest = " ".join(parts)
    # What is left must still be a reply; otherwise keep it all and let the copy check reject it.
    return rest if len(rest) >= 40 and len(parts) != len(sentences(reply)) else reply
