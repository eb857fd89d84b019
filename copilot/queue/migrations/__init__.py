"""Alembic migrations of the review queue; run by ``copilot.queue.db.migrate`` on every open."""
