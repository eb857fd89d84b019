"""Publishing approved items exactly once, from the customer's point of view.

Each item carries an idempotency key from the moment it is drafted. A claim (status ``posting``, claim
token, time) is committed *before* the adapter is called, and the outcome is recorded after:

- crash before the adapter was called, or after it posted but before the outcome was recorded: the
  item stays ``posting``; once its lease expires the next publish claims it again and resends the same
  key, which the adapter recognises (``PostReceipt.duplicate``), so the customer sees one post;
- the adapter fails: the item becomes ``failed`` with the error and is retried by the next publish;
- two publishers at once: claims lock the row (SKIP LOCKED on PostgreSQL, the write lock on SQLite)
  and are versioned updates, so only one of them sends each item.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from copilot.errors import ConflictError
from copilot.queue import tables, users
from copilot.queue.db import reading, writing
from copilot.queue.publish import OutgoingMessage, PostReceipt, Publisher, PublishError
from copilot.queue.records import PublishReport
from copilot.queue.store import apply_action, load_row

if TYPE_CHECKING:
    from copilot.queue.store import ReviewQueue

_RECORD_TRIES = 5


def publish_approved(
    queue: ReviewQueue, publisher: Publisher, *, by: str, lease_s: float, limit: int | None = None
) -> PublishReport:
    """Post every approved item, retry failed ones, recover abandoned claims; report what happened."""
    with reading(queue.engine) as conn:
        users.require(conn, by, "publish")
    started = queue.clock()
    posted: list[int] = []
    duplicates: list[int] = []
    failed: list[tuple[int, str]] = []
    skipped: list[int] = []
    claimed = 0
    while limit is None or claimed < limit:
        claim = _claim_next(queue, by=by, lease_s=lease_s, started=started)
        if claim is None:
            break
        claimed += 1
        message, token = claim
        try:
            receipt = publisher.post(message)
        except PublishError as exc:
            if _record_failure(queue, message, token, by=by, error=str(exc)):
                failed.append((message.item_id, str(exc)))
            else:
                skipped.append(message.item_id)
            continue
        if _record_posted(queue, message, receipt, by=by):
            (duplicates if receipt.duplicate else posted).append(message.item_id)
        else:
            skipped.append(message.item_id)
    return PublishReport(
        posted=tuple(posted), failed=tuple(failed), duplicates=tuple(duplicates), skipped=tuple(skipped)
    )


def _claim_next(
    queue: ReviewQueue, *, by: str, lease_s: float, started: datetime
) -> tuple[OutgoingMessage, str] | None:
    """Claim the next item to post, in its own committed transaction; None when nothing is left.

    Eligible: approved items; failed items whose last attempt was before this run began (each is retried
    once per run); ``posting`` items whose claim is older than the lease and than this run (their
    publisher died). PostgreSQL locks the row with SKIP LOCKED so concurrent publishers take different
    items; SQLite's write lock serialises claims.
    """
    t = tables.items
    with writing(queue.engine) as conn:
        now = queue.clock()
        abandoned_before = min(started, now - timedelta(seconds=lease_s))
        found = conn.execute(
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
        if found is None:
            return None
        recovered = found["status"] == "posting"
        key = found["idempotency_key"]
        token = secrets.token_hex(8)
        attempt = found["attempts"] + 1
        row = apply_action(
            conn, found, "publish", by, now,
            {"claim_token": token, "claimed_at": now, "attempts": attempt},
            detail={"idempotency_key": key, "attempt": attempt, "recovered": recovered},
        )
    return _message(row), token


def _message(row: Mapping[Any, Any]) -> OutgoingMessage:
    return OutgoingMessage(
        item_id=row["id"], idempotency_key=row["idempotency_key"], kind=row["kind"], channel=row["channel"],
        text=row["text"], author=row["author"], in_reply_to=row["inbound_id"], case_id=row["case_id"],
        approved_by=row["approved_by"],
    )


def _record_posted(queue: ReviewQueue, message: OutgoingMessage, receipt: PostReceipt, *, by: str) -> bool:
    """Record a delivery; False if another publisher already did (the item is posted either way)."""
    for _ in range(_RECORD_TRIES):
        try:
            with writing(queue.engine) as conn:
                row = load_row(conn, message.item_id)
                if row["status"] != "posting" or row["idempotency_key"] != message.idempotency_key:
                    # Posted already, or failed by a later claim that took ours over: that one, or the
                    # next publish, sends the same key again and records the delivery without a repeat.
                    return False
                now = queue.clock()
                apply_action(
                    conn, row, "post", by, now,
                    {"posted_at": now, "external_id": receipt.external_id, "last_error": None, "claim_token": None},
                    detail={"idempotency_key": message.idempotency_key, "external_id": receipt.external_id,
                            "duplicate": receipt.duplicate},
                )
                return True
        except ConflictError:
            continue  # the row moved between our read and write (a concurrent claim): look again
    return False


def _record_failure(queue: ReviewQueue, message: OutgoingMessage, token: str, *, by: str, error: str) -> bool:
    """Record a failed post, unless our claim was taken over meanwhile (then the newer claim decides)."""
    try:
        with writing(queue.engine) as conn:
            row = load_row(conn, message.item_id)
            if row["status"] != "posting" or row["claim_token"] != token:
                return False
            apply_action(
                conn, row, "failure", by, queue.clock(), {"last_error": error[:2000], "claim_token": None},
                detail={"idempotency_key": message.idempotency_key, "error": error[:2000]},
                extra_where=tables.items.c.claim_token == token,
            )
            return True
    except ConflictError:
        return False
