"""The queue's database: an engine from the settings (SQLite in WAL mode, or PostgreSQL), its transactions, its
migrations, and throwaway PostgreSQL schemas for tests and the benchmark."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from copilot.config import Settings
from copilot.errors import ConfigError, ProviderError

VERSION_TABLE = "queue_alembic_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Fixed numbers for PostgreSQL advisory locks (SQLite's write lock already serialises writers).
MIGRATION_LOCK = 0x636F70696C6F74
IMPORT_LOCK = MIGRATION_LOCK + 1
SQLITE_BUSY_TIMEOUT_MS = 60_000
READ_ONLY = "copilot_read_only"


def build_engine(settings: Settings) -> Engine:
    """An engine for ``settings.db_url``: SQLite gets WAL, a busy timeout and write-locking transactions."""
    try:
        url = make_url(settings.db_url)
    except ArgumentError as exc:
        raise ConfigError(f"invalid database_url {settings.db_url!r}: {exc}") from exc
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":  # plain postgresql:// means psycopg 3, the driver we ship
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url, pool_pre_ping=True)
    raise ConfigError(f"unsupported database_url {settings.db_url!r}: use sqlite:/// or postgresql://")


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling would begin lazily and upgrade read locks to write locks,
    # which in WAL mode fails at once with SQLITE_BUSY under concurrency. We begin every writing
    # transaction with BEGIN IMMEDIATE instead, so writers queue on the busy timeout.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # FULL: a committed approval or claim survives a power cut, as on PostgreSQL (NORMAL could
        # lose the last commits); it costs an fsync per commit, which the benchmark shows.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on error."""
    try:
        with engine.begin() as conn:
            yield conn
    except OperationalError as exc:
        raise ProviderError(f"queue database failed: {exc.orig or exc}") from exc


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (on SQLite it does not take the write lock)."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                yield conn
    except OperationalError as exc:
        raise ProviderError(f"queue database failed: {exc.orig or exc}") from exc


def exclusive(conn: Connection, key: int) -> None:
    """Hold a database-wide lock named by ``key`` until the transaction ends (one writer at a time)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (``alembic upgrade head``), safely from many processes at once."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with writing(engine) as conn:  # SQLite: BEGIN IMMEDIATE holds the write lock for the whole upgrade
        exclusive(conn, MIGRATION_LOCK)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema: yields a URL whose connections use it, and drops it afterwards."""
    base = make_url(url)
    if base.drivername == "postgresql":
        base = base.set(drivername="postgresql+psycopg")
    name = f"copilot_tmp_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        try:
            yield base.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)
        finally:
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()
