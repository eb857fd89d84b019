"""The review queue's own frozen types and its state machine: what may move where, and who may move it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

ITEM_KINDS: tuple[str, ...] = ("reply", "starter", "outreach", "faq_proposal")
ITEM_STATUSES: tuple[str, ...] = ("pending", "escalated", "approved", "rejected", "posting", "posted", "failed")
CASE_STATUSES: tuple[str, ...] = ("open", "waiting", "resolved")
# A person approved these (posted, being posted, or waiting for the publisher to retry).
APPROVED_STATUSES: tuple[str, ...] = ("approved", "posting", "posted", "failed")
ROLES: tuple[str, ...] = ("agent", "reviewer", "admin")
EVERY_ROLE = frozenset(ROLES)
LEAD_ROLES = frozenset({"reviewer", "admin"})  # who reviews and publishes, in the web app and the API

# Audit actions. "draft" creates an item; "publish" claims it for posting; "post" and "failure" record
# the outcome; "assign" changes no status.
ACTIONS: tuple[str, ...] = ("draft", "edit", "approve", "reject", "reopen", "assign", "publish", "post", "failure")

# Which statuses each action may start from, and where it leads (None: the status does not change).
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "edit": (("pending", "escalated"), None),
    "approve": (("pending", "escalated"), "approved"),
    "reject": (("pending", "escalated"), "rejected"),
    "reopen": (("rejected",), "pending"),
    # A publisher claims an approved item, retries a failed one, or recovers one whose publisher died.
    "publish": (("approved", "failed", "posting"), "posting"),
    "post": (("posting",), "posted"),
    "failure": (("posting",), "failed"),
}

# Who may do what. An admin may do everything; "assign" by an agent is limited to themselves (store).
PERMISSIONS: dict[str, frozenset[str]] = {
    "submit": frozenset({"agent", "reviewer", "admin"}),
    "edit": frozenset({"agent", "reviewer", "admin"}),
    "assign": frozenset({"agent", "reviewer", "admin"}),
    "approve": frozenset({"reviewer", "admin"}),
    "reject": frozenset({"reviewer", "admin"}),
    "reopen": frozenset({"reviewer", "admin"}),
    "publish": frozenset({"reviewer", "admin"}),
    "users": frozenset({"admin"}),
}


def crisis_level_of(triage: dict[str, Any]) -> str | None:
    """A stored triage's crisis level: "crisis", "possible" or None (triage from before levels: its flag)."""
    level = triage.get("crisis_level")
    if triage.get("crisis") or level == "crisis":
        return "crisis"
    return "possible" if level == "possible" else None


class _CrisisFields:
    """The crisis screen's verdict, read from the stored triage of an item or a case."""

    triage: dict[str, Any]

    @property
    def crisis_level(self) -> str | None:
        return crisis_level_of(self.triage)

    @property
    def crisis_reason(self) -> str | None:
        return self.triage.get("crisis_reason") if self.crisis_level else None

    @property
    def crisis_span(self) -> str | None:
        return self.triage.get("crisis_span")

    @property
    def crisis_note(self) -> str | None:
        return self.triage.get("crisis_note")


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


@dataclass(frozen=True)
class ReviewItem(_CrisisFields):
    """One drafted message in the queue, as a reviewer sees it."""

    id: int
    kind: str
    status: str
    text: str
    original_text: str
    channel: str
    author: str | None
    priority: int
    priority_score: float
    version: int
    case_id: int | None = None
    inbound_id: str | None = None
    inbound_text: str = ""
    assignee: str | None = None
    drafted_by: str = ""
    edited_by: str | None = None
    approved_by: str | None = None
    received_at: datetime | None = None
    drafted_at: datetime | None = None
    approved_at: datetime | None = None
    rejected_at: datetime | None = None
    posted_at: datetime | None = None
    reject_reason: str | None = None
    edit_distance: int | None = None
    idempotency_key: str | None = None
    attempts: int = 0
    error: str | None = None
    external_id: str | None = None
    triage: dict[str, Any] = field(default_factory=dict)
    draft: dict[str, Any] = field(default_factory=dict)

    @property
    def response_time_s(self) -> float | None:
        """Seconds from the inbound message to the posted reply."""
        return _seconds(self.received_at, self.posted_at)

    @property
    def review_time_s(self) -> float | None:
        """Seconds from the draft to its approval."""
        return _seconds(self.drafted_at, self.approved_at)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["response_time_s"] = self.response_time_s
        data["review_time_s"] = self.review_time_s
        data.update(crisis_level=self.crisis_level, crisis_reason=self.crisis_reason, crisis_span=self.crisis_span)
        return data


@dataclass(frozen=True)
class Case(_CrisisFields):
    """An inbound message and everything done about it: open until answered, with an owner."""

    id: int
    channel: str
    author: str | None
    text: str
    status: str
    owner: str | None
    priority: int
    received_at: datetime
    inbound_id: str | None = None
    resolved_at: datetime | None = None
    triage: dict[str, Any] = field(default_factory=dict)
    conversation: str | None = None  # the platform's thread; its messages are ``ReviewQueue.thread(id)``

    @property
    def time_to_resolve_s(self) -> float | None:
        """Seconds from the inbound message to the posted answer."""
        return _seconds(self.received_at, self.resolved_at)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["time_to_resolve_s"] = self.time_to_resolve_s
        data.update(crisis_level=self.crisis_level, crisis_reason=self.crisis_reason, crisis_span=self.crisis_span)
        return data


@dataclass(frozen=True)
class AuditEvent:
    """One action on a queue item: who, when, from which status to which, and the text before and after."""

    id: int
    item_id: int
    action: str
    actor: str
    at: datetime
    from_status: str | None
    to_status: str | None
    version: int
    before_text: str | None = None
    after_text: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class User:
    """Someone who may act on the queue."""

    name: str
    role: str
    has_password: bool
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ApiToken:
    """An HTTP API token of one user (only its hash is stored; the token itself is shown once, when made)."""

    id: int
    user: str
    role: str
    label: str | None
    created_at: datetime
    created_by: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


@dataclass(frozen=True)
class PublishReport:
    """What one ``publish`` run did: posted ids, failures with their errors, and items it could not claim."""

    posted: tuple[int, ...] = ()
    failed: tuple[tuple[int, str], ...] = ()
    duplicates: tuple[int, ...] = ()  # posted before (crash recovery): recorded, not sent again
    skipped: tuple[int, ...] = ()  # sent, but another publisher took the claim over and records it

    def to_dict(self) -> dict[str, Any]:
        return {
            "posted": list(self.posted),
            "failed": [{"id": item_id, "error": error} for item_id, error in self.failed],
            "duplicates": list(self.duplicates),
            "skipped": list(self.skipped),
        }


@dataclass(frozen=True)
class TakenIn:
    """What became of a message a connector received: its queue item and case (spam: a case alone), or a
    duplicate of a delivery taken in before."""

    item: ReviewItem | None = None
    case: Case | None = None
    duplicate: bool = False
