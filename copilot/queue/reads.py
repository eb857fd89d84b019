"""Reading the queue: items, cases and the audit trail, for reviewers and for the community drafting, the tone
examples and the insights report. Read-only transactions; every answer is a record, never a row.

``ReviewQueue`` inherits these, so callers ask the queue (``pipeline.queue.items_drafted(...)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, select

from copilot.errors import UserError
from copilot.queue import tables
from copilot.queue.db import reading
from copilot.queue.records import (
    APPROVED_STATUSES,
    CASE_STATUSES,
    ITEM_KINDS,
    ITEM_STATUSES,
    AuditEvent,
    Case,
    ReviewItem,
)
from copilot.queue.rows import case_from_row, event_from_row, item_from_row, load_case, load_row
from copilot.types import Inbound, Turn


class QueueReads:
    """The queue's read-only queries (a mixin of ``ReviewQueue``, which supplies the engine)."""

    engine: Engine

    # For reviewers -------------------------------------------------------------------------------

    def get(self, item_id: int) -> ReviewItem:
        """One item, or NotFoundError."""
        with reading(self.engine) as conn:
            return item_from_row(load_row(conn, item_id))

    def list_items(
        self, status: str | Iterable[str] | None = None, kind: str | None = None, limit: int = 100
    ) -> list[ReviewItem]:
        """Items by urgency: escalated first, then priority (1 is most urgent), then longest waiting."""
        statuses = _statuses(status)
        _check_kind(kind)
        t = tables.items
        query = select(t).order_by(
            case((t.c.status == "escalated", 0), else_=1), t.c.priority, t.c.received_at, t.c.id
        )
        if statuses:
            query = query.where(t.c.status.in_(statuses))
        if kind is not None:
            query = query.where(t.c.kind == kind)
        with reading(self.engine) as conn:
            return [item_from_row(row) for row in conn.execute(query.limit(max(1, limit))).mappings()]

    def audit(self, item_id: int) -> list[AuditEvent]:
        """Every action on an item, oldest first."""
        t = tables.audit
        with reading(self.engine) as conn:
            load_row(conn, item_id)
            rows = conn.execute(select(t).where(t.c.item_id == item_id).order_by(t.c.id)).mappings()
            return [event_from_row(row) for row in rows]

    def get_case(self, case_id: int) -> Case:
        """One case, or NotFoundError."""
        with reading(self.engine) as conn:
            return case_from_row(load_case(conn, case_id))

    def list_cases(self, status: str | None = None, limit: int = 100) -> list[Case]:
        """Cases, unresolved and most urgent first, then longest waiting."""
        if status is not None and status not in CASE_STATUSES:
            raise UserError(f"unknown case status {status!r}; statuses: {', '.join(CASE_STATUSES)}")
        t = tables.cases
        query = select(t).order_by(case((t.c.status == "resolved", 1), else_=0), t.c.priority, t.c.received_at)
        if status is not None:
            query = query.where(t.c.status == status)
        with reading(self.engine) as conn:
            return [case_from_row(row) for row in conn.execute(query.limit(max(1, limit))).mappings()]

    def thread(self, case_id: int) -> list[Turn]:
        """A case's messages in order: what the customer wrote and what we posted."""
        m = tables.messages
        with reading(self.engine) as conn:
            load_case(conn, case_id)
            rows = conn.execute(select(m).where(m.c.case_id == case_id).order_by(m.c.at, m.c.id)).mappings()
            return [_turn(row) for row in rows]

    def history_for(self, inbound: Inbound, *, limit: int = 12) -> list[Turn]:
        """The conversation a message belongs to, so far: its thread's case, or the case its id opened before
        (a case opened again in the web app); empty for a new message."""
        if inbound.conversation:
            return self.thread_for(inbound.channel, inbound.conversation, limit=limit)
        return self.thread_of_message(inbound.channel, inbound.id, limit=limit)

    def thread_of_message(self, channel: str, inbound_id: str | None, *, limit: int = 12) -> list[Turn]:
        """The last ``limit`` messages of the case a message id belongs to (empty for a new message)."""
        if not inbound_id:
            return []
        c = tables.cases
        with reading(self.engine) as conn:
            case_id = conn.execute(select(c.c.id).where(c.c.channel == channel, c.c.inbound_id == inbound_id)).scalar()
        return self.thread(int(case_id))[-max(1, limit):] if case_id is not None else []

    def thread_for(self, channel: str, conversation: str | None, *, limit: int = 12) -> list[Turn]:
        """The last ``limit`` messages of a conversation's case (empty for a new conversation or none)."""
        if not conversation:
            return []
        c, m = tables.cases, tables.messages
        with reading(self.engine) as conn:
            case_id = conn.execute(select(c.c.id).where(c.c.channel == channel, c.c.conversation == conversation)
                                   .order_by(c.c.id.desc()).limit(1)).scalar()
            if case_id is None:
                return []
            rows = conn.execute(select(m).where(m.c.case_id == case_id).order_by(m.c.at.desc(), m.c.id.desc())
                                .limit(max(1, limit))).mappings()
            return [_turn(row) for row in reversed(list(rows))]

    # For the community drafting and the report ---------------------------------------------------

    def count_items(self) -> int:
        """How many items the queue holds, of every kind and status."""
        with reading(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(tables.items)).scalar_one())

    def items_drafted(
        self, *, kind: str | None = None, since: datetime | None = None, until: datetime | None = None,
        statuses: Sequence[str] | None = None, newest_first: bool = False, limit: int | None = None,
    ) -> list[ReviewItem]:
        """Items drafted in ``[since, until)`` (either end open when None), of one kind and some statuses
        (every one when None), oldest first unless ``newest_first``."""
        _check_kind(kind)
        t = tables.items
        query = select(t)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        if since is not None:
            query = query.where(t.c.drafted_at >= since)
        if until is not None:
            query = query.where(t.c.drafted_at < until)
        if statuses is not None:
            query = query.where(t.c.status.in_(_checked_statuses(statuses)))
        order = (t.c.drafted_at.desc(), t.c.id.desc()) if newest_first else (t.c.drafted_at, t.c.id)
        query = query.order_by(*order)
        if limit is not None:
            query = query.limit(max(1, limit))
        with reading(self.engine) as conn:
            return [item_from_row(row) for row in conn.execute(query).mappings()]

    def approved_items(
        self, kind: str, *, since: datetime | None = None, among: Iterable[int] | None = None
    ) -> list[ReviewItem]:
        """Items of one kind a person approved (posted or not), approved at ``since`` or later, optionally only
        those with the given ids; in the order they were approved."""
        _check_kind(kind)
        t = tables.items
        query = select(t).where(t.c.kind == kind, t.c.status.in_(APPROVED_STATUSES))
        if since is not None:
            query = query.where(t.c.approved_at >= since)
        if among is not None:
            query = query.where(t.c.id.in_(list(among)))
        with reading(self.engine) as conn:
            return [item_from_row(row) for row in conn.execute(query.order_by(t.c.approved_at, t.c.id)).mappings()]

    def approved_summary(self, kind: str) -> tuple[int, datetime | None]:
        """How many items of one kind were approved, and the latest approval (a cheap change marker)."""
        _check_kind(kind)
        t = tables.items
        with reading(self.engine) as conn:
            row = conn.execute(select(func.count(), func.max(t.c.approved_at)).where(
                t.c.kind == kind, t.c.status.in_(APPROVED_STATUSES))).one()
        return int(row[0]), row[1]

    def items_by_author(self, kind: str, authors: Iterable[str]) -> list[ReviewItem]:
        """Items of one kind whose author is one of ``authors`` (case-insensitive), oldest first."""
        _check_kind(kind)
        t = tables.items
        names = [a.lower() for a in authors]
        query = select(t).where(t.c.kind == kind, func.lower(t.c.author).in_(names)).order_by(t.c.id)
        with reading(self.engine) as conn:
            return [item_from_row(row) for row in conn.execute(query).mappings()]

    def find_item(self, *, kind: str, author: str | None, drafted_at: datetime) -> ReviewItem:
        """The one item of a kind by an author drafted at an exact time (NoResultFound/MultipleResultsFound
        unless there is exactly one)."""
        _check_kind(kind)
        t = tables.items
        query = select(t).where(t.c.kind == kind, t.c.author == author, t.c.drafted_at == drafted_at)
        with reading(self.engine) as conn:
            return item_from_row(conn.execute(query).mappings().one())

    def posted_replies(self, case_ids: Sequence[int]) -> list[ReviewItem]:
        """The posted reply items of these cases."""
        if not case_ids:
            return []
        t = tables.items
        query = select(t).where(t.c.kind == "reply", t.c.posted_at.is_not(None), t.c.case_id.in_(list(case_ids)))
        with reading(self.engine) as conn:
            return [item_from_row(row) for row in conn.execute(query.order_by(t.c.id)).mappings()]

    def cases_received(
        self, *, since: datetime | None = None, until: datetime | None = None, authored: bool = False,
        newest_first: bool = False, limit: int | None = None,
    ) -> list[Case]:
        """Cases whose message arrived in ``[since, until)`` (either end open when None), only those with an
        author if ``authored``; oldest first unless ``newest_first``."""
        c = tables.cases
        query = select(c)
        if since is not None:
            query = query.where(c.c.received_at >= since)
        if until is not None:
            query = query.where(c.c.received_at < until)
        if authored:
            query = query.where(c.c.author.is_not(None))
        order = (c.c.received_at.desc(), c.c.id.desc()) if newest_first else (c.c.received_at, c.c.id)
        query = query.order_by(*order)
        if limit is not None:
            query = query.limit(max(1, limit))
        with reading(self.engine) as conn:
            return [case_from_row(row) for row in conn.execute(query).mappings()]


def _statuses(status: str | Iterable[str] | None) -> list[str]:
    if status is None:
        return []
    wanted = [s.strip() for s in status.split(",")] if isinstance(status, str) else list(status)
    wanted = [s for s in wanted if s and s != "all"]
    for name in wanted:
        if name not in ITEM_STATUSES:
            raise UserError(f"unknown status {name!r}; statuses: {', '.join(ITEM_STATUSES)}")
    return wanted


def _checked_statuses(statuses: Iterable[str]) -> list[str]:
    wanted = list(statuses)
    for name in wanted:
        if name not in ITEM_STATUSES:
            raise UserError(f"unknown status {name!r}; statuses: {', '.join(ITEM_STATUSES)}")
    return wanted


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in ITEM_KINDS:
        raise UserError(f"unknown kind {kind!r}; kinds: {', '.join(ITEM_KINDS)}")


def _turn(row: Mapping[Any, Any]) -> Turn:
    return Turn(direction=row["direction"], text=row["text"], author=row["author"], at=row["at"],
                platform_id=row["platform_id"])
