"""The project's own small frozen types that flow between stages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

EntryKind = Literal["faq", "fix", "workaround", "policy", "guideline", "announcement"]
ENTRY_KINDS: tuple[str, ...] = ("faq", "fix", "workaround", "policy", "guideline", "announcement")

MessageKind = Literal["complaint", "question", "feedback", "praise", "conversation", "crisis", "spam"]
MESSAGE_KINDS: tuple[str, ...] = ("complaint", "question", "feedback", "praise", "conversation", "crisis", "spam")
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Entry:
    """One knowledge-base entry (a Markdown file or a table row)."""

    id: str
    title: str
    kind: str
    body: str
    official: bool = True
    tags: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    updated: str | None = None
    url: str | None = None
    question: str | None = None
    answer: str | None = None
    source: str = ""
    line: int = 1

    @property
    def text(self) -> str:
        """The searchable text: title or question, then the body."""
        head = self.question or self.title
        return f"{head}\n{self.body}".strip() if head and head not in self.body else self.body


@dataclass(frozen=True)
class Chunk:
    """A piece of an entry as stored in the index; an entry's question stays with its answer."""

    id: str
    entry_id: str
    text: str
    hash: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its scores."""

    id: str  # the entry id: what drafts cite
    chunk_id: str
    title: str
    text: str
    kind: str
    official: bool
    score: float
    dense_score: float = 0.0
    lexical_score: float = 0.0
    url: str | None = None
    tags: tuple[str, ...] = ()
    products: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Retrieval:
    """The outcome of a search: passages, and whether any clears the score floor."""

    query: str
    passages: tuple[Passage, ...]
    grounded: bool
    latency_ms: float

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.passages]


@dataclass(frozen=True)
class Triage:
    """Labels for one inbound message."""

    kind: str
    sentiment: str
    sentiment_score: float  # -1 (very negative) .. 1 (very positive)
    priority: int  # 1 (urgent) .. 4 (low)
    priority_score: float  # 0..100, higher is more urgent; sorts the inbox
    crisis: bool = False  # true only for the "crisis" level: escalated to a trained person
    crisis_reason: str | None = None  # the category: self-harm, overdose, abuse, threat, child at risk,
    # danger: fire / gas / electric / medical, death of a member
    private_info: bool = False
    private_reason: str | None = None
    language: str = "en"
    confidence: float = 0.0
    crisis_level: str | None = None  # "crisis" | "possible" (a person decides; never bulk-approved) | None
    crisis_span: str | None = None  # the customer's words that fired the crisis screen
    crisis_note: str | None = None  # why a screened message is only possible, or was cleared

    @property
    def possible_crisis(self) -> bool:
        """Screened as a possible crisis: first in the inbox, and a person decides."""
        return self.crisis_level == "possible"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Inbound:
    """An inbound message from a customer or community member."""

    text: str
    channel: str = "twitter"
    author: str | None = None
    id: str | None = None
    author_followers: int | None = None
    waiting_minutes: float = 0.0
    # The platform's thread (a Chatwoot conversation, a Discourse topic, an email's root Message-ID): a
    # message in the same thread joins the open case, and its draft sees the earlier turns.
    conversation: str | None = None


@dataclass(frozen=True)
class Turn:
    """One message of a case's thread: from the customer ("in") or a reply we posted ("out")."""

    direction: str
    text: str
    author: str | None = None
    at: datetime | None = None
    platform_id: str | None = None


@dataclass(frozen=True)
class Draft:
    """A drafted message, held for human approval."""

    text: str
    channel: str
    inbound: Inbound
    triage: Triage
    cited_ids: tuple[str, ...]
    retrieved_ids: tuple[str, ...]
    confidence: float
    template: str
    template_hash: str
    latency_ms: float
    status: str = "pending"  # pending | escalated
    needs_attention: bool = False
    knowledge_gap: bool = False
    flags: tuple[str, ...] = ()
    kind: str = "reply"  # reply | starter | outreach | faq_proposal
    model: str = ""
    first_token_ms: float | None = None
    # The reply with the knowledge base's facts in their own language, when the model translated them for
    # the customer: what groundedness is checked against (the embedder reads one language).
    grounding_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TriageStage(Protocol):
    """What the drafter, the CLI and the web app need of a triager (the trained one, or a test's fake)."""

    def triage(self, inbound: Inbound) -> Triage: ...

    def triage_batch(self, inbounds: Sequence[Inbound]) -> list[Triage]: ...
