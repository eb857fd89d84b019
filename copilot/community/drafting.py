"""Shared parts of drafting community posts: the checked model call, the output checks, near-duplicates,
and clustering texts into topics."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.messages import HumanMessage, SystemMessage
from rapidfuzz import fuzz

from copilot.generation import generate
from copilot.generation import model_name as chat_model_name
from copilot.guardrails import FORBIDDEN, PROMISE_WORDS, fit_length, leaked_prompt, sentences
from copilot.models.embeddings import as_matrix
from copilot.pii import find_pii
from copilot.prompts import Prompts, Rendered, load_prompts

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

# Community content never touches these: crises, safety incidents, outages, legal or money disputes and
# anyone's private case. Matched as word stems, case-insensitive.
SENSITIVE = {
    "crisis": r"suicid|self[- ]?harm|kill (?:my|him|her|them)sel|abuse|abusive|harass|funeral|passed away|"
              r"\bdied\b|\bdeath\b|bereave|overdose",
    "safety": r"\bfire\b|smoke|smoulder|\bburn(?:t|ed|ing)?\b|melt(?:ed|ing)|electric shock|electrocut|"
              r"injur|hospital|overheat|explod|recall",
    "incident": r"\boutage\b|\bincident\b|data breach|\bhack(?:ed|er)?\b|\bleak(?:ed)?\b|security flaw",
    "dispute": r"lawsuit|legal action|lawyer|refund|chargeback|compensation|complain",
}
_SENSITIVE = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in SENSITIVE.items()}
_NUMBER = re.compile(r"\b\d+(?:[.,:]\d+)*\b")
_HANDLE = re.compile(r"(?<![\w.])@\w{2,}")
_URL = re.compile(r"https?://\S+|\b[\w-]+(?:\.[\w-]+)*\.example(?:/\S*)?")
# Prize and gift words: a community post may only use them when its facts do.
PRIZE_WORDS = ("win", "winner", "prize", "giveaway", "free", "gift", "discount", "voucher")
NEAR_DUPLICATE_COSINE = 0.9
RETRY_TEMPERATURE = 0.7
NEAR_DUPLICATE_FUZZ = 85.0


def sensitive_reason(text: str) -> str | None:
    """The first sensitive area ``text`` touches (crisis, safety, incident, dispute), or None."""
    for name, pattern in _SENSITIVE.items():
        match = pattern.search(text)
        if match:
            return f"{name} ({match.group(0).strip().lower()})"
    return None


def words_to_avoid(book: Any) -> list[str]:
    """The brand voice's words to avoid (``kb-brand-voice``, section "Words to avoid"), without the entries
    that only apply in some senses (those with a note in brackets)."""
    section = book.section("kb-brand-voice", "Words to avoid") or ""
    parts = re.split(r",\s*(?![^()]*\))", " ".join(section.split()).rstrip("."))
    return [p.strip().lower() for p in parts if p.strip() and "(" not in p and len(p.split()) <= 3]


def content_problems(text: str, *, limit: int, facts: str, system_prompt: str = "", min_chars: int = 20,
                     allow_handles: Sequence[str] = (), avoid: Sequence[str] = ()) -> list[str]:
    """What is wrong with a community text: length, personal data, handles, invented numbers, promises, tone."""
    problems: list[str] = []
    lower = text.lower()
    facts_lower = facts.lower()
    if len(text.strip()) < min_chars:
        problems.append("the text is empty or too short")
    if len(text) > limit:
        problems.append(f"it is {len(text)} characters; the limit is {limit}")
    pii = sorted({kind for kind, span in find_pii(text) if text[span[0]:span[1]].lower() not in facts_lower})
    if pii:
        problems.append(f"it contains personal data ({', '.join(pii)}); leave it out")
    allowed = {h.lower().lstrip("@") for h in allow_handles}
    handles = [h for h in _HANDLE.findall(text) if h.lower().lstrip("@") not in allowed]
    if handles:
        problems.append(f"it tags {', '.join(handles[:3])}; never tag members")
    said = [" ".join(re.findall(r"\w+", x.lower())) for x in sentences(text)]
    if len(said) != len(set(said)):
        problems.append("it repeats itself; say each thing once")
    reason = sensitive_reason(text)
    if reason and not sensitive_reason(facts):
        problems.append(f"it touches a sensitive topic: {reason}")
    bad = [w for w in FORBIDDEN if re.search(rf"\b{re.escape(w)}\b", lower)]
    if bad:
        problems.append(f"it contains forbidden wording ({', '.join(bad)})")
    off_voice = [w for w in avoid if re.search(rf"\b{re.escape(w)}\b", lower)]
    if off_voice:
        problems.append(f"it says {', '.join(repr(w) for w in off_voice[:3])}, which our brand voice avoids")
    promised = [w for w in (*PROMISE_WORDS, *PRIZE_WORDS) if re.search(rf"\b{re.escape(w)}", lower)
                and not re.search(rf"\b{re.escape(w)}", facts_lower)]
    if promised:
        problems.append(f"it offers {', '.join(promised[:3])}, which the facts do not")
    numbers = [n for n in _NUMBER.findall(text) if len(n) > 1 and n not in facts]
    if numbers:
        problems.append(f"it states {', '.join(numbers[:3])}, which the facts do not contain")
    urls = [u for u in _URL.findall(text) if u.rstrip(".,)").lower() not in facts_lower]
    if urls:
        problems.append(f"it links {urls[0]}, which the facts do not")
    if system_prompt and leaked_prompt(text, system_prompt):
        problems.append("it repeats the instructions; write only the post")
    return problems


def json_format(name: str, fields: Sequence[str]) -> dict[str, Any]:
    """An OpenAI-style ``response_format``: a JSON object with these string fields, all required."""
    schema = {"type": "object", "properties": {f: {"type": "string"} for f in fields}, "required": list(fields),
              "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def answer_fields(raw: str, fields: Sequence[str]) -> tuple[dict[str, str], bool]:
    """The string fields of a JSON answer, or of ``FIELD:`` lines; and whether the answer was cut off.

    A JSON answer cut off by the token limit keeps the fields written so far.
    """
    start, end = raw.find("{"), raw.rfind("}")
    if start >= 0:
        try:
            data = json.loads(raw[start:end + 1]) if end > start else None
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return {f: str(data[f]).strip() for f in fields if isinstance(data.get(f), str)}, False
        found: dict[str, str] = {}
        for f in fields:
            match = re.search(rf'"{f}"\s*:\s*"((?:[^"\\]|\\.)*)', raw, re.DOTALL)
            if match:
                try:
                    found[f] = json.loads('"' + match.group(1).rstrip("\\") + '"').strip()
                except json.JSONDecodeError:
                    found[f] = match.group(1).strip()
        if found:
            return found, True
    labels = "|".join(re.escape(f) for f in fields)
    matches = list(re.finditer(rf"^\s*({labels})\s*:\s*", raw, re.IGNORECASE | re.MULTILINE))
    if not matches:
        return ({fields[0]: raw.strip().strip('"').strip()} if len(fields) == 1 else {}), False
    parts: dict[str, str] = {}
    for i, m in enumerate(matches):
        stop = matches[i + 1].start() if i + 1 < len(matches) else len(raw)
        parts.setdefault(m.group(1).lower(), raw[m.end():stop].strip().strip('"').strip())
    return parts, False


def trim_unfinished(text: str, limit: int, *, cut_off: bool) -> str:
    """A text cut at the token limit loses its unfinished last sentence; one over ``limit`` is cut at a sentence."""
    stripped = text.rstrip()
    if cut_off and not re.search(r"[.!?)…]$", stripped):
        parts = sentences(stripped)
        stripped = " ".join(parts[:-1]) if len(parts) > 1 else stripped
    if len(stripped) > limit and "\n" not in stripped:
        cut = fit_length(stripped, limit)
        if not cut.endswith("…"):  # whole sentences only; a mid-sentence cut stays too long and is rejected
            stripped = cut
    return stripped


@dataclass(frozen=True)
class Outcome:
    """The result of a checked generation: the accepted text, or the problems of the last attempt."""

    text: str
    problems: tuple[str, ...]
    attempts: int
    first_problems: tuple[str, ...]
    latency_ms: float

    @property
    def ok(self) -> bool:
        return not self.problems

    def flags(self) -> list[str]:
        if not self.ok:
            return ["fallback: " + "; ".join(self.problems)]
        if self.attempts > 1:
            return ["retried: " + "; ".join(self.first_problems)]
        return []


Check = Callable[[str], tuple[str, list[str]]]


def generate_checked(pipeline: Pipeline, prompts: Prompts, system: Rendered, user: Rendered, check: Check,
                     *, max_tokens: int, response_format: dict[str, Any] | None = None) -> Outcome:
    """Ask the model, check the answer, retry once with the problems fed back; never raise on bad output."""
    settings = pipeline.settings
    result = generate(
        pipeline.chat, [SystemMessage(system.text), HumanMessage(user.text)], check,
        lambda problems: prompts.render("community/retry.j2", error="; ".join(problems)).text,
        max_tokens=max_tokens, response_format=response_format if settings.structured_output else None,
        retry_sampling={"temperature": max(settings.temperature, RETRY_TEMPERATURE)})
    final = result.final
    return Outcome(final.value if result.ok else "", final.problems, len(result.attempts),
                   result.first_problems, result.latency_ms)


def prompts_for(pipeline: Pipeline) -> Prompts:
    """The prompt environment of the pipeline's settings."""
    root = pipeline.settings.prompts_dir
    return load_prompts(str(root) if root else None)


