"""Alembic environment: uses the connection handed over by ``copilot.queue.db.migrate``, or the URL in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from copilot.community.store import metadata as community_metadata
from copilot.incidents.tables import metadata as incident_metadata
from copilot.queue.db import VERSION_TABLE
from copilot.queue.tables import metadata as queue_metadata

config = context.config
# One database: the queue's tables and, beside them, the community store's (migration 0002) and the
# incident store's (0004).
metadata = [queue_metadata, community_metadata, incident_metadata]


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
