"""The community store and the queue reads the community code uses, on a real SQLite file (no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _queue_support import make_draft

from copilot.community.store import CommunityStore, Signals
from copilot.config import Settings
from copilot.errors import NotFoundError, PermissionDenied, UserError
from copilot.queue.publish import OutboxPublisher
from copilot.queue.store import ReviewQueue, open_queue

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def queue(tmp_path: Path, clock: Clock) -> Iterator[ReviewQueue]:
    with open_queue(Settings(data_dir=tmp_path), clock=clock) as opened:
        yield opened


def signals(handle: str, *, score: float = 3.0, promoter: bool = True, positive: int = 3) -> Signals:
    return Signals(handle=handle, display=f"@{handle}", channels=("forum",), interests=("lumio-strip",), messages=4,
                   positive=positive, helpful=0, recommendations=0, negative=0, score=score, is_promoter=promoter,
                   evidence=({"ref": "case 1", "signals": ["positive"]},), first_seen=T0, last_seen=T0)


def test_a_scan_adds_members_then_refreshes_them_and_never_touches_consent(queue: ReviewQueue, clock: Clock) -> None:
    store = CommunityStore.beside(queue)
    assert store.promoter("sunny") is None
    new, updated = store.record_scan([signals("sunny"), signals("quiet", score=0.0, promoter=False)], by="casey")
    assert (new, updated) == (["sunny"], [])
    store.set_consent("sunny", "granted", by="casey")
    clock.advance(days=1)
    new, updated = store.record_scan([signals("sunny", score=5.0, positive=5), signals("quiet", score=3.0)], by="casey")
    assert (new, updated) == (["quiet"], ["sunny"])
    sunny = store.promoter("sunny")
    assert sunny is not None and (sunny.score, sunny.positive, sunny.consent) == (5.0, 5, "granted")
    assert [h["action"] for h in sunny.history] == ["detected", "consent"]
    assert sunny.history[0]["detail"] == {"score": 3.0, "positive": 3, "helpful": 0, "recommendations": 0}
    assert store.promoter("sunny", history=False).history == ()  # type: ignore[union-attr]
    assert [p.handle for p in store.promoters()] == ["sunny", "quiet"]  # by score
    assert [p.handle for p in store.promoters(limit=1)] == ["sunny"]
    assert store.detected_between(T0, T0 + timedelta(hours=1)) == ["sunny"]
    assert store.detected_between(T0 + timedelta(hours=1), T0 + timedelta(days=2)) == ["quiet"]


def test_opt_out_consent_notes_and_outreach(queue: ReviewQueue, clock: Clock) -> None:
    store = CommunityStore.beside(queue)
    with pytest.raises(NotFoundError, match="nothing to opt in"):
        store.set_opt_out("nobody", display="@Nobody", opted_out=False, by="casey")
    store.set_opt_out("stranger", display="@Stranger", opted_out=True, by="casey", reason="  no thanks ")
    stranger = store.promoter("stranger")
    assert stranger is not None
    assert (stranger.display, stranger.source, stranger.consent, stranger.opt_out_reason) == (
        "@Stranger", "manual", "declined", "no thanks")
    assert stranger.opted_out_at == T0 and not stranger.contactable and not stranger.is_promoter
    assert store.promoters() == [] and [p.handle for p in store.promoters(promoters_only=False, limit=None)] == [
        "stranger"]
    with pytest.raises(UserError, match="opted out"):
        store.set_consent("stranger", "granted", by="casey")
    with pytest.raises(UserError, match="unknown consent"):
        store.set_consent("stranger", "maybe", by="casey")
    with pytest.raises(NotFoundError):
        store.add_note("nobody", "hello", by="casey")
    store.add_note("stranger", "met at the meetup", by="casey")
    store.add_note("stranger", "prefers email", by="casey")
    clock.advance(hours=2)
    store.set_opt_out("stranger", display="@Stranger", opted_out=False, by="casey")
    item = queue.submit(make_draft(1, kind="outreach"), by="casey")
    store.record_outreach("stranger", item_id=item.id, outreach="thanks", by="casey")
    stranger = store.promoter("stranger")
    assert stranger is not None
    assert (stranger.opted_out, stranger.consent, stranger.opted_out_at) == (False, "granted", None)
    assert stranger.notes == "met at the meetup\nprefers email" and stranger.last_contacted_at == clock.now
    assert [h["action"] for h in stranger.history] == ["opt_out", "note", "note", "opt_in", "outreach"]
    assert stranger.history[0]["detail"] == {"reason": "no thanks"}
    assert stranger.history[-1]["item_id"] == item.id and stranger.history[-1]["detail"] == {"outreach": "thanks"}


def test_community_writes_check_the_queue_users_in_the_same_transaction(queue: ReviewQueue) -> None:
    queue.add_user("admin", "admin")
    queue.add_user("amira", "agent", by="admin")
    store = CommunityStore.beside(queue)
    with pytest.raises(PermissionDenied, match="unknown user"):
        store.record_scan([signals("sunny")], by="mallory")
    assert store.promoter("sunny") is None
    store.record_scan([signals("sunny")], by="amira")
    store.set_opt_out("sunny", display="@sunny", opted_out=True, by="amira")  # anyone may record an opt-out
    assert store.applied_item_ids() == set()  # reading needs no role
    item = queue.submit(make_draft(2, kind="faq_proposal"), by="amira")
    with (
        pytest.raises(PermissionDenied, match="publish needs"),
        store.applying_proposal(item.id, entry_id="kb-x", path="/kb/x.md", by="amira"),
    ):
        pass
    assert store.applied_item_ids() == set()


def test_an_applied_proposal_is_recorded_only_when_its_file_was_written(queue: ReviewQueue, clock: Clock) -> None:
    store = CommunityStore.beside(queue)
    first = queue.submit(make_draft(3, kind="faq_proposal"), by="casey")
    second = queue.submit(make_draft(4, kind="faq_proposal"), by="casey")
    with (
        pytest.raises(OSError, match="disk full"),
        store.applying_proposal(first.id, entry_id="kb-one", path="/kb/one.md", by="casey"),
    ):
        raise OSError("disk full")
    assert store.applied_item_ids() == set()
    with store.applying_proposal(first.id, entry_id="kb-one", path="/kb/one.md", by="casey"):
        pass
    with (
        pytest.raises(UserError, match=f"proposal {first.id}: already applied"),
        store.applying_proposal(first.id, entry_id="kb-other", path="/kb/other.md", by="casey"),
    ):
        pass
    with (
        pytest.raises(UserError, match="id kb-one is taken"),
        store.applying_proposal(second.id, entry_id="kb-one", path="/kb/one-again.md", by="casey"),
    ):
        pass
    assert store.applied_item_ids() == {first.id}
    assert store.applied_item_ids([second.id]) == set()
    assert store.count_applied_between(T0, T0 + timedelta(seconds=1)) == 1
    assert store.count_applied_between(T0 + timedelta(seconds=1), T0 + timedelta(days=1)) == 0


def test_the_store_follows_the_queue_clock_as_it_moves(queue: ReviewQueue) -> None:
    store = CommunityStore.beside(queue)
    later = T0 + timedelta(days=3)
    queue.clock = lambda: later  # the demo moves the clock for every simulated action
    store.set_opt_out("sunny", display="@sunny", opted_out=True, by="casey")
    assert store.promoter("sunny").opted_out_at == later  # type: ignore[union-attr]


def test_queue_reads_for_the_community_code(queue: ReviewQueue, clock: Clock) -> None:
    reply = queue.submit(make_draft(10), by="agent")
    clock.advance(hours=1)
    starter = queue.submit(make_draft(11, kind="starter"), by="agent")
    clock.advance(hours=1)
    outreach = queue.submit(make_draft(12, kind="outreach"), by="agent")
    rejected = queue.submit(make_draft(13, kind="faq_proposal"), by="agent")
    queue.reject(rejected.id, by="rita", version=rejected.version, reason="not needed")
    assert queue.count_items() == 4 and queue.count_users() == 0 and queue.require("anyone", "publish") is None

    assert [i.id for i in queue.items_drafted()] == [reply.id, starter.id, outreach.id, rejected.id]
    assert [i.id for i in queue.items_drafted(newest_first=True, limit=2)] == [rejected.id, outreach.id]
    assert [i.id for i in queue.items_drafted(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2))] == [
        starter.id]
    assert [i.id for i in queue.items_drafted(kind="faq_proposal", statuses=["pending"])] == []
    with pytest.raises(UserError, match="unknown status"):
        queue.items_drafted(statuses=["lost"])
    with pytest.raises(UserError, match="unknown kind"):
        queue.items_drafted(kind="tweet")

    assert queue.items_by_author("outreach", ["@CUSTOMER12"]) == [queue.get(outreach.id)]
    assert queue.items_by_author("outreach", ["customer12"]) == []
    assert queue.find_item(kind="outreach", author="@customer12", drafted_at=clock.now).id == outreach.id

    assert queue.approved_summary("reply") == (0, None)
    clock.advance(hours=1)
    approved = queue.approve(reply.id, by="rita", version=reply.version)
    later = queue.submit(make_draft(14), by="agent")
    clock.advance(hours=1)
    queue.approve(later.id, by="rita", version=later.version)
    assert queue.approved_summary("reply") == (2, clock.now)
    assert [i.id for i in queue.approved_items("reply")] == [reply.id, later.id]  # in approval order
    assert [i.id for i in queue.approved_items("reply", since=clock.now)] == [later.id]
    assert [i.id for i in queue.approved_items("reply", among=[reply.id, starter.id])] == [reply.id]
    assert approved.approved_at == T0 + timedelta(hours=3)

    assert queue.posted_replies([reply.case_id or 0]) == [] and queue.posted_replies([]) == []
    queue.publish_approved(OutboxPublisher(queue.settings.outbox_path), by="rita")
    assert [i.id for i in queue.posted_replies([reply.case_id or 0])] == [reply.id]

    cases = queue.cases_received()
    assert [c.id for c in cases] == [reply.case_id, later.case_id]  # only replies open cases
    assert [c.id for c in queue.cases_received(newest_first=True, limit=1)] == [later.case_id]
    assert queue.cases_received(since=T0 + timedelta(minutes=1), until=T0 + timedelta(hours=3)) == []
    assert [c.author for c in queue.cases_received(authored=True)] == ["@customer10", "@customer14"]
