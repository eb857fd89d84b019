"""The community store: the promoter registry (members, their history, consent) and the FAQ proposals written
into the knowledge base. It owns the ``community_*`` tables and is the only code that runs SQL on them.

The tables live in the queue's database (migration ``0002``), beside the queue's own tables but not among them
(their own ``MetaData``), so an outreach draft and its promoter are on one SQLite file or PostgreSQL server, and
every write checks the actor's role with the queue's users in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from copilot.errors import NotFoundError, UserError
from copilot.queue import tables, users
from copilot.queue.db import reading, writing
from copilot.queue.tables import UTCDateTime

CONSENTS: tuple[str, ...] = ("unknown", "granted", "declined")

metadata = MetaData()

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
    Column("item_id", Integer, ForeignKey(tables.items.c.id), primary_key=True),
    Column("entry_id", String(200), nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("applied_by", String(100), nullable=False),
    Column("applied_at", UTCDateTime(), nullable=False),
)


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


class CommunityStore:
    """Reads and writes the community tables. Handles are registry keys already (``registry.normalise_handle``)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    @classmethod
    def beside(cls, queue: Any) -> CommunityStore:
        """The store in the queue's database, on the queue's clock (read at each write, as the demo moves it)."""
        return cls(queue.engine, lambda: queue.clock())

    # The promoter registry -----------------------------------------------------------------------

    def promoter(self, key: str, *, history: bool = True) -> Promoter | None:
        """One member (with their history of detections, consent, notes and outreach), or None."""
        with reading(self.engine) as conn:
            row = conn.execute(select(promoters).where(promoters.c.handle == key)).mappings().first()
            if row is None:
                return None
            events = []
            if history:
                t = promoter_events
                events = [
                    {"at": r["at"], "action": r["action"], "actor": r["actor"], "item_id": r["item_id"],
                     "detail": dict(r["detail"] or {})}
                    for r in conn.execute(select(t).where(t.c.handle == key).order_by(t.c.id)).mappings()
                ]
        return _promoter(row, events)

    def promoters(self, *, promoters_only: bool = True, limit: int | None = 100) -> list[Promoter]:
        """Members by score, highest first (only detected promoters unless ``promoters_only`` is False)."""
        query = select(promoters).order_by(promoters.c.score.desc(), promoters.c.handle)
        if promoters_only:
            query = query.where(promoters.c.is_promoter.is_(True))
        if limit is not None:
            query = query.limit(max(1, limit))
        with reading(self.engine) as conn:
            return [_promoter(row) for row in conn.execute(query).mappings()]

    def record_scan(self, signals: Sequence[Signals], *, by: str) -> tuple[list[str], list[str]]:
        """Store a scan: insert new members, refresh the counts of known ones; consent is never touched.

        Returns the handles newly detected as promoters and the handles updated.
        """
        now = self.clock()
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

    def set_opt_out(self, key: str, *, display: str, opted_out: bool, by: str, reason: str | None = None) -> None:
        """Record an opt-out (adding an unknown member as ``display``, so no later scan can contact them) or an
        opt-in (NotFoundError for an unknown member)."""
        now = self.clock()
        with writing(self.engine) as conn:
            # Anyone on the team may record an opt-out; taking one back needs an edit right.
            users.require(conn, by, "submit" if opted_out else "edit")
            row = conn.execute(select(promoters.c.handle).where(promoters.c.handle == key)).first()
            if row is None:
                if not opted_out:
                    raise NotFoundError(f"@{key} is not in the promoter registry; nothing to opt in")
                conn.execute(insert(promoters).values(_blank(key, display, now, source="manual")))
            values: dict[str, Any] = {"opted_out": opted_out, "updated_at": now}
            if opted_out:
                values.update(opted_out_at=now, opt_out_reason=(reason or "").strip() or None, consent="declined")
            else:
                values.update(opted_out_at=None, opt_out_reason=None, consent="granted")
            conn.execute(update(promoters).where(promoters.c.handle == key).values(**values))
            _event(conn, key, now, "opt_out" if opted_out else "opt_in", by,
                   detail={"reason": values.get("opt_out_reason")} if opted_out else {})

    def set_consent(self, key: str, consent: str, *, by: str) -> None:
        """Record what the member agreed to; a member who opted out cannot be granted here."""
        if consent not in CONSENTS:
            raise UserError(f"unknown consent {consent!r}; choose one of {', '.join(CONSENTS)}")
        now = self.clock()
        with writing(self.engine) as conn:
            users.require(conn, by, "edit")
            row = conn.execute(select(promoters.c.opted_out).where(promoters.c.handle == key)).first()
            if row is None:
                raise NotFoundError(f"@{key} is not in the promoter registry")
            if row.opted_out and consent == "granted":
                raise UserError(f"@{key} opted out; record their opt-in with `copilot community opt-in` instead")
            conn.execute(update(promoters).where(promoters.c.handle == key).values(consent=consent, updated_at=now))
            _event(conn, key, now, "consent", by, detail={"consent": consent})

    def add_note(self, key: str, note: str, *, by: str) -> None:
        """Append a (non-empty, stripped) note to the member's notes."""
        now = self.clock()
        with writing(self.engine) as conn:
            users.require(conn, by, "edit")
            row = conn.execute(select(promoters.c.notes).where(promoters.c.handle == key)).first()
            if row is None:
                raise NotFoundError(f"@{key} is not in the promoter registry")
            notes = f"{row.notes}\n{note}" if row.notes else note
            conn.execute(update(promoters).where(promoters.c.handle == key).values(notes=notes, updated_at=now))
            _event(conn, key, now, "note", by, detail={"note": note})

    def record_outreach(self, key: str, *, item_id: int, outreach: str, by: str) -> None:
        """Remember that an outreach draft (queue item ``item_id``) was queued for this member."""
        now = self.clock()
        with writing(self.engine) as conn:
            conn.execute(update(promoters).where(promoters.c.handle == key)
                         .values(last_contacted_at=now, updated_at=now))
            _event(conn, key, now, "outreach", by, item_id=item_id, detail={"outreach": outreach})

    def detected_between(self, since: datetime, until: datetime) -> list[str]:
        """The handles detected as promoters in ``[since, until)``, once per detection."""
        t = promoter_events
        with reading(self.engine) as conn:
            return list(conn.execute(select(t.c.handle).where(
                t.c.action == "detected", t.c.at >= since, t.c.at < until).order_by(t.c.id)).scalars())

    # Applied FAQ proposals -----------------------------------------------------------------------

    @contextmanager
    def applying_proposal(self, item_id: int, *, entry_id: str, path: str, by: str) -> Iterator[None]:
        """Record that proposal ``item_id`` is written to ``path`` as ``entry_id``, in a transaction that commits
        only if the ``with`` body (the writing of the file) succeeds. UserError if the proposal was applied
        before or another proposal took the entry id."""
        try:
            with writing(self.engine) as conn:
                users.require(conn, by, "publish")
                conn.execute(insert(applied_proposals).values(item_id=item_id, entry_id=entry_id, path=path,
                                                              applied_by=by, applied_at=self.clock()))
                yield
        except IntegrityError as exc:
            raise UserError(f"proposal {item_id}: already applied, or id {entry_id} is taken by another "
                            "proposal") from exc

    def applied_item_ids(self, among: Iterable[int] | None = None) -> set[int]:
        """The queue items (of those given, or all) whose proposals were written into the knowledge base."""
        a = applied_proposals
        query = select(a.c.item_id)
        if among is not None:
            query = query.where(a.c.item_id.in_(list(among)))
        with reading(self.engine) as conn:
            return set(conn.execute(query).scalars())

    def count_applied_between(self, since: datetime, until: datetime) -> int:
        """How many proposals were written into the knowledge base in ``[since, until)``."""
        a = applied_proposals
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(a).where(
                a.c.applied_at >= since, a.c.applied_at < until)).scalar_one())


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


def _blank(key: str, display: str, now: datetime, *, source: str) -> dict[str, Any]:
    return {
        "handle": key, "display": display.strip() or f"@{key}", "channels": [], "interests": [], "messages": 0,
        "positive": 0, "helpful": 0, "recommendations": 0, "negative": 0, "score": 0.0, "is_promoter": False,
        "source": source, "consent": "unknown", "opted_out": False, "evidence": [], "created_at": now,
        "updated_at": now,
    }


def _event(conn: Connection, handle: str, at: datetime, action: str, actor: str, *, item_id: int | None = None,
           detail: dict[str, Any] | None = None) -> None:
    conn.execute(insert(promoter_events).values(
        handle=handle, at=at, action=action, actor=actor, item_id=item_id, detail=detail or {}))