def model_name(pipeline: Pipeline) -> str:
    """A short name of the chat model for the draft record."""
    return chat_model_name(pipeline.chat)


def max_tokens_for(pipeline: Pipeline, limit: int) -> int:
    """Enough tokens for ``limit`` characters (about three characters a token), within the settings' cap."""
    return max(48, min(pipeline.settings.max_tokens, limit // 3 + 24))


class Novelty:
    """Rejects texts too close to each other or to earlier posts: embedding cosine or fuzzy word overlap."""

    def __init__(self, embedder: Any, earlier: Sequence[str] = (), *, cosine: float = NEAR_DUPLICATE_COSINE,
                 fuzzy: float = NEAR_DUPLICATE_FUZZ) -> None:
        self.embedder = embedder
        self.cosine = cosine
        self.fuzzy = fuzzy
        self.texts: list[str] = [t for t in earlier if t.strip()]
        self.vectors = _unit(as_matrix(embedder, self.texts)) if self.texts else np.zeros((0, 1), np.float32)

    def duplicate_of(self, text: str) -> str | None:
        """The earlier text this one nearly repeats, or None."""
        if not self.texts:
            return None
        norm = _normal(text)
        for earlier in self.texts:
            if fuzz.token_sort_ratio(norm, _normal(earlier)) >= self.fuzzy:
                return earlier
        vector = _unit(as_matrix(self.embedder, [text]))[0]
        sims = self.vectors @ vector
        best = int(np.argmax(sims))
        return self.texts[best] if float(sims[best]) >= self.cosine else None

    def problem(self, text: str) -> str | None:
        earlier = self.duplicate_of(text)
        if earlier is None:
            return None
        return f"it is a near-duplicate of an earlier post ({_short(earlier)}); write something different"

    def add(self, text: str) -> None:
        vector = _unit(as_matrix(self.embedder, [text]))
        self.vectors = vector if not self.texts else np.vstack([self.vectors, vector])
        self.texts.append(text)


def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def cluster(vectors: np.ndarray, *, threshold: float) -> list[list[int]]:
    """Groups of rows whose average cosine distance stays under ``threshold``, largest group first."""
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="cosine",
                                     linkage="average").fit_predict(_unit(vectors))
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def keywords(group: Sequence[str], corpus: Sequence[str], k: int = 4) -> list[str]:
    """The words that best set a group of texts apart from the whole corpus (TF-IDF)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = list(corpus) or list(group)
    try:
        vectorizer = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z-]{2,}\b")
        vectorizer.fit(texts)
        weights = np.asarray(vectorizer.transform(list(group)).sum(axis=0)).ravel()
    except ValueError:  # only stop words: nothing to name the group by
        return []
    vocabulary = vectorizer.get_feature_names_out()
    order = np.argsort(-weights)
    return [str(vocabulary[i]) for i in order[:k] if weights[i] > 0]
