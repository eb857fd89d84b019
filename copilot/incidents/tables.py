"""The incident store's tables, in the queue's database beside the queue's own (migration ``0004``)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from copilot.queue import tables
from copilot.queue.tables import UTCDateTime

metadata = MetaData()

incidents = Table(
    "incident_incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("keywords", JSON, nullable=False),
    Column("centroids", LargeBinary, nullable=False),  # float32 bytes: one row of ``dims`` per group gathered
    Column("dims", Integer, nullable=False),
    Column("merged_into", Integer),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("detected_at", UTCDateTime(), nullable=False),
    Column("expected", Float, nullable=False),
    Column("example_case_id", Integer),
    Column("announcement_id", String(200)),
    Column("reply", JSON, nullable=False),
    Column("reply_drafted_by", String(100)),
    Column("reply_approved_by", String(100)),
    Column("reply_approved_at", UTCDateTime()),
    Column("followup", JSON, nullable=False),
    Column("followup_announcement_id", String(200)),
    Column("followup_approved_by", String(100)),
    Column("followup_approved_at", UTCDateTime()),
    Column("resolved_by", String(100)),
    Column("resolved_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_incident_incidents_status", "status"),
)

members = Table(
    "incident_members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incident_incidents.id"), nullable=False),
    Column("case_id", Integer, ForeignKey(tables.cases.c.id), nullable=False, unique=True),  # one incident each
    Column("similarity", Float, nullable=False),
    Column("joined_at", UTCDateTime(), nullable=False),
    Column("left_out", Text),
    Index("ix_incident_members_incident", "incident_id", "joined_at"),
)

replies = Table(
    "incident_replies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incident_incidents.id"), nullable=False),
    Column("case_id", Integer, ForeignKey(tables.cases.c.id), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("item_id", Integer, ForeignKey(tables.items.c.id), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    UniqueConstraint("case_id", "phase", name="uq_incident_replies_once"),
)

events = Table(
    "incident_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incident_incidents.id"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("action", String(24), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_incident_events_incident", "incident_id", "id"),
)

vectors = Table(
    "incident_vectors",
    metadata,
    Column("case_id", Integer, ForeignKey(tables.cases.c.id), primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float16 bytes, normalised
    Index("ix_incident_vectors_at", "at"),
)
