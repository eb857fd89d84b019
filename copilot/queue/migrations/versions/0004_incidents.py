"""Incidents: many customers reporting the same thing at once, their affected cases, the replies queued for
them once each, their timelines, and the message vectors surge detection reads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("centroids", sa.LargeBinary, nullable=False),
        sa.Column("dims", sa.Integer, nullable=False),
        sa.Column("merged_into", sa.Integer),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("detected_at", sa.DateTime(), nullable=False),
        sa.Column("expected", sa.Float, nullable=False),
        sa.Column("example_case_id", sa.Integer),
        sa.Column("announcement_id", sa.String(200)),
        sa.Column("reply", sa.JSON, nullable=False),
        sa.Column("reply_drafted_by", sa.String(100)),
        sa.Column("reply_approved_by", sa.String(100)),
        sa.Column("reply_approved_at", sa.DateTime()),
        sa.Column("followup", sa.JSON, nullable=False),
        sa.Column("followup_announcement_id", sa.String(200)),
        sa.Column("followup_approved_by", sa.String(100)),
        sa.Column("followup_approved_at", sa.DateTime()),
        sa.Column("resolved_by", sa.String(100)),
        sa.Column("resolved_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_incident_incidents_status", "incident_incidents", ["status"])
    op.create_table(
        "incident_members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incident_incidents.id"), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("queue_cases.id"), nullable=False, unique=True),
        sa.Column("similarity", sa.Float, nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.Column("left_out", sa.Text),
    )
    op.create_index("ix_incident_members_incident", "incident_members", ["incident_id", "joined_at"])
    op.create_table(
        "incident_replies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incident_incidents.id"), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("queue_cases.id"), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("queue_items.id"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("case_id", "phase", name="uq_incident_replies_once"),
    )
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incident_incidents.id"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_incident_events_incident", "incident_events", ["incident_id", "id"])
    op.create_table(
        "incident_vectors",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("queue_cases.id"), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_incident_vectors_at", "incident_vectors", ["at"])


def downgrade() -> None:
    for index, table in (("ix_incident_vectors_at", "incident_vectors"),
                         ("ix_incident_events_incident", "incident_events"),
                         ("ix_incident_members_incident", "incident_members"),
                         ("ix_incident_incidents_status", "incident_incidents")):
        op.drop_index(index, table_name=table)
    for table in ("incident_vectors", "incident_events", "incident_replies", "incident_members",
                  "incident_incidents"):
        op.drop_table(table)
