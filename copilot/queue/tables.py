"""The queue's SQLAlchemy tables (SQLite and PostgreSQL); the migrations in ``migrations/`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back timezone-aware, the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

users = Table(
    "queue_users",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(300)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(100)),
)

cases = Table(
    "queue_cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("inbound_id", String(200)),
    Column("channel", String(32), nullable=False),
    Column("author", String(200)),
    Column("text", Text, nullable=False),
    Column("triage", JSON, nullable=False),
    Column("owner", String(100)),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # The platform's thread this case is (e.g. "chatwoot:acme:42", "discourse:topic:17", an email's root
    # Message-ID): a new message in the same thread joins the case.
    Column("conversation", String(300)),
    UniqueConstraint("channel", "inbound_id", name="uq_queue_cases_inbound"),
    Index("ix_queue_cases_status", "status"),
    Index("ix_queue_cases_conversation", "channel", "conversation"),
)

items = Table(
    "queue_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("queue_cases.id")),
    Column("kind", String(24), nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("original_text", Text, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("author", String(200)),
    Column("inbound_id", String(200)),
    Column("inbound_text", Text, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("priority_score", Float, nullable=False),
    Column("assignee", String(100)),
    Column("drafted_by", String(100), nullable=False),
    Column("edited_by", String(100)),
    Column("approved_by", String(100)),
    Column("reject_reason", Text),
    Column("edit_distance", Integer),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("drafted_at", UTCDateTime(), nullable=False),
    Column("approved_at", UTCDateTime()),
    Column("rejected_at", UTCDateTime()),
    Column("posted_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Publishing: a stable key per item, the current claim, and the outcome.
    Column("idempotency_key", String(64), unique=True),
    Column("claim_token", String(32)),
    Column("claimed_at", UTCDateTime()),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("external_id", String(200)),
    Column("triage", JSON, nullable=False),
    Column("draft", JSON, nullable=False),
    Column("conversation", String(300)),
    Index("ix_queue_items_status", "status", "priority", "received_at"),
    Index("ix_queue_items_case", "case_id"),
)

audit = Table(
    "queue_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("queue_items.id"), nullable=False),
    Column("case_id", Integer),
    Column("action", String(16), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("version", Integer, nullable=False),
    Column("before_text", Text),
    Column("after_text", Text),
    Column("detail", JSON, nullable=False),
    Index("ix_queue_audit_item", "item_id", "id"),
)

imports = Table(
    "queue_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("source", String(500), nullable=False),
    Column("count", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

# A case's thread: every inbound message and every reply we posted, in order, with the platform's ids.
messages = Table(
    "queue_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("queue_cases.id"), nullable=False),
    Column("direction", String(8), nullable=False),  # "in" (from the customer) or "out" (our posted reply)
    Column("platform_id", String(200)),  # the message's id on the platform, when it has one
    Column("author", String(200)),
    Column("text", Text, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("item_id", Integer, ForeignKey("queue_items.id")),  # the queue item that drafted or posted it
    UniqueConstraint("case_id", "direction", "platform_id", name="uq_queue_messages_platform"),
    Index("ix_queue_messages_case", "case_id", "id"),
)

# API tokens: only a hash is stored; the token itself is shown once when it is made.
api_tokens = Table(
    "queue_api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user", String(100), ForeignKey("queue_users.name"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(100)),
    Column("last_used_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
)

# Webhook deliveries already taken in, so a redelivered event is acknowledged and not processed twice.
deliveries = Table(
    "queue_webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", String(32), nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("case_id", Integer),
    Column("item_id", Integer),
    UniqueConstraint("platform", "delivery_id", name="uq_queue_webhook_deliveries"),
)
