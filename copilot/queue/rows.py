"""The queue's rows inside one transaction: read an item, move it by an action (optimistic locking, audit event,
its case's status), insert a draft with its case, claim the next item to publish, and turn rows into records.

Every function here runs inside the caller's transaction (``copilot.queue.db.writing`` or ``reading``); only the
queue's store modules call them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, CursorResult, and_, insert, or_, select, update

from copilot.errors import ConflictError, NotFoundError, UserError
from copilot.queue import tables
from copilot.queue.publish import OutgoingMessage
from copilot.queue.records import ITEM_KINDS, TRANSITIONS, AuditEvent, Case, ReviewItem, crisis_level_of

IMPORT_ACTOR = "import"  # the actor recorded for drafts imported in bulk (``ReviewQueue.import_drafts``)
PLATFORM_ACTOR = "platform:"  # prefix of the actor for messages a connector took in ("platform:chatwoot")

Row = Mapping[Any, Any]  # a database row as a mapping


def item_from_row(row: Row) -> ReviewItem:
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


def event_from_row(row: Row) -> AuditEvent:
    return AuditEvent(
        id=row["id"], item_id=row["item_id"], action=row["action"], actor=row["actor"], at=row["at"],
        from_status=row["from_status"], to_status=row["to_status"], version=row["version"],
        before_text=row["before_text"], after_text=row["after_text"], detail=dict(row["detail"] or {}),
    )


def case_from_row(row: Row) -> Case:
    return Case(
        id=row["id"], channel=row["channel"], author=row["author"], text=row["text"], status=row["status"],
        owner=row["owner"], priority=row["priority"], received_at=row["received_at"],
        inbound_id=row["inbound_id"], resolved_at=row["resolved_at"], triage=dict(row["triage"] or {}),
        conversation=row["conversation"],
    )


def message_from_row(row: Row) -> OutgoingMessage:
    return OutgoingMessage(
        item_id=row["id"], idempotency_key=row["idempotency_key"], kind=row["kind"], channel=row["channel"],
        text=row["text"], author=row["author"], in_reply_to=row["inbound_id"], case_id=row["case_id"],
        approved_by=row["approved_by"], conversation=row["conversation"],
    )


def load_row(conn: Connection, item_id: int) -> Row:
    row = conn.execute(select(tables.items).where(tables.items.c.id == item_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no queue item {item_id}")
    return row


def checked(conn: Connection, item_id: int, action: str, version: int) -> Row:
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
    claim_token: str | None = None,
) -> Row:
    """Move an item by ``action`` if nobody changed it since ``row`` was read (and, given ``claim_token``, if
    that claim still holds); audit it; update its case."""
    target = TRANSITIONS[action][1] or row["status"]
    version = row["version"] + 1
    t = tables.items
    statement = (
        update(t).where(t.c.id == row["id"], t.c.version == row["version"])
        .values(**values, status=target, version=version, updated_at=now)
    )
    if claim_token is not None:
        statement = statement.where(t.c.claim_token == claim_token)
    if conn.execute(statement).rowcount != 1:
        raise ConflictError(f"item {row['id']} was changed by someone else at the same time; nothing was applied")
    record_event(conn, row, action, actor, now, target, version, before_text=before_text, after_text=after_text,
                 detail=detail)
    if row["case_id"] is not None and target != row["status"]:
        refresh_case(conn, row["case_id"], now)
    return load_row(conn, row["id"])


def record_event(
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
    """A case is resolved once an answer is posted, waiting while one is approved, else open. Only the items
    after the last posted answer count: a follow-up in the thread opens the case again."""
    found = list(conn.execute(select(tables.items.c.status).where(tables.items.c.case_id == case_id)
                              .order_by(tables.items.c.id)).scalars())
    last_post = max((i for i, s in enumerate(found) if s == "posted"), default=None)
    statuses = set(found)
    if last_post is not None:
        newer = set(found[last_post + 1:]) - {"rejected"}
        statuses = newer or {"posted"}
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
        case_id = case_for(conn, inbound, channel, triage, priority, received, by, now)
    item_id = new_id(conn.execute(insert(tables.items).values(
        conversation=inbound.get("conversation"),
        case_id=case_id, kind=kind, status=status, version=1, text=text, original_text=text, channel=channel,
        author=inbound.get("author"), inbound_id=inbound.get("id"), inbound_text=inbound.get("text") or "",
        priority=priority, priority_score=float(triage.get("priority_score") or 0.0), drafted_by=by,
        received_at=received, drafted_at=now, updated_at=now, attempts=0, triage=triage, draft=data,
        # Fixed from the start, so that no lost or repeated claim can ever give one message two keys.
        idempotency_key=f"copilot-{uuid.uuid4().hex}",
    )))
    row = {"id": item_id, "case_id": case_id, "status": None}
    record_event(conn, row, "draft", by, now, status, 1, after_text=text, detail=detail)
    if case_id is not None:
        add_message(conn, case_id, "in", platform_id=inbound.get("id"), author=inbound.get("author"),
                    text=inbound.get("text") or "", at=received, item_id=int(item_id))
        refresh_case(conn, case_id, now)
    return int(item_id)


def case_without_draft(conn: Connection, data: dict[str, Any], *, by: str, now: datetime) -> int:
    """The case of a message triaged as spam (a ``Draft.to_dict()`` with no reply), with its turn."""
    inbound = data["inbound"]
    channel = data.get("channel") or inbound.get("channel") or "twitter"
    triage = data.get("triage") or {}
    received = now - timedelta(minutes=float(inbound.get("waiting_minutes") or 0.0))
    case_id = case_for(conn, inbound, channel, triage, int(triage.get("priority") or 4), received, by, now)
    add_message(conn, case_id, "in", platform_id=inbound.get("id"), author=inbound.get("author"),
                text=inbound.get("text") or "", at=received, item_id=None)
    return case_id


def add_message(conn: Connection, case_id: int, direction: str, *, platform_id: str | None, author: str | None,
                text: str, at: datetime, item_id: int | None) -> None:
    """Add a message to a case's thread, once per platform id (a redraft of the same message adds nothing)."""
    m = tables.messages
    if platform_id is not None and conn.execute(select(m.c.id).where(
            m.c.case_id == case_id, m.c.direction == direction, m.c.platform_id == platform_id)).first():
        return
    conn.execute(insert(m).values(case_id=case_id, direction=direction, platform_id=platform_id, author=author,
                                  text=text, at=at, item_id=item_id))


