"""The incident desk's frozen types: an incident, one affected case, one event of its timeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# open: detected, people are writing in; resolved: marked fixed, the follow-up waits for its approval;
# closed: the follow-up is approved and queued (a late message still joins and gets the follow-up);
# dismissed: not an incident after all (nothing is sent; its cases are answered one by one);
# merged: the same problem as another incident, which took its cases over.
INCIDENT_STATUSES: tuple[str, ...] = ("open", "resolved", "closed", "dismissed", "merged")
PHASES: tuple[str, ...] = ("reply", "followup")  # the holding reply, then the follow-up once resolved


@dataclass(frozen=True)
class Incident:
    """Many customers reporting the same thing at once."""

    id: int
    title: str
    status: str
    keywords: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    detected_at: datetime
    members: int  # affected cases that get the incident's replies
    left_out: int  # affected cases that need their own reply (a crisis, a second problem, personal data...)
    expected: float  # the topic's normal count for a window, when it was detected
    example_case_id: int | None = None
    announcement_id: str | None = None
    reply: dict[str, str] = field(default_factory=dict)  # the holding reply, per language
    reply_drafted_by: str | None = None
    reply_approved_by: str | None = None
    reply_approved_at: datetime | None = None
    followup: dict[str, str] = field(default_factory=dict)  # the follow-up, per language
    followup_announcement_id: str | None = None
    followup_approved_by: str | None = None
    followup_approved_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    merged_into: int | None = None

    @property
    def affected(self) -> int:
        return self.members + self.left_out

    def texts(self, phase: str) -> dict[str, str]:
        return self.reply if phase == "reply" else self.followup

    def approved(self, phase: str) -> bool:
        return (self.reply_approved_at if phase == "reply" else self.followup_approved_at) is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "affected": self.affected}


@dataclass(frozen=True)
class Member:
    """One case affected by an incident, and what it was sent."""

    incident_id: int
    case_id: int
    similarity: float
    joined_at: datetime  # when its message arrived
    left_out: str | None  # why it gets its own reply instead of the incident's (None: it gets them)
    channel: str
    author: str | None
    text: str
    language: str
    case_status: str
    triage: dict[str, Any] = field(default_factory=dict)
    inbound_id: str | None = None  # the message's id on its platform
    reply_item_id: int | None = None
    followup_item_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IncidentEvent:
    """One step of an incident's timeline: detected, drafted, approved, resolved... who and when."""

    at: datetime
    action: str
    actor: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QueuedReport:
    """What one approval queued: an item per case, the cases it had queued before, and the ones left out."""

    incident_id: int
    phase: str
    queued: tuple[int, ...] = ()  # item ids, one per case
    already: int = 0  # cases that had this phase's reply before (a repeated approval adds nothing)
    left_out: tuple[tuple[int, str], ...] = ()  # (case id, why)
    superseded: tuple[int, ...] = ()  # the cases' own pending drafts, rejected in favour of the incident's

    def to_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "phase": self.phase, "queued": list(self.queued),
                "already": self.already, "superseded": list(self.superseded),
                "left_out": [{"case_id": c, "reason": r} for c, r in self.left_out]}
