"""The review queue: users, cases, items, audit trail and pending-file imports.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_users",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(300)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(100)),
    )
    op.create_table(
        "queue_cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("inbound_id", sa.String(200)),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("triage", sa.JSON, nullable=False),
        sa.Column("owner", sa.String(100)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("channel", "inbound_id", name="uq_queue_cases_inbound"),
    )
    op.create_index("ix_queue_cases_status", "queue_cases", ["status"])
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("queue_cases.id")),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("original_text", sa.Text, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("inbound_id", sa.String(200)),
        sa.Column("inbound_text", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("priority_score", sa.Float, nullable=False),
        sa.Column("assignee", sa.String(100)),
        sa.Column("drafted_by", sa.String(100), nullable=False),
        sa.Column("edited_by", sa.String(100)),
        sa.Column("approved_by", sa.String(100)),
        sa.Column("reject_reason", sa.Text),
        sa.Column("edit_distance", sa.Integer),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("drafted_at", sa.DateTime(), nullable=False),
        sa.Column("approved_at", sa.DateTime()),
        sa.Column("rejected_at", sa.DateTime()),
        sa.Column("posted_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), unique=True),
        sa.Column("claim_token", sa.String(32)),
        sa.Column("claimed_at", sa.DateTime()),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("external_id", sa.String(200)),
        sa.Column("triage", sa.JSON, nullable=False),
        sa.Column("draft", sa.JSON, nullable=False),
    )
    op.create_index("ix_queue_items_status", "queue_items", ["status", "priority", "received_at"])
    op.create_index("ix_queue_items_case", "queue_items", ["case_id"])
    op.create_table(
        "queue_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("queue_items.id"), nullable=False),
        sa.Column("case_id", sa.Integer),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("before_text", sa.Text),
        sa.Column("after_text", sa.Text),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_queue_audit_item", "queue_audit", ["item_id", "id"])
    op.create_table(
        "queue_imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("queue_imports")
    op.drop_index("ix_queue_audit_item", table_name="queue_audit")
    op.drop_table("queue_audit")
    op.drop_index("ix_queue_items_case", table_name="queue_items")
    op.drop_index("ix_queue_items_status", table_name="queue_items")
    op.drop_table("queue_items")
    op.drop_index("ix_queue_cases_status", table_name="queue_cases")
    op.drop_table("queue_cases")
    op.drop_table("queue_users")
