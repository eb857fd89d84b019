"""The plain, frozen data the UI handlers return: what one screen shows, free of any Gradio type."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from copilot.incidents.records import Incident, IncidentEvent, Member
from copilot.queue.records import AuditEvent, Case, ReviewItem
from copilot.types import Draft, Triage, Turn


@dataclass(frozen=True)
class Account:
    """Who is logged in, what their role lets them see, and whether they must change their password."""

    name: str
    role: str
    screens: tuple[str, ...]
    must_change_password: bool = False


@dataclass(frozen=True)
class Source:
    """A knowledge entry shown next to a draft: cited by it, or only retrieved for it."""

    id: str
    title: str
    kind: str
    official: bool
    cited: bool
    excerpt: str
    url: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class DraftResult:
    """A fresh draft (not yet in the queue) with the entries it rests on."""

    draft: Draft
    sources: tuple[Source, ...]
    inbound_id: str
    spam_case_id: int | None = None  # a message skipped as spam is kept as a case, found under the spam filter


@dataclass(frozen=True)
class InboxRow:
    """One unresolved case in the inbox."""

    case_id: int
    status: str  # the case's: open | waiting
    item_id: int | None
    item_status: str | None
    crisis: bool
    priority: int
    channel: str
    author: str | None
    text: str
    waiting_s: float
    owner: str | None
    kind: str | None = None
    crisis_level: str | None = None  # "crisis" | "possible" | None
    crisis_reason: str | None = None
    crisis_span: str | None = None
    spam: bool = False  # triaged as spam, with no reply drafted: shown only under the spam filter


@dataclass(frozen=True)
class CaseView:
    """A case and its queue items, for picking it up again in the reply form."""

    case: Case
    items: tuple[ReviewItem, ...]
    thread: tuple[Turn, ...] = ()  # every message of the case, in order


@dataclass(frozen=True)
class DiffPart:
    """A run of text that is the same, removed or added between the draft and its current text."""

    op: str  # equal | delete | insert
    text: str


@dataclass(frozen=True)
class ReviewDetail:
    """Everything a reviewer needs on one item: text, sources, triage, the edit's diff, the audit trail."""

    item: ReviewItem
    sources: tuple[Source, ...]
    diff: tuple[DiffPart, ...]
    audit: tuple[AuditEvent, ...]
    triage: dict[str, Any] = field(default_factory=dict)
    thread: tuple[Turn, ...] = ()  # the conversation of the item's case, in order

    @property
    def edited(self) -> bool:
        return self.item.text != self.item.original_text


@dataclass(frozen=True)
class Gap:
    """A question the knowledge base could not answer, with how often it was asked."""

    text: str
    count: int
    last_seen: str
    channel: str
    best_id: str | None = None
    best_score: float | None = None


def triage_of(data: dict[str, Any]) -> Triage | None:
    """A stored triage dict as a :class:`Triage` (None when it is missing or incomplete)."""
    try:
        return Triage(**{k: v for k, v in data.items() if k in Triage.__dataclass_fields__})
    except TypeError:
        return None


def seconds_since(when: datetime | None, now: datetime) -> float:
    if when is None:
        return 0.0
    if when.tzinfo is None:  # SQLite hands back naive UTC datetimes
        now = now.replace(tzinfo=None)
    return max(0.0, (now - when).total_seconds())


@dataclass(frozen=True)
class Step:
    """One thing to do when setting up the app, whether it is done, and where in the app to do it."""

    key: str
    title: str
    done: bool
    how: str


@dataclass(frozen=True)
class IncidentDetail:
    """One incident as its screen shows it: the affected cases, a few examples, the timeline, the incidents
    that may be the same problem, the numbers, and the languages a reply needs a text in."""

    incident: Incident
    members: tuple[Member, ...]
    examples: tuple[Member, ...]
    timeline: tuple[IncidentEvent, ...]
    related: tuple[tuple[Incident, float], ...]
    insights: dict[str, Any]
    languages: dict[str, tuple[str, ...]]  # per phase: the languages to show a text box for
    can_act: bool  # a reviewer or admin: drafts, approves, resolves, dismisses and merges
    others: tuple[Incident, ...] = ()  # the other live incidents, not found alike (another language, say)
