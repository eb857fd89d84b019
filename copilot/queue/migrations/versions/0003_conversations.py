"""Conversations, API tokens and webhook deliveries: a case is a thread of messages with the platform's ids.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_cases") as batch:
        batch.add_column(sa.Column("conversation", sa.String(300)))
        batch.create_index("ix_queue_cases_conversation", ["channel", "conversation"])
    with op.batch_alter_table("queue_items") as batch:
        batch.add_column(sa.Column("conversation", sa.String(300)))
    op.create_table(
        "queue_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("queue_cases.id"), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("platform_id", sa.String(200)),
        sa.Column("author", sa.String(200)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("queue_items.id")),
        sa.UniqueConstraint("case_id", "direction", "platform_id", name="uq_queue_messages_platform"),
    )
    op.create_index("ix_queue_messages_case", "queue_messages", ["case_id", "id"])
    # The cases that exist already: their first message is the one they were opened with.
    op.execute("INSERT INTO queue_messages (case_id, direction, platform_id, author, text, at) "
               "SELECT id, 'in', inbound_id, author, text, received_at FROM queue_cases")
    op.create_table(
        "queue_api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(100), sa.ForeignKey("queue_users.name"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(200)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(100)),
        sa.Column("last_used_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
    )
    op.create_table(
        "queue_webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("case_id", sa.Integer),
        sa.Column("item_id", sa.Integer),
        sa.UniqueConstraint("platform", "delivery_id", name="uq_queue_webhook_deliveries"),
    )


def downgrade() -> None:
    op.drop_table("queue_webhook_deliveries")
    op.drop_table("queue_api_tokens")
    op.drop_index("ix_queue_messages_case", table_name="queue_messages")
    op.drop_table("queue_messages")
    with op.batch_alter_table("queue_items") as batch:
        batch.drop_column("conversation")
    with op.batch_alter_table("queue_cases") as batch:
        batch.drop_index("ix_queue_cases_conversation")
        batch.drop_column("conversation")
