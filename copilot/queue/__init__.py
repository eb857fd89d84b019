"""The human approval queue: cases, review items, the audit trail, users and roles, and publishing.

Nothing the copilot writes reaches a customer or the community until a person approves it here.
"""

from __future__ import annotations

from copilot.queue.publish import (
    OutboxPublisher,
    OutgoingMessage,
    PostReceipt,
    Publisher,
    PublishError,
    WebhookPublisher,
    build_publisher,
)
from copilot.queue.records import AuditEvent, Case, PublishReport, ReviewItem, User
from copilot.queue.store import ReviewQueue, open_queue, requires_individual_decision

__all__ = [
    "AuditEvent",
    "Case",
    "OutboxPublisher",
    "OutgoingMessage",
    "PostReceipt",
    "PublishError",
    "PublishReport",
    "Publisher",
    "ReviewItem",
    "ReviewQueue",
    "User",
    "WebhookPublisher",
    "build_publisher",
    "open_queue",
    "requires_individual_decision",
]