def case_for(
    conn: Connection, inbound: Row, channel: str, triage: dict[str, Any], priority: int,
    received: datetime, by: str, now: datetime,
) -> int:
    """The case of this inbound message: the one of a known message id, else the latest case of its
    conversation (a follow-up joins it, and the case shows the newest message), else a new one."""
    c = tables.cases
    inbound_id = inbound.get("id")
    if inbound_id is not None:
        found = conn.execute(select(c.c.id).where(c.c.channel == channel, c.c.inbound_id == inbound_id)).first()
        if found is not None:
            return int(found.id)
    conversation = inbound.get("conversation")
    if conversation:
        case = conn.execute(select(c).where(c.c.channel == channel, c.c.conversation == conversation)
                            .order_by(c.c.id.desc()).limit(1)).mappings().first()
        if case is not None:
            join_case(conn, case, inbound, triage, priority, now)
            return int(case["id"])
    return new_id(conn.execute(insert(c).values(
        inbound_id=inbound_id, channel=channel, author=inbound.get("author"), text=inbound.get("text") or "",
        triage=triage, owner=None if by == IMPORT_ACTOR or by.startswith(PLATFORM_ACTOR) else by, status="open",
        priority=priority,
        received_at=received, created_at=now, updated_at=now, conversation=conversation,
    )))


