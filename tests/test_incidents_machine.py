"""Property: whatever order an outage's messages, redeliveries, approvals, the resolution, publishing runs
(one at a time, two at once, or dying mid-post) come in, every case of the incident that fits its reply is
posted exactly one reply once the reply is approved, and exactly one follow-up once that is approved (a case
that joins after the follow-up was approved gets only the follow-up); a case left out gets neither; a redelivered event opens no second case; nothing is posted twice."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import Counter
from pathlib import Path

import hypothesis.strategies as st
from _incident_support import ORDINARY, OUTAGE, make_desk
from _queue_support import Crash, CrashingPublisher, outbox_lines
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from copilot.connectors.base import PlatformEvent
from copilot.queue.publish import OutboxPublisher
from copilot.types import Inbound

LEFT_OUT = "my lumio hub is offline, app says hub unreachable, and I want a refund for this month"


class IncidentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="incident-sm-"))
        self.pipe, self.desk, self.intake, self.clock, self.platform = make_desk(self.dir)
        self.pipe.queue.add_user("lead", "admin")
        self.events: list[PlatformEvent] = []
        self.cases: set[int] = set()
        self.sent = 0
        self.reply_approved = False
        self.followup_approved = False
        self.members_at_followup: set[int] = set()  # who had joined when the follow-up was approved

    def teardown(self) -> None:
        self.pipe.queue.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _deliver(self, texts: list[str]) -> None:
        events = []
        for text in texts:
            self.sent += 1
            self.clock.advance(seconds=15)
            inbound = Inbound(text=text, channel="twitter", author=f"user{self.sent}", id=f"m-{self.sent}")
            events.append(PlatformEvent(inbound, f"delivery-{self.sent}"))
        report = self.intake.take(self.platform, events)
        assert not set(report.cases) & self.cases  # each new message is a new case
        self.cases |= set(report.cases)
        self.events += events

    def _incident(self) -> int | None:
        found = self.desk.list_incidents()
        assert len(found) <= 1, [x.title for x in found]  # one outage, one incident
        return found[0].id if found else None

    @rule(n=st.integers(1, 4), odd=st.booleans())
    def outage_messages(self, n: int, odd: bool) -> None:
        texts = [OUTAGE[(self.sent + i) % len(OUTAGE)] for i in range(n)]
        self._deliver([*texts, LEFT_OUT] if odd else texts)

    @rule(n=st.integers(1, 3))
    def ordinary_messages(self, n: int) -> None:
        self._deliver([ORDINARY[(self.sent + i) % len(ORDINARY)] for i in range(n)])

    @precondition(lambda self: self.events)
    @rule(data=st.data())
    def redelivery(self, data: st.DataObject) -> None:
        events = data.draw(st.lists(st.sampled_from(self.events), min_size=1, max_size=3))
        report = self.intake.take(self.platform, events)
        assert report.duplicates == len(events) and set(report.cases) <= self.cases

    @precondition(lambda self: not self.reply_approved)
    @rule()
    def approve_reply(self) -> None:
        incident = self._incident()
        if incident is not None:
            self.desk.approve(incident, "reply", by="lead")
            self.reply_approved = True

    @precondition(lambda self: self.reply_approved and not self.followup_approved)
    @rule(approve=st.booleans())
    def resolve(self, approve: bool) -> None:
        incident = self._incident()
        assert incident is not None
        if self.desk.get(incident).status == "open":
            self.desk.resolve(incident, by="lead")
        if approve:
            self.members_at_followup = {m.case_id for m in self.desk.members(incident)}
            self.desk.approve(incident, "followup", by="lead")
            self.followup_approved = True

    @rule()
    def approve_again(self) -> None:  # a double click, or a second reviewer: nothing more is queued
        incident = self._incident()
        if incident is not None and self.reply_approved:
            assert self.desk.approve(incident, "reply", by="lead").queued == ()

    @rule()
    def publish(self) -> None:
        self.clock.advance(seconds=1)  # a publishing run starts after the claims a crash left behind
        # lease 0: one process, so a "posting" claim was left by a crash and is taken over.
        report = self.pipe.queue.publish_approved(OutboxPublisher(self.pipe.settings.outbox_path), by="lead",
                                                  lease_s=0)
        assert not report.failed and not report.skipped

    @rule()
    def two_publishers_at_once(self) -> None:
        errors: list[BaseException] = []

        def run() -> None:
            try:
                self.pipe.queue.publish_approved(OutboxPublisher(self.pipe.settings.outbox_path), by="lead",
                                                 lease_s=3600)
            except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    @rule(after_post=st.booleans())
    def crash_during_publish(self, after_post: bool) -> None:
        self.clock.advance(seconds=1)
        try:
            self.pipe.queue.publish_approved(
                CrashingPublisher(OutboxPublisher(self.pipe.settings.outbox_path), after_post=after_post),
                by="lead", lease_s=0)
        except Crash:
            pass

    @invariant()
    def nothing_is_posted_twice(self) -> None:
        lines = outbox_lines(self.pipe.settings)
        assert all(n == 1 for n in Counter(line["item_id"] for line in lines).values())
        per_case = Counter(self.pipe.queue.get(line["item_id"]).case_id for line in lines)
        assert all(n <= 2 for n in per_case.values())  # a reply and a follow-up at most

    def check_final(self) -> None:
        """Once every publisher is done: exactly one reply (and one follow-up) per case that fits."""
        self.clock.advance(seconds=1)
        self.pipe.queue.publish_approved(OutboxPublisher(self.pipe.settings.outbox_path), by="lead", lease_s=0)
        posted = Counter(line["item_id"] for line in outbox_lines(self.pipe.settings))
        incident = self._incident()
        members = self.desk.members(incident) if incident is not None else []
        assert len(members) == len({m.case_id for m in members})
        for member in members:
            late = self.followup_approved and member.case_id not in self.members_at_followup
            wants_reply = self.reply_approved and member.left_out is None and not late  # late: told it is fixed
            wants_followup = self.followup_approved and member.left_out is None
            assert (member.reply_item_id is not None) == wants_reply, member
            assert (member.followup_item_id is not None) == wants_followup, member
            for item_id in (member.reply_item_id, member.followup_item_id):
                if item_id is not None:
                    assert posted[item_id] == 1 and self.pipe.queue.get(item_id).status == "posted"
            if member.left_out is not None:
                assert "refund" in member.left_out or "crisis" in member.left_out, member.left_out
        in_incident = {m.case_id for m in members}
        for line in outbox_lines(self.pipe.settings):
            assert self.pipe.queue.get(line["item_id"]).case_id in in_incident  # no reply to anyone else


class FinalChecked(IncidentMachine):
    def teardown(self) -> None:
        try:
            self.check_final()
        finally:
            super().teardown()


TestIncidentMachine = FinalChecked.TestCase
TestIncidentMachine.settings = settings(max_examples=25, stateful_step_count=20, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
