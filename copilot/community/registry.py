"""The promoter registry: who our promoters are, what they care about, what we did with them, and consent.

The tables live in the queue database (migration ``0002``), so the registry is on SQLite or PostgreSQL
exactly like the queue, and an outreach draft and its promoter are in one place.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from copilot.errors import NotFoundError, UserError
from copilot.queue import users
from copilot.queue.db import reading, writing
from copilot.queue.tables import UTCDateTime, metadata

CONSENTS: tuple[str, ...] = ("unknown", "granted", "declined")

promoters = Table(
    "community_promoters",
    metadata,
    Column("handle", String(200), primary_key=True),
    Column("display", String(200), nullable=False),
    Column("channels", JSON, nullable=False),
    Column("interests", JSON, nullable=False),
    Column("messages", Integer, nullable=False),
    Column("positive", Integer, nullable=False),
    Column("helpful", Integer, nullable=False),
    Column("recommendations", Integer, nullable=False),
    Column("negative", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("is_promoter", Boolean, nullable=False),
    Column("source", String(16), nullable=False),
    Column("consent", String(16), nullable=False),
    Column("opted_out", Boolean, nullable=False),
    Column("opted_out_at", UTCDateTime()),
    Column("opt_out_reason", Text),
    Column("evidence", JSON, nullable=False),
    Column("notes", Text),
    Column("first_seen", UTCDateTime()),
    Column("last_seen", UTCDateTime()),
    Column("last_contacted_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_community_promoters_score", "is_promoter", "score"),
)

promoter_events = Table(
    "community_promoter_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("handle", String(200), ForeignKey("community_promoters.handle"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("action", String(24), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("item_id", Integer),
    Column("detail", JSON, nullable=False),
    Index("ix_community_promoter_events_handle", "handle", "id"),
)

applied_proposals = Table(
    "community_applied_proposals",
    metadata,
    Column("item_id", Integer, ForeignKey("queue_items.id"), primary_key=True),
    Column("entry_id", String(200), nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("applied_by", String(100), nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
)


def normalise_handle(handle: str | None) -> str:
    """The registry key of a handle: no ``@``, lower case; a clear error when there is none."""
    key = (handle or "").strip().lstrip("@").strip().lower()
    if not key or any(ch.isspace() for ch in key):
        raise UserError(f"invalid handle {handle!r}: give one handle such as @sam_lights")
    return key


@dataclass(frozen=True)
class Promoter:
    """One member in the registry, with the signals that made them a promoter and their consent."""

    handle: str
    display: str
    channels: tuple[str, ...] = ()
    interests: tuple[str, ...] = ()
    messages: int = 0
    positive: int = 0
    helpful: int = 0
    recommendations: int = 0
    negative: int = 0
    score: float = 0.0
    is_promoter: bool = False
    source: str = "detected"
    consent: str = "unknown"
    opted_out: bool = False
    opted_out_at: datetime | None = None
    opt_out_reason: str | None = None
    evidence: tuple[dict[str, Any], ...] = ()
    notes: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_contacted_at: datetime | None = None
    history: tuple[dict[str, Any], ...] = field(default=())

    @property
    def contactable(self) -> bool:
        """Whether outreach may be drafted at all."""
        return not self.opted_out and self.consent != "declined"

    @property
    def main_channel(self) -> str:
        return self.channels[0] if self.channels else "forum"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["contactable"] = self.contactable
        return data


def _promoter(row: Mapping[Any, Any], history: list[dict[str, Any]] | None = None) -> Promoter:
    return Promoter(
        handle=row["handle"], display=row["display"], channels=tuple(row["channels"] or ()),
        interests=tuple(row["interests"] or ()), messages=row["messages"], positive=row["positive"],
        helpful=row["helpful"], recommendations=row["recommendations"], negative=row["negative"],
        score=row["score"], is_promoter=bool(row["is_promoter"]), source=row["source"], consent=row["consent"],
        opted_out=bool(row["opted_out"]), opted_out_at=row["opted_out_at"], opt_out_reason=row["opt_out_reason"],
        evidence=tuple(row["evidence"] or ()), notes=row["notes"], first_seen=row["first_seen"],
        last_seen=row["last_seen"], last_contacted_at=row["last_contacted_at"], history=tuple(history or ()),
    )


@dataclass(frozen=True)
class Signals:
    """What a scan of the history found about one author."""

    handle: str
    display: str
    channels: tuple[str, ...]
    interests: tuple[str, ...]
    messages: int
    positive: int
    helpful: int
    recommendations: int
    negative: int
    score: float
    is_promoter: bool
    evidence: tuple[dict[str, Any], ...]
    first_seen: datetime | None
    last_seen: datetime | None


class Registry:
    """Reads and writes the promoter tables through the queue's engine."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.engine = queue.engine

    def _now(self) -> datetime:
        now: datetime = self.queue.clock()
        return now

    def get(self, handle: str, *, history: bool = True) -> Promoter:
        """One member, or NotFoundError naming how to add them."""
        key = normalise_handle(handle)
        with reading(self.engine) as conn:
            row = conn.execute(select(promoters).where(promoters.c.handle == key)).mappings().first()
            if row is None:
                raise NotFoundError(
                    f"@{key} is not in the promoter registry: run `copilot community promoters --scan` to detect "
                    "promoters from the conversation history")
            events = []
            if history:
                t = promoter_events
                events = [
                    {"at": r["at"], "action": r["action"], "actor": r["actor"], "item_id": r["item_id"],
                     "detail": dict(r["detail"] or {})}
                    for r in conn.execute(select(t).where(t.c.handle == key).order_by(t.c.id)).mappings()
                ]
        return _promoter(row, events)

    def find(self, handle: str) -> Promoter | None:
        """One member, or None."""
        try:
            return self.get(handle, history=False)
        except NotFoundError:
            return None

    def list(self, *, promoters_only: bool = True, limit: int = 100) -> list[Promoter]:
        """Members by score, highest first (only detected promoters unless ``promoters_only`` is False)."""
        query = select(promoters).order_by(promoters.c.score.desc(), promoters.c.handle)
        if promoters_only:
            query = query.where(promoters.c.is_promoter.is_(True))
        with reading(self.engine) as conn:
            return [_promoter(row) for row in conn.execute(query.limit(max(1, limit))).mappings()]

    def record(self, signals: Sequence[Signals], *, by: str) -> tuple[builtins.list[str], builtins.list[str]]:
        """Store a scan: insert new members, refresh the counts of known ones; consent is never touched.

        Returns the handles newly detected as promoters and the handles updated.
        """
        now = self._now()
        new: list[str] = []
        updated: list[str] = []
        with writing(self.engine) as conn:
            users.require(conn, by, "submit")
            existing = {
                row["handle"]: row for row in conn.execute(
                    select(promoters).where(promoters.c.handle.in_([s.handle for s in signals]))).mappings()
            } if signals else {}
            for s in signals:
                values = {
                    "display": s.display, "channels": list(s.channels), "interests": list(s.interests),
                    "messages": s.messages, "positive": s.positive, "helpful": s.helpful,
                    "recommendations": s.recommendations, "negative": s.negative, "score": s.score,
                    "is_promoter": s.is_promoter, "evidence": list(s.evidence), "first_seen": s.first_seen,
                    "last_seen": s.last_seen, "updated_at": now,
                }
                row = existing.get(s.handle)
                if row is None:
                    conn.execute(insert(promoters).values(
                        handle=s.handle, source="detected", consent="unknown", opted_out=False, created_at=now,
                        **values))
                else:
                    conn.execute(update(promoters).where(promoters.c.handle == s.handle).values(**values))
                if s.is_promoter and (row is None or not row["is_promoter"]):
                    new.append(s.handle)
                    _event(conn, s.handle, now, "detected", by, detail={
                        "score": s.score, "positive": s.positive, "helpful": s.helpful,
                        "recommendations": s.recommendations})
                elif row is not None:
                    updated.append(s.handle)
        return new, updated

    def set_opt_out(self, handle: str, *, opted_out: bool, by: str, reason: str | None = None) -> Promoter:
        """Record an opt-out (creating the member if unknown, so no later scan can contact them) or an opt-in."""
        key = normalise_handle(handle)
        now = self._now()
        with writing(self.engine) as conn:
            # Anyone on the team may record an opt-out; taking one back needs an edit right.
            users.require(conn, by, "submit" if opted_out else "edit")
            row = conn.execute(select(promoters).where(promoters.c.handle == key)).mappings().first()
            if row is None:
                if not opted_out:
                    raise NotFoundError(f"@{key} is not in the promoter registry; nothing to opt in")
                conn.execute(insert(promoters).values(_blank(key, handle, now, source="manual")))
            values: dict[str, Any] = {"opted_out": opted_out, "updated_at": now}
            if opted_out:
                values.update(opted_out_at=now, opt_out_reason=(reason or "").strip() or None, consent="declined")
            else:
                values.update(opted_out_at=None, opt_out_reason=None, consent="granted")
            conn.execute(update(promoters).where(promoters.c.handle == key).values(**values))
            _event(conn, key, now, "opt_out" if opted_out else "opt_in", by,
                   detail={"reason": values.get("opt_out_reason")} if opted_out else {})
        return self.get(key)

    def set_consent(self, handle: str, consent: str, *, by: str) -> Promoter:
        """Record what the member agreed to (``granted``, ``declined`` or back to ``unknown``)."""
        if consent not in CONSENTS:
            raise UserError(f"unknown consent {consent!r}; choose one of {', '.join(CONSENTS)}")
        key = normalise_handle(handle)
        now = self._now()
        with writing(self.engine) as conn:
            users.require(conn, by, "edit")
            row = conn.execute(select(promoters.c.opted_out).where(promoters.c.handle == key)).first()
            if row is None:
                raise NotFoundError(f"@{key} is not in the promoter registry")
            if row.opted_out and consent == "granted":
                raise UserError(f"@{key} opted out; record their opt-in with `copilot community opt-in` instead")
            conn.execute(update(promoters).where(promoters.c.handle == key).values(consent=consent, updated_at=now))
            _event(conn, key, now, "consent", by, detail={"consent": consent})
        return self.get(key)

    def add_note(self, handle: str, note: str, *, by: str) -> Promoter:
        """Append a free-text note from the community team."""
        note = (note or "").strip()
        if not note:
            raise UserError("the note is empty")
        key = normalise_handle(handle)
        now = self._now()
        with writing(self.engine) as conn:
            users.require(conn, by, "edit")
            row = conn.execute(select(promoters.c.notes).where(promoters.c.handle == key)).first()
            if row is None:
                raise NotFoundError(f"@{key} is not in the promoter registry")
            notes = f"{row.notes}\n{note}" if row.notes else note
            conn.execute(update(promoters).where(promoters.c.handle == key).values(notes=notes, updated_at=now))
            _event(conn, key, now, "note", by, detail={"note": note})
        return self.get(key)

    def record_outreach(self, handle: str, *, item_id: int, outreach: str, by: str) -> None:
        """Remember that an outreach draft was queued for this member."""
        key = normalise_handle(handle)
        now = self._now()
        with writing(self.engine) as conn:
            conn.execute(update(promoters).where(promoters.c.handle == key)
                         .values(last_contacted_at=now, updated_at=now))
            _event(conn, key, now, "outreach", by, item_id=item_id, detail={"outreach": outreach})


def _blank(key: str, display: str, now: datetime, *, source: str) -> dict[str, Any]:
    return {
        "handle": key, "display": display.strip() or f"@{key}", "channels": [], "interests": [], "messages": 0,
        "positive": 0, "helpful": 0, "recommendations": 0, "negative": 0, "score": 0.0, "is_promoter": False,
        "source": source, "consent": "unknown", "opted_out": False, "evidence": [], "created_at": now,
        "updated_at": now,
    }


def _event(conn: Any, handle: str, at: datetime, action: str, actor: str, *, item_id: int | None = None,
           detail: dict[str, Any] | None = None) -> None:
    conn.execute(insert(promoter_events).values(
        handle=handle, at=at, action=action, actor=actor, item_id=item_id, detail=detail or {}))
