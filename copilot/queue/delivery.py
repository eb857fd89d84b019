"""Publishing approved items exactly once, from the customer's point of view.

Each item carries an idempotency key from the moment it is drafted. A claim (status ``posting``, claim
token, time) is committed *before* the adapter is called, and the outcome is recorded after:

- crash before the adapter was called, or after it posted but before the outcome was recorded: the
  item stays ``posting``; once its lease expires the next publish claims it again and resends the same
  key, which the adapter recognises (``PostReceipt.duplicate``), so the customer sees one post;
- the adapter fails: the item becomes ``failed`` with the error and is retried by the next publish;
- two publishers at once: claims lock the row (SKIP LOCKED on PostgreSQL, the write lock on SQLite)
  and are versioned updates, so only one of them sends each item.

The claims and the outcomes are transactions of the queue's store (``ReviewQueue.claim_next``,
``record_posted``, ``record_failure``); this module only runs the loop around the publisher.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from copilot.queue.publish import OutgoingMessage, PostReceipt, Publisher, PublishError
from copilot.queue.records import PublishReport


class ClaimingQueue(Protocol):
    """What publishing needs of the queue's store."""

    clock: Callable[[], datetime]

    def require(self, by: str, action: str) -> str | None: ...

    def claim_next(self, *, by: str, lease_s: float, started: datetime) -> tuple[OutgoingMessage, str] | None: ...

    def record_posted(self, message: OutgoingMessage, receipt: PostReceipt, *, by: str) -> bool: ...

    def record_failure(self, message: OutgoingMessage, token: str, *, by: str, error: str) -> bool: ...


def publish_approved(
    queue: ClaimingQueue, publisher: Publisher, *, by: str, lease_s: float, limit: int | None = None
) -> PublishReport:
    """Post every approved item, retry failed ones, recover abandoned claims; report what happened."""
    queue.require(by, "publish")
    started = queue.clock()
    posted: list[int] = []
    duplicates: list[int] = []
    failed: list[tuple[int, str]] = []
    skipped: list[int] = []
    claimed = 0
    while limit is None or claimed < limit:
        claim = queue.claim_next(by=by, lease_s=lease_s, started=started)
        if claim is None:
            break
        claimed += 1
        message, token = claim
        try:
            receipt = publisher.post(message)
        except PublishError as exc:
            if queue.record_failure(message, token, by=by, error=str(exc)):
                failed.append((message.item_id, str(exc)))
            else:
                skipped.append(message.item_id)
            continue
        if queue.record_posted(message, receipt, by=by):
            (duplicates if receipt.duplicate else posted).append(message.item_id)
        else:
            skipped.append(message.item_id)
    return PublishReport(
        posted=tuple(posted), failed=tuple(failed), duplicates=tuple(duplicates), skipped=tuple(skipped)
    )
