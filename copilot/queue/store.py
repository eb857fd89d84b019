"""The review queue: drafts wait here for a person to approve, edit or reject them; every action is audited.

Optimistic locking: every change names the version it was based on; a stale version is a
:class:`ConflictError` and changes nothing. Roles and the four-eyes rule are enforced here, not in the
callers, so the CLI and the UI behave the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from rapidfuzz.distance import Levenshtein
from sqlalchemy import Connection, CursorResult, Engine, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from copilot.config import Settings
from copilot.errors import ConflictError, NotFoundError, PermissionDenied, UserError
from copilot.queue import tables, users
from copilot.queue.db import IMPORT_LOCK, build_engine, exclusive, migrate, reading, writing
from copilot.queue.publish import Publisher
from copilot.queue.records import (
    CASE_STATUSES,
    ITEM_KINDS,
    ITEM_STATUSES,
    TRANSITIONS,
    AuditEvent,
    Case,
    PublishReport,
    ReviewItem,
    User,
    crisis_level_of,
)
from copilot.types import Draft

IMPORT_ACTOR = "import"  # the actor recorded for drafts moved in from pending.jsonl

Clock = Callable[[], datetime]
Row = Mapping[Any, Any]  # a database row as a mapping


def _utcnow() -> datetime:
    return datetime.now(UTC)


def requires_individual_decision(item: ReviewItem) -> bool:
    """Whether a person must decide this item on its own: a crisis or a possible crisis (by its triage), or
    anything escalated. Any path that approves or rejects more than one item at a time must leave these out."""
    return item.status == "escalated" or crisis_level_of(item.triage) is not None


def open_queue(settings: Settings, *, clock: Clock | None = None, import_pending: bool = True) -> ReviewQueue:
    """Open (and create or migrate) the queue named by the settings; move in any ``pending.jsonl`` once."""
    from copilot.queue.pending import import_pending_file

    engine = build_engine(settings)
    migrate(engine)
    queue = ReviewQueue(engine, settings, clock=clock)
    if import_pending:
        import_pending_file(queue, settings.data_dir / "pending.jsonl")
    return queue


class ReviewQueue:
    """Cases and queue items in a database, with the actions people take on them."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock or _utcnow

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Users ---------------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, *, password: str | None = None, by: str | None = None) -> User:
        """Add a user (the first must be an admin; later ones need an admin ``by``)."""
        with writing(self.engine) as conn:
            return users.add_user(conn, name, role, password=password, by=by)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with reading(self.engine) as conn:
            return users.list_users(conn)

    def role_of(self, name: str) -> str | None:
        """A user's role, or None if unknown."""
        with reading(self.engine) as conn:
            return users.role_of(conn, name)

    def verify_password(self, name: str, password: str) -> str | None:
        """The user's role if the password is right, else None."""
        with reading(self.engine) as conn:
            return users.verify_password(conn, name, password)

    def set_password(self, name: str, password: str, *, by: str) -> None:
        """Set a login password (your own, or anyone's as an admin)."""
        with writing(self.engine) as conn:
            users.set_password(conn, name, password, by=by)

    # Drafts in -----------------------------------------------------------------------------------

    def submit(self, draft: Draft, *, by: str) -> ReviewItem:
        """Put a draft in the queue (pending, or escalated for a crisis), opening its case."""
        data = draft.to_dict()
        for attempt in range(2):
            try:
                with writing(self.engine) as conn:
                    users.require(conn, by, "submit")
                    item_id = insert_draft(conn, data, by=by, now=self.clock())
                    return _item(load_row(conn, item_id))
            except IntegrityError:
                # Two drafts for the same new inbound message raced to open its case: the loser retries
                # and joins the winner's case.
                if attempt:
                    raise
        raise AssertionError("unreachable: the loop returns or raises")

    def record_spam(self, draft: Draft, *, by: str) -> Case:
        """Keep a message triaged as spam visible: open (or find) its case, with no reply item.

        Without an item nothing can be approved or posted; a person who finds a real customer there writes
        a reply, which joins the case as an ordinary pending item for a reviewer.
        """
        data = draft.to_dict()
        if draft.kind != "reply" or draft.status != "skipped":
            raise UserError(f"only a reply skipped as spam is recorded without a draft, not a {draft.status} "
                            f"{draft.kind}")
        inbound = data["inbound"]
        channel = data.get("channel") or inbound.get("channel") or "twitter"
        triage = data.get("triage") or {}
        for attempt in range(2):
            try:
                with writing(self.engine) as conn:
                    users.require(conn, by, "submit")
                    now = self.clock()
                    received = now - timedelta(minutes=float(inbound.get("waiting_minutes") or 0.0))
                    case_id = _case_for(conn, inbound, channel, triage, int(triage.get("priority") or 4), received,
                                        by, now)
                    row = conn.execute(select(tables.cases).where(tables.cases.c.id == case_id)).mappings().one()
                    return _case(row)
            except IntegrityError:
                if attempt:  # the same message recorded twice at once: join the other's case
                    raise
        raise AssertionError("unreachable: the loop returns or raises")

    def import_drafts(self, rows: Sequence[Row], *, sha256: str, source: str) -> int:
        """Insert drafts from a file once: a file whose hash was imported before adds nothing."""
        with writing(self.engine) as conn:
            exclusive(conn, IMPORT_LOCK)  # two processes opening the queue at once import it once
            seen = conn.execute(select(tables.imports.c.id).where(tables.imports.c.sha256 == sha256)).first()
            if seen is not None:
                return 0
            now = self.clock()
            for row in rows:
                insert_draft(conn, dict(row), by=IMPORT_ACTOR, now=now, detail={"source": source})
            conn.execute(insert(tables.imports).values(sha256=sha256, source=source, count=len(rows), at=now))
        return len(rows)

    # Reading -------------------------------------------------------------------------------------

    def get(self, item_id: int) -> ReviewItem:
        """One item, or NotFoundError."""
        with reading(self.engine) as conn:
            return _item(load_row(conn, item_id))

    def list_items(
        self, status: str | Iterable[str] | None = None, kind: str | None = None, limit: int = 100
    ) -> list[ReviewItem]:
        """Items by urgency: escalated first, then priority (1 is most urgent), then longest waiting."""
        statuses = _statuses(status)
        if kind is not None and kind not in ITEM_KINDS:
            raise UserError(f"unknown kind {kind!r}; kinds: {', '.join(ITEM_KINDS)}")
        t = tables.items
        query = select(t).order_by(
            case((t.c.status == "escalated", 0), else_=1), t.c.priority, t.c.received_at, t.c.id
        )
        if statuses:
            query = query.where(t.c.status.in_(statuses))
        if kind is not None:
            query = query.where(t.c.kind == kind)
        with reading(self.engine) as conn:
            return [_item(row) for row in conn.execute(query.limit(max(1, limit))).mappings()]

    def audit(self, item_id: int) -> list[AuditEvent]:
        """Every action on an item, oldest first."""
        t = tables.audit
        with reading(self.engine) as conn:
            load_row(conn, item_id)
            rows = conn.execute(select(t).where(t.c.item_id == item_id).order_by(t.c.id)).mappings()
            return [_event(row) for row in rows]

    def get_case(self, case_id: int) -> Case:
        """One case, or NotFoundError."""
        with reading(self.engine) as conn:
            row = conn.execute(select(tables.cases).where(tables.cases.c.id == case_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no case {case_id}")
        return _case(row)

    def list_cases(self, status: str | None = None, limit: int = 100) -> list[Case]:
        """Cases, unresolved and most urgent first, then longest waiting."""
        if status is not None and status not in CASE_STATUSES:
            raise UserError(f"unknown case status {status!r}; statuses: {', '.join(CASE_STATUSES)}")
        t = tables.cases
        query = select(t).order_by(case((t.c.status == "resolved", 1), else_=0), t.c.priority, t.c.received_at)
        if status is not None:
            query = query.where(t.c.status == status)
        with reading(self.engine) as conn:
            return [_case(row) for row in conn.execute(query.limit(max(1, limit))).mappings()]

    # Review actions ------------------------------------------------------------------------------

    def edit(self, item_id: int, text: str, *, by: str, version: int) -> ReviewItem:
        """Change a pending or escalated draft's text."""
        text = _clean(text)
        with writing(self.engine) as conn:
            users.require(conn, by, "edit")
            row = _checked(conn, item_id, "edit", version)
            if text == row["text"]:
                raise UserError(f"the edit changes nothing in item {item_id}")
            row = apply_action(conn, row, "edit", by, self.clock(), {"text": text, "edited_by": by},
                         before_text=row["text"], after_text=text)
        return _item(row)

    def approve(self, item_id: int, *, by: str, version: int, text: str | None = None) -> ReviewItem:
        """Approve a draft for posting, optionally with a final edit (recorded as an edit, then the approval)."""
        now = self.clock()
        with writing(self.engine) as conn:
            users.require(conn, by, "approve")
            row = _checked(conn, item_id, "approve", version)
            new_text = row["text"] if text is None else _clean(text)
            changed = new_text != row["text"]
            if self.settings.four_eyes:
                last_hands = {row["drafted_by"], row["edited_by"]}
                if by in last_hands:
                    raise PermissionDenied(
                        f"four-eyes rule: {by} drafted or last edited item {item_id}; another reviewer must approve"
                    )
                if changed:
                    raise PermissionDenied(
                        "four-eyes rule: nobody approves their own edit; save it with `queue edit` and let "
                        "another reviewer approve"
                    )
            if not new_text:
                raise UserError(f"item {item_id} has no text to approve; edit it first")
            if changed:
                row = apply_action(conn, row, "edit", by, now, {"text": new_text, "edited_by": by},
                             before_text=row["text"], after_text=new_text)
            distance = Levenshtein.distance(row["original_text"], new_text)
            row = apply_action(conn, row, "approve", by, now,
                         {"approved_by": by, "approved_at": now, "edit_distance": distance},
                         detail={"edit_distance": distance})
        return _item(row)

    def reject(self, item_id: int, *, by: str, version: int, reason: str) -> ReviewItem:
        """Reject a draft, with the reason; only an explicit reopen brings it back."""
        reason = (reason or "").strip()
        if not reason:
            raise UserError("a rejection needs a reason")
        now = self.clock()
        with writing(self.engine) as conn:
            users.require(conn, by, "reject")
            row = _checked(conn, item_id, "reject", version)
            row = apply_action(conn, row, "reject", by, now, {"reject_reason": reason, "rejected_at": now},
                         detail={"reason": reason})
        return _item(row)

    def reopen(self, item_id: int, *, by: str, version: int) -> ReviewItem:
        """Bring a rejected draft back to pending."""
        with writing(self.engine) as conn:
            users.require(conn, by, "reopen")
            row = _checked(conn, item_id, "reopen", version)
            row = apply_action(conn, row, "reopen", by, self.clock(), {"reject_reason": None, "rejected_at": None})
        return _item(row)

    def assign(self, item_id: int, assignee: str, *, by: str) -> ReviewItem:
        """Give an item (and its case) an owner. Agents may only take items themselves."""
        assignee = (assignee or "").strip()
        if not assignee:
            raise UserError("an assignee is needed")
        with writing(self.engine) as conn:
            role = users.require(conn, by, "assign")
            if role == "agent" and assignee != by:
                raise PermissionDenied(f"{by} is an agent; agents may only assign items to themselves")
            if users.count_users(conn) and users.role_of(conn, assignee) is None:
                raise UserError(f"unknown user {assignee!r}")
            row = load_row(conn, item_id)
            now = self.clock()
            # Ownership is not content: it does not bump the version, so it never makes a review stale.
            conn.execute(update(tables.items).where(tables.items.c.id == item_id)
                         .values(assignee=assignee, updated_at=now))
            if row["case_id"] is not None:
                conn.execute(update(tables.cases).where(tables.cases.c.id == row["case_id"])
                             .values(owner=assignee, updated_at=now))
            _record(conn, row, "assign", by, now, row["status"], row["version"],
                    detail={"assignee": assignee, "previous": row["assignee"]})
            return _item(load_row(conn, item_id))

    # Publishing ----------------------------------------------------------------------------------

    def publish_approved(
        self, publisher: Publisher, *, by: str, lease_s: float | None = None, limit: int | None = None
    ) -> PublishReport:
        """Post every approved, unposted item (and retry failed ones) exactly once; see ``delivery``."""
        from copilot.queue.delivery import publish_approved

        lease = self.settings.publish_lease_s if lease_s is None else lease_s
        return publish_approved(self, publisher, by=by, lease_s=lease, limit=limit)


# Rows <-> records --------------------------------------------------------------------------------


def _statuses(status: str | Iterable[str] | None) -> list[str]:
    if status is None:
        return []
    wanted = [s.strip() for s in status.split(",")] if isinstance(status, str) else list(status)
    wanted = [s for s in wanted if s and s != "all"]
    for name in wanted:
        if name not in ITEM_STATUSES:
            raise UserError(f"unknown status {name!r}; statuses: {', '.join(ITEM_STATUSES)}")
    return wanted


def _clean(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise UserError("the text must not be empty")
    return text


def _item(row: Row) -> ReviewItem:
    return ReviewItem(
        id=row["id"], kind=row["kind"], status=row["status"], text=row["text"],
        original_text=row["original_text"], channel=row["channel"], author=row["author"],
        priority=row["priority"], priority_score=row["priority_score"], version=row["version"],
        case_id=row["case_id"], inbound_id=row["inbound_id"], inbound_text=row["inbound_text"],
        assignee=row["assignee"], drafted_by=row["drafted_by"], edited_by=row["edited_by"],
        approved_by=row["approved_by"], received_at=row["received_at"], drafted_at=row["drafted_at"],
        approved_at=row["approved_at"], rejected_at=row["rejected_at"], posted_at=row["posted_at"],
        reject_reason=row["reject_reason"], edit_distance=row["edit_distance"],
        idempotency_key=row["idempotency_key"], attempts=row["attempts"], error=row["last_error"],
        external_id=row["external_id"], triage=dict(row["triage"] or {}), draft=dict(row["draft"] or {}),
    )


def _event(row: Row) -> AuditEvent:
    return AuditEvent(
        id=row["id"], item_id=row["item_id"], action=row["action"], actor=row["actor"], at=row["at"],
        from_status=row["from_status"], to_status=row["to_status"], version=row["version"],
        before_text=row["before_text"], after_text=row["after_text"], detail=dict(row["detail"] or {}),
    )


def _case(row: Row) -> Case:
    return Case(
        id=row["id"], channel=row["channel"], author=row["author"], text=row["text"], status=row["status"],
        owner=row["owner"], priority=row["priority"], received_at=row["received_at"],
        inbound_id=row["inbound_id"], resolved_at=row["resolved_at"], triage=dict(row["triage"] or {}),
    )


# Transactions' building blocks (each runs inside the caller's transaction) ------------------------


def load_row(conn: Connection, item_id: int) -> Row:
    row = conn.execute(select(tables.items).where(tables.items.c.id == item_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no queue item {item_id}")
    return row


def _checked(conn: Connection, item_id: int, action: str, version: int) -> Row:
    """The item, if the caller saw its current version and ``action`` is legal from its status."""
    row = load_row(conn, item_id)
    if version != row["version"]:
        raise ConflictError(
            f"item {item_id} changed since version {version}: it is now {row['status']} at version "
            f"{row['version']}; nothing was applied, reload it and retry"
        )
    allowed, _target = TRANSITIONS[action]
    if row["status"] not in allowed:
        raise ConflictError(f"cannot {action} item {item_id}: it is {row['status']}")
    return row


def apply_action(
    conn: Connection, row: Row, action: str, actor: str, now: datetime, values: dict[str, Any],
    *, before_text: str | None = None, after_text: str | None = None, detail: dict[str, Any] | None = None,
    extra_where: Any = None,
) -> Row:
    """Move an item by ``action`` if nobody changed it since ``row`` was read; audit it; update its case."""
    target = TRANSITIONS[action][1] or row["status"]
    version = row["version"] + 1
    t = tables.items
    statement = (
        update(t).where(t.c.id == row["id"], t.c.version == row["version"])
        .values(**values, status=target, version=version, updated_at=now)
    )
    if extra_where is not None:
        statement = statement.where(extra_where)
    if conn.execute(statement).rowcount != 1:
        raise ConflictError(f"item {row['id']} was changed by someone else at the same time; nothing was applied")
    _record(conn, row, action, actor, now, target, version, before_text=before_text, after_text=after_text,
            detail=detail)
    if row["case_id"] is not None and target != row["status"]:
        refresh_case(conn, row["case_id"], now)
    return load_row(conn, row["id"])


def _record(
    conn: Connection, row: Row, action: str, actor: str, now: datetime, to_status: str | None,
    version: int, *, before_text: str | None = None, after_text: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(insert(tables.audit).values(
        item_id=row["id"], case_id=row["case_id"], action=action, actor=actor, at=now,
        from_status=row["status"], to_status=to_status, version=version, before_text=before_text,
        after_text=after_text, detail=detail or {},
    ))


def refresh_case(conn: Connection, case_id: int, now: datetime) -> None:
    """A case is resolved once an answer is posted, waiting while one is approved, else open."""
    statuses = set(conn.execute(select(tables.items.c.status).where(tables.items.c.case_id == case_id)).scalars())
    if "posted" in statuses:
        status = "resolved"
    elif statuses & {"approved", "posting", "failed"}:
        status = "waiting"
    else:
        status = "open"
    c = tables.cases
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == "resolved":
        current = conn.execute(select(c.c.resolved_at).where(c.c.id == case_id)).scalar_one()
        values["resolved_at"] = current or now
    conn.execute(update(c).where(c.c.id == case_id).values(**values))


def insert_draft(
    conn: Connection, data: dict[str, Any], *, by: str, now: datetime, detail: dict[str, Any] | None = None
) -> int:
    """Insert one draft (a ``Draft.to_dict()``) as a queue item, with its case for a reply; return its id."""
    inbound = data.get("inbound") or {}
    triage = data.get("triage") or {}
    kind = data.get("kind") or "reply"
    if kind not in ITEM_KINDS:
        raise UserError(f"unknown draft kind {kind!r}; kinds: {', '.join(ITEM_KINDS)}")
    status = data.get("status") or "pending"
    if status not in ("pending", "escalated"):
        raise UserError(f"a new draft must be pending or escalated, not {status!r}")
    if crisis_level_of(triage) == "crisis":
        status = "escalated"  # a crisis goes to a trained human, whatever the drafter said
    text = (data.get("text") or "").strip()
    if not text and status != "escalated":
        raise UserError("the draft has no text")
    channel = data.get("channel") or inbound.get("channel") or "twitter"
    priority = int(triage.get("priority") or 3)
    received = now - timedelta(minutes=float(inbound.get("waiting_minutes") or 0.0))
    case_id = None
    if kind == "reply":
        case_id = _case_for(conn, inbound, channel, triage, priority, received, by, now)
    item_id = _new_id(conn.execute(insert(tables.items).values(
        case_id=case_id, kind=kind, status=status, version=1, text=text, original_text=text, channel=channel,
        author=inbound.get("author"), inbound_id=inbound.get("id"), inbound_text=inbound.get("text") or "",
        priority=priority, priority_score=float(triage.get("priority_score") or 0.0), drafted_by=by,
        received_at=received, drafted_at=now, updated_at=now, attempts=0, triage=triage, draft=data,
        # Fixed from the start, so that no lost or repeated claim can ever give one message two keys.
        idempotency_key=f"copilot-{uuid.uuid4().hex}",
    )))
    row = {"id": item_id, "case_id": case_id, "status": None}
    _record(conn, row, "draft", by, now, status, 1, after_text=text, detail=detail)
    if case_id is not None:
        refresh_case(conn, case_id, now)
    return int(item_id)


def _case_for(
    conn: Connection, inbound: Row, channel: str, triage: dict[str, Any], priority: int,
    received: datetime, by: str, now: datetime,
) -> int:
    """The case of this inbound message: the existing one for a known message id, else a new one."""
    c = tables.cases
    inbound_id = inbound.get("id")
    if inbound_id is not None:
        found = conn.execute(select(c.c.id).where(c.c.channel == channel, c.c.inbound_id == inbound_id)).first()
        if found is not None:
            return int(found.id)
    return _new_id(conn.execute(insert(c).values(
        inbound_id=inbound_id, channel=channel, author=inbound.get("author"), text=inbound.get("text") or "",
        triage=triage, owner=None if by == IMPORT_ACTOR else by, status="open", priority=priority,
        received_at=received, created_at=now, updated_at=now,
    )))


def _new_id(result: CursorResult[Any]) -> int:
    """The primary key an INSERT created."""
    key = result.inserted_primary_key
    if key is None:
        raise AssertionError("an INSERT returned no primary key")
    return int(key[0])
