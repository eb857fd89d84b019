"""Property: random sequences of draft, edit, approve, reject, reopen, publish and crash-during-publish never
post anything unapproved, never post anything twice, and leave every transition in the audit trail."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import hypothesis.strategies as st
import pytest
from _queue_support import PG_ENV, Crash, CrashingPublisher, make_draft, outbox_lines
from hypothesis import HealthCheck, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from copilot.config import Settings
from copilot.errors import ConflictError, UserError
from copilot.queue.db import pg_schema
from copilot.queue.publish import OutboxPublisher
from copilot.queue.records import TRANSITIONS
from copilot.queue.store import open_queue

REVIEWABLE = ("pending", "escalated")
PUBLISHABLE = ("approved", "failed", "posting")
texts = st.text(alphabet="ab .!", max_size=12)


class QueueMachine(RuleBasedStateMachine):
    items = Bundle("items")
    pg_url: str | None = None  # set: run on a fresh schema of this PostgreSQL server

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="queue-sm-"))
        self.resources = ExitStack()
        database_url = self.resources.enter_context(pg_schema(self.pg_url)) if self.pg_url else None
        self.settings = Settings(data_dir=self.dir, database_url=database_url)
        self.queue = open_queue(self.settings)
        self.publisher = OutboxPublisher(self.settings.outbox_path)
        self.expected: dict[int, str] = {}  # the status each item must have
        self.approved_text: dict[int, str] = {}
        self.count = 0

    def teardown(self) -> None:
        self.queue.close()
        self.resources.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _version(self, item_id: int, stale: bool) -> int:
        return self.queue.get(item_id).version - (1 if stale else 0)

    @rule(target=items, crisis=st.booleans())
    def draft(self, crisis: bool) -> int:
        self.count += 1
        item = self.queue.submit(make_draft(self.count, crisis=crisis), by="agent")
        self.expected[item.id] = item.status
        assert item.status == ("escalated" if crisis else "pending")
        return item.id

    @rule(item_id=items, text=texts, stale=st.booleans())
    def edit(self, item_id: int, text: str, stale: bool) -> None:
        current = self.queue.get(item_id)
        ok = (not stale and current.status in REVIEWABLE and text.strip() != "" and text.strip() != current.text)
        try:
            self.queue.edit(item_id, text, by="agent", version=self._version(item_id, stale))
        except UserError as exc:
            assert not ok, exc
            if stale and text.strip():
                assert isinstance(exc, ConflictError)
        else:
            assert ok

    @rule(item_id=items, text=st.none() | texts, stale=st.booleans())
    def approve(self, item_id: int, text: str | None, stale: bool) -> None:
        current = self.queue.get(item_id)
        final = current.text if text is None else text.strip()
        ok = not stale and current.status in REVIEWABLE and final != ""
        try:
            item = self.queue.approve(item_id, by="reviewer", version=self._version(item_id, stale), text=text)
        except UserError as exc:
            assert not ok, exc
        else:
            assert ok and item.status == "approved" and item.text == final
            self.expected[item_id] = "approved"
            self.approved_text[item_id] = final

    @rule(item_id=items, stale=st.booleans())
    def reject(self, item_id: int, stale: bool) -> None:
        current = self.queue.get(item_id)
        ok = not stale and current.status in REVIEWABLE
        try:
            self.queue.reject(item_id, by="reviewer", version=self._version(item_id, stale), reason="off-voice")
        except ConflictError:
            assert not ok
        else:
            assert ok
            self.expected[item_id] = "rejected"

    @rule(item_id=items, stale=st.booleans())
    def reopen(self, item_id: int, stale: bool) -> None:
        ok = not stale and self.queue.get(item_id).status == "rejected"
        try:
            self.queue.reopen(item_id, by="reviewer", version=self._version(item_id, stale))
        except ConflictError:
            assert not ok
        else:
            assert ok
            self.expected[item_id] = "pending"

    @rule()
    def publish(self) -> None:
        # lease 0: one process here, so any "posting" claim was left by a crash and is taken over.
        report = self.queue.publish_approved(self.publisher, by="reviewer", lease_s=0)
        assert not report.failed and not report.skipped
        for item_id in (*report.posted, *report.duplicates):
            assert self.expected[item_id] in PUBLISHABLE
        for item_id, status in self.expected.items():
            if status in PUBLISHABLE:
                self.expected[item_id] = "posted"

    @precondition(lambda self: any(s in PUBLISHABLE for s in self.expected.values()))
    @rule(after_post=st.booleans())
    def crash_during_publish(self, after_post: bool) -> None:
        before = {i: s for i, s in self.expected.items() if s in PUBLISHABLE}
        try:
            self.queue.publish_approved(CrashingPublisher(self.publisher, after_post=after_post),
                                        by="reviewer", lease_s=0)
        except Crash:
            pass
        else:
            raise AssertionError("the publisher should have crashed")
        changed = {i for i in before if self.queue.get(i).status != before[i]}
        assert len(changed) <= 1 and all(self.queue.get(i).status == "posting" for i in changed)
        for item_id in before:
            self.expected[item_id] = self.queue.get(item_id).status
        # The process died: the next publisher is a new one that knows only what is on disk.
        self.publisher = OutboxPublisher(self.settings.outbox_path)

    @invariant()
    def statuses_match_the_model(self) -> None:
        for item_id, status in self.expected.items():
            assert self.queue.get(item_id).status == status, item_id

    @invariant()
    def nothing_unapproved_or_twice_is_posted(self) -> None:
        lines = outbox_lines(self.settings)
        counts = Counter(line["item_id"] for line in lines)
        assert all(n == 1 for n in counts.values()), counts
        assert len({line["idempotency_key"] for line in lines}) == len(lines)
        for line in lines:
            item_id = line["item_id"]
            assert item_id in self.approved_text, f"item {item_id} was posted but never approved"
            assert line["text"] == self.approved_text[item_id]
            assert self.queue.get(item_id).status in ("posting", "posted")
            actions = [e.action for e in self.queue.audit(item_id)]
            assert "approve" in actions and actions.index("approve") < actions.index("publish")
        for item_id, status in self.expected.items():
            if status == "posted":
                assert counts[item_id] == 1

    @invariant()
    def every_transition_is_audited(self) -> None:
        for item_id in self.expected:
            item = self.queue.get(item_id)
            events = self.queue.audit(item_id)
            assert events[0].action == "draft" and events[0].from_status is None
            status, version = events[0].to_status, 1
            for event in events[1:]:
                assert event.from_status == status, (item_id, event)
                if event.action == "assign":
                    continue
                allowed, target = TRANSITIONS[event.action]
                assert status in allowed and event.to_status == (target or status)
                version += 1
                assert event.version == version
                status = event.to_status
            assert (status, version) == (item.status, item.version)
            for event in events:
                if event.action == "edit":
                    assert event.before_text is not None and event.after_text is not None
                    assert event.before_text != event.after_text


QueueMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestQueueStateMachine = QueueMachine.TestCase


class PostgresQueueMachine(QueueMachine):
    pg_url = os.environ.get(PG_ENV)


PostgresQueueMachine.TestCase.settings = settings(
    max_examples=10, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestPostgresQueueStateMachine = pytest.mark.skipif(
    not PostgresQueueMachine.pg_url, reason=f"{PG_ENV} is not set: PostgreSQL tests need scripts/postgres.sh"
)(pytest.mark.postgres(PostgresQueueMachine.TestCase))
