"""Publishing approved items exactly once, from the customer's point of view.

Each item gets a stable idempotency key the first time it is claimed. The claim (status ``posting``,
key, claim token, time) is committed *before* the adapter is called, and the outcome is recorded after:

- crash before the adapter was called, or after it posted but before the outcome was recorded: the
  item stays ``posting``; once its lease expires the next publish claims it again and resends the same
  key, which the adapter recognises (``PostReceipt.duplicate``), so the customer sees one post;
- the adapter fails: the item becomes ``failed`` with the error and is retried by the next publish;
- two publishers at once: the claim is a versioned update, so only one of them sends each item.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from copilot.errors import ConflictError
from copilot.queue import models, users
from copilot.queue.db import reading, writing
from copilot.queue.publish import OutgoingMessage, PostReceipt, Publisher, PublishError
from copilot.queue.records import PublishReport
from copilot.queue.store import _apply, _load

if TYPE_CHECKING:
    from copilot.queue.store import ReviewQueue

_RECORD_TRIES = 5


def publish_approved(
    queue: ReviewQueue, publisher: Publisher, *, by: str, lease_s: float, limit: int | None = None
) -> PublishReport:
    """Post every approved item, retry failed ones, recover abandoned claims; report what happened."""
    t = models.items
    with reading(queue.engine) as conn:
        users.require(conn, by, "publish")
        stale = queue.clock() - timedelta(seconds=lease_s)
        query = (
            select(t.c.id, t.c.version)
            .where(or_(t.c.status.in_(("approved", "failed")), and_(t.c.status == "posting", t.c.claimed_at <= stale)))
            .order_by(t.c.approved_at, t.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        candidates = [(row.id, row.version) for row in conn.execute(query)]
    posted: list[int] = []
    duplicates: list[int] = []
    failed: list[tuple[int, str]] = []
    skipped: list[int] = []
    for item_id, version in candidates:
        claim = _claim(queue, item_id, version, by=by, lease_s=lease_s)
        if claim is None:
            skipped.append(item_id)
            continue
        message, token = claim
        try:
            receipt = publisher.post(message)
        except PublishError as exc:
            if _record_failure(queue, message, token, by=by, error=str(exc)):
                failed.append((item_id, str(exc)))
            continue
        _record_posted(queue, message, receipt, by=by)
        (duplicates if receipt.duplicate else posted).append(item_id)
    return PublishReport(
        posted=tuple(posted), failed=tuple(failed), duplicates=tuple(duplicates), skipped=tuple(skipped)
    )


def _claim(
    queue: ReviewQueue, item_id: int, version: int, *, by: str, lease_s: float
) -> tuple[OutgoingMessage, str] | None:
    """Mark an item ``posting`` under a new claim token, in its own committed transaction; None if taken."""
    try:
        with writing(queue.engine) as conn:
            row = _load(conn, item_id)
            now = queue.clock()
            abandoned = row["status"] == "posting" and row["claimed_at"] <= now - timedelta(seconds=lease_s)
            if row["version"] != version or not (row["status"] in ("approved", "failed") or abandoned):
                return None
            key = row["idempotency_key"] or f"copilot-{item_id}-{uuid.uuid4().hex[:20]}"
            token = secrets.token_hex(8)
            attempt = row["attempts"] + 1
            row = _apply(
                conn, row, "publish", by, now,
                {"idempotency_key": key, "claim_token": token, "claimed_at": now, "attempts": attempt},
                detail={"idempotency_key": key, "attempt": attempt, "recovered": abandoned},
            )
    except ConflictError:
        return None  # a concurrent publisher claimed it first
    return _message(row), token


def _message(row: Mapping[str, Any]) -> OutgoingMessage:
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
                row = _load(conn, message.item_id)
                if row["status"] != "posting" or row["idempotency_key"] != message.idempotency_key:
                    # Posted already, or failed by a later claim that took ours over: that one, or the
                    # next publish, sends the same key again and records the delivery without a repeat.
                    return False
                now = queue.clock()
                _apply(
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
            row = _load(conn, message.item_id)
            if row["status"] != "posting" or row["claim_token"] != token:
                return False
            _apply(
                conn, row, "failure", by, queue.clock(), {"last_error": error[:2000], "claim_token": None},
                detail={"idempotency_key": message.idempotency_key, "error": error[:2000]},
                extra_where=models.items.c.claim_token == token,
            )
            return True
    except ConflictError:
        return False