_LEVEL_RANK = {"crisis": 0, "possible": 1, None: 2}


def join_case(conn: Connection, case: Row, inbound: Row, triage: dict[str, Any], priority: int, now: datetime
              ) -> None:
    """A follow-up joins its case: the case shows the newest message, and keeps the most urgent triage
    (a crisis earlier in the thread is never downgraded by a calm follow-up)."""
    old = dict(case["triage"] or {})
    newer_is_as_urgent = (_LEVEL_RANK[crisis_level_of(triage)], priority) <= (
        _LEVEL_RANK[crisis_level_of(old)], int(case["priority"]))
    values: dict[str, Any] = {"text": inbound.get("text") or case["text"], "updated_at": now}
    if newer_is_as_urgent:
        values.update(triage=triage, priority=priority)
    conn.execute(update(tables.cases).where(tables.cases.c.id == case["id"]).values(**values))


def new_id(result: CursorResult[Any]) -> int:
    """The primary key an INSERT created."""
    key = result.inserted_primary_key
    if key is None:
        raise AssertionError("an INSERT returned no primary key")
    return int(key[0])


def load_case(conn: Connection, case_id: int) -> Row:
    row = conn.execute(select(tables.cases).where(tables.cases.c.id == case_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"no case {case_id}")
    return row


def set_owner(conn: Connection, row: Row, assignee: str, now: datetime) -> None:
    """Give an item and its case an owner. Ownership is not content: the version stays, no review goes stale."""
    conn.execute(update(tables.items).where(tables.items.c.id == row["id"]).values(assignee=assignee, updated_at=now))
    if row["case_id"] is not None:
        conn.execute(update(tables.cases).where(tables.cases.c.id == row["case_id"])
                     .values(owner=assignee, updated_at=now))


def was_imported(conn: Connection, sha256: str) -> bool:
    return conn.execute(select(tables.imports.c.id).where(tables.imports.c.sha256 == sha256)).first() is not None


def record_import(conn: Connection, *, sha256: str, source: str, count: int, now: datetime) -> None:
    conn.execute(insert(tables.imports).values(sha256=sha256, source=source, count=count, at=now))


def next_to_publish(conn: Connection, *, started: datetime, abandoned_before: datetime) -> Row | None:
    """The next item a publisher may claim, row-locked (SKIP LOCKED on PostgreSQL); None when nothing is left.

    Eligible: approved items; failed items whose last attempt was before this run began (each is retried
    once per run); ``posting`` items whose claim is older than ``abandoned_before`` (their publisher died).
    """
    t = tables.items
    return conn.execute(
        select(t)
        # An approved FAQ proposal goes into the knowledge base, never to a channel.
        .where(t.c.kind != "faq_proposal")
        .where(or_(
            t.c.status == "approved",
            and_(t.c.status == "failed", t.c.claimed_at < started),
            and_(t.c.status == "posting", t.c.claimed_at < abandoned_before),
        ))
        .order_by(t.c.approved_at, t.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).mappings().first()


def delivered(conn: Connection, platform: str, delivery_ids: Sequence[str]) -> bool:
    """Whether any of these webhook deliveries (or message ids) of ``platform`` was taken in before."""
    d = tables.deliveries
    return conn.execute(select(d.c.id).where(d.c.platform == platform, d.c.delivery_id.in_(list(delivery_ids)))
                        .limit(1)).first() is not None


def record_delivery(conn: Connection, platform: str, delivery_ids: Sequence[str], *, now: datetime,
                    case_id: int | None, item_id: int | None) -> None:
    """Remember deliveries taken in (a unique key: a concurrent second delivery fails its transaction)."""
    for delivery_id in dict.fromkeys(delivery_ids):
        conn.execute(insert(tables.deliveries).values(platform=platform, delivery_id=delivery_id[:200],
                                                      received_at=now, case_id=case_id, item_id=item_id))
