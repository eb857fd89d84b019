"""Shared parts of the queue tests: drafts, the database backends, and worker functions for real processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.config import Settings
from copilot.errors import ConflictError
from copilot.queue.db import pg_schema
from copilot.queue.publish import OutboxPublisher, OutgoingMessage, PostReceipt
from copilot.queue.store import open_queue
from copilot.types import Draft, Inbound, Triage

PG_ENV = "COPILOT_TEST_PG_URL"
# What a fork server imports once for all worker processes (installed modules only: it does not see tests/).
PRELOAD = ["copilot.queue.store", "copilot.queue.delivery", "alembic.command", "alembic.config",
           "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "psycopg"]


def make_draft(
    n: int = 0, *, text: str | None = None, kind: str = "reply", status: str = "pending", priority: int = 3,
    waiting_minutes: float = 0.0, crisis: bool = False, inbound_id: str | None = None, channel: str = "twitter",
) -> Draft:
    """A draft as the drafting stage makes it."""
    triage = Triage(
        kind="crisis" if crisis else "complaint", sentiment="negative", sentiment_score=-0.4, priority=priority,
        priority_score=100.0 - priority * 20, crisis=crisis, crisis_reason="safety" if crisis else None,
    )
    inbound = Inbound(
        text=f"My router keeps dropping wifi ({n})", channel=channel, author=f"@customer{n}",
        id=inbound_id if inbound_id is not None else f"msg-{n}", waiting_minutes=waiting_minutes,
    )
    return Draft(
        text=f"Sorry about the drops! Restarting the router fixes it for most people ({n})." if text is None else text,
        channel=channel, inbound=inbound, triage=triage, cited_ids=("kb-wifi-drops",),
        retrieved_ids=("kb-wifi-drops", "kb-router-reset"), confidence=0.8, template="reply.j2",
        template_hash="0123abcd", latency_ms=12.5, status=status, kind=kind, flags=("test",),
    )


def pg_url_or_skip() -> str:
    """The test server's URL, or skip: scripts/postgres.sh starts one and prints it."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: run `export {PG_ENV}=$(scripts/postgres.sh)` for PostgreSQL tests")
    return url


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh database: SQLite in tmp_path, or a private schema on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
        return
    with pg_schema(pg_url_or_skip()) as url:
        yield Settings(data_dir=tmp_path, database_url=url)


def settings_args(settings: Settings) -> dict[str, Any]:
    """What a child process needs to rebuild the same settings."""
    return {"data_dir": settings.data_dir, "database_url": settings.database_url, "four_eyes": settings.four_eyes}


def outbox_lines(settings: Settings) -> list[dict[str, Any]]:
    """Every message in the outbox."""
    import json

    path = settings.outbox_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# Worker functions for real processes (spawned: they must be importable top-level functions) --------------


def race_approve(args: dict[str, Any], item_id: int, version: int, name: str, barrier: Any, results: Any) -> None:
    """Approve one item at a stale-or-not version together with other processes."""
    queue = open_queue(Settings(**args))
    barrier.wait()
    try:
        queue.approve(item_id, by=name, version=version, text=f"Final answer written by {name}.")
        results.put(("ok", name))
    except ConflictError as exc:
        results.put(("conflict", str(exc)))
    finally:
        queue.close()


def race_edit(args: dict[str, Any], item_id: int, version: int, name: str, barrier: Any, results: Any) -> None:
    """Edit one item together with other processes."""
    queue = open_queue(Settings(**args))
    barrier.wait()
    try:
        queue.edit(item_id, f"Edited by {name}.", by=name, version=version)
        results.put(("ok", name))
    except ConflictError as exc:
        results.put(("conflict", str(exc)))
    finally:
        queue.close()


def race_submit(args: dict[str, Any], n: int, barrier: Any, results: Any) -> None:
    """Submit a draft answering the same new inbound message as other processes."""
    queue = open_queue(Settings(**args))
    barrier.wait()
    try:
        results.put(queue.submit(make_draft(n, inbound_id="shared-msg"), by=f"agent{n}").case_id)
    finally:
        queue.close()


def race_publish(args: dict[str, Any], barrier: Any, results: Any) -> None:
    """Publish everything approved together with other processes."""
    settings = Settings(**args)
    queue = open_queue(settings)
    barrier.wait()
    report = queue.publish_approved(OutboxPublisher(settings.outbox_path), by="publisher")
    queue.close()
    results.put(report.to_dict())


def open_and_publish(args: dict[str, Any], drafts: list[dict[str, Any]], barrier: Any, results: Any) -> None:
    """Open the queue (migrating it) and import the same batch of drafts together with other processes, then publish."""
    settings = Settings(**args)
    barrier.wait()
    with open_queue(settings) as queue:
        queue.import_drafts(drafts, sha256="the-same-batch", source="batch")
        results.put(queue.publish_approved(OutboxPublisher(settings.outbox_path), by="publisher").to_dict())


class DyingPublisher:
    """Posts through the outbox, then kills its process before the queue can record the post."""

    name = "dying"

    def __init__(self, path: Path) -> None:
        self.inner = OutboxPublisher(path)

    def post(self, message: OutgoingMessage) -> PostReceipt:
        self.inner.post(message)
        os._exit(17)

    def close(self) -> None:
        self.inner.close()


def publish_and_die(args: dict[str, Any]) -> None:
    """Publish, and die right after the first message reached the outbox."""
    settings = Settings(**args)
    queue = open_queue(settings)
    queue.publish_approved(DyingPublisher(settings.outbox_path), by="publisher")


class Crash(BaseException):
    """The publishing process dies (BaseException: nothing in the queue may catch it)."""


class CrashingPublisher:
    """Dies at its first message: before handing it to the outbox, or right after."""

    name = "crashing"

    def __init__(self, inner: OutboxPublisher, *, after_post: bool) -> None:
        self.inner = inner
        self.after_post = after_post

    def post(self, message: OutgoingMessage) -> PostReceipt:
        if self.after_post:
            self.inner.post(message)
        raise Crash

    def close(self) -> None:
        self.inner.close()
