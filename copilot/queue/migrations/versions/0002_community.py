"""Community: the promoter registry with its history, and the FAQ proposals written into the knowledge base.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "community_promoters",
        sa.Column("handle", sa.String(200), primary_key=True),
        sa.Column("display", sa.String(200), nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("interests", sa.JSON, nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("positive", sa.Integer, nullable=False),
        sa.Column("helpful", sa.Integer, nullable=False),
        sa.Column("recommendations", sa.Integer, nullable=False),
        sa.Column("negative", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("is_promoter", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("consent", sa.String(16), nullable=False),
        sa.Column("opted_out", sa.Boolean, nullable=False),
        sa.Column("opted_out_at", sa.DateTime()),
        sa.Column("opt_out_reason", sa.Text),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("first_seen", sa.DateTime()),
        sa.Column("last_seen", sa.DateTime()),
        sa.Column("last_contacted_at", sa.DateTime()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_community_promoters_score", "community_promoters", ["is_promoter", "score"])
    op.create_table(
        "community_promoter_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("handle", sa.String(200), sa.ForeignKey("community_promoters.handle"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("item_id", sa.Integer),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_community_promoter_events_handle", "community_promoter_events", ["handle", "id"])
    op.create_table(
        "community_applied_proposals",
        sa.Column("item_id", sa.Integer, sa.ForeignKey("queue_items.id"), primary_key=True),
        sa.Column("entry_id", sa.String(200), nullable=False, unique=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("applied_by", sa.String(100), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("community_applied_proposals")
    op.drop_index("ix_community_promoter_events_handle", table_name="community_promoter_events")
    op.drop_table("community_promoter_events")
    op.drop_index("ix_community_promoters_score", table_name="community_promoters")
    op.drop_table("community_promoters")
