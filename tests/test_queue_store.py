"""The review queue on SQLite and PostgreSQL: transitions, audit trail, roles, four-eyes, cases, imports."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _queue_support import make_draft, settings  # noqa: F401 - settings is a fixture

from copilot.config import Settings
from copilot.errors import ConflictError, NotFoundError, PermissionDenied, UserError
from copilot.queue.publish import OutboxPublisher
from copilot.queue.records import TRANSITIONS
from copilot.queue.store import open_queue, requires_individual_decision


@pytest.fixture
def queue(settings: Settings):  # noqa: F811
    with open_queue(settings) as q:
        yield q


def test_submit_stores_case_item_draft_and_audit(queue) -> None:
    draft = make_draft(1, priority=2, waiting_minutes=5)
    item = queue.submit(draft, by="alice")
    assert item.status == "pending" and item.version == 1 and item.kind == "reply"
    assert item.text == item.original_text == draft.text
    assert item.draft == json.loads(json.dumps(draft.to_dict()))  # the whole draft, cited ids included
    assert item.draft["cited_ids"] == ["kb-wifi-drops"] and item.draft["template_hash"] == "0123abcd"
    assert item.triage["priority"] == 2 and item.priority == 2
    assert item.drafted_at - item.received_at == timedelta(minutes=5)
    case = queue.get_case(item.case_id)
    assert case.status == "open" and case.owner == "alice" and case.inbound_id == "msg-1"
    [event] = queue.audit(item.id)
    assert (event.action, event.actor, event.from_status, event.to_status, event.after_text) == (
        "draft", "alice", None, "pending", draft.text)


def test_full_review_cycle_with_edit_distance_and_case_resolution(queue, settings: Settings) -> None:  # noqa: F811
    item = queue.submit(make_draft(2, text="Sorry! Try a restart."), by="alice")
    item = queue.edit(item.id, "Sorry! Please try a restart.", by="alice", version=item.version)
    assert item.edited_by == "alice" and item.version == 2
    item = queue.approve(item.id, by="rita", version=item.version)
    assert item.status == "approved" and item.approved_by == "rita"
    assert item.edit_distance == len("Please t") and item.review_time_s is not None
    assert queue.get_case(item.case_id).status == "waiting"
    report = queue.publish_approved(OutboxPublisher(settings.outbox_path), by="rita")
    assert report.posted == (item.id,)
    item = queue.get(item.id)
    assert item.status == "posted" and item.posted_at is not None and item.response_time_s is not None
    case = queue.get_case(item.case_id)
    assert case.status == "resolved" and case.time_to_resolve_s is not None
    actions = [(e.action, e.from_status, e.to_status, e.version) for e in queue.audit(item.id)]
    assert actions == [
        ("draft", None, "pending", 1), ("edit", "pending", "pending", 2), ("approve", "pending", "approved", 3),
        ("publish", "approved", "posting", 4), ("post", "posting", "posted", 5),
    ]
    edit = queue.audit(item.id)[1]
    assert (edit.before_text, edit.after_text) == ("Sorry! Try a restart.", "Sorry! Please try a restart.")


def test_edit_and_approve_records_both(queue) -> None:
    item = queue.submit(make_draft(3, text="Draft text."), by="alice")
    item = queue.approve(item.id, by="rita", version=1, text="Approved text.")
    assert item.text == "Approved text." and item.original_text == "Draft text." and item.version == 3
    assert item.edit_distance > 0
    assert [e.action for e in queue.audit(item.id)] == ["draft", "edit", "approve"]


def test_reject_then_reopen_only_explicitly(queue) -> None:
    item = queue.submit(make_draft(4), by="alice")
    with pytest.raises(UserError, match="reason"):
        queue.reject(item.id, by="rita", version=1, reason="  ")
    item = queue.reject(item.id, by="rita", version=1, reason="wrong product")
    assert item.status == "rejected" and item.reject_reason == "wrong product"
    for action in (lambda: queue.approve(item.id, by="rita", version=2),
                   lambda: queue.edit(item.id, "new", by="rita", version=2)):
        with pytest.raises(ConflictError, match="it is rejected"):
            action()
    item = queue.reopen(item.id, by="rita", version=2)
    assert item.status == "pending" and item.reject_reason is None
    with pytest.raises(ConflictError, match="cannot reopen"):
        queue.reopen(item.id, by="rita", version=3)


def test_unknown_ids_stale_versions_and_empty_edits_change_nothing(queue) -> None:
    with pytest.raises(NotFoundError):
        queue.get(999)
    with pytest.raises(NotFoundError):
        queue.approve(999, by="rita", version=1)
    with pytest.raises(NotFoundError):
        queue.audit(999)
    item = queue.submit(make_draft(5), by="alice")
    with pytest.raises(UserError, match="empty"):
        queue.edit(item.id, "   ", by="alice", version=1)
    with pytest.raises(UserError, match="changes nothing"):
        queue.edit(item.id, item.text, by="alice", version=1)
    queue.edit(item.id, "First edit.", by="alice", version=1)
    with pytest.raises(ConflictError, match="changed since version 1"):
        queue.approve(item.id, by="rita", version=1)
    assert queue.get(item.id).status == "pending" and queue.get(item.id).text == "First edit."
    assert [e.action for e in queue.audit(item.id)] == ["draft", "edit"]


def test_crisis_is_escalated_and_listed_first(queue) -> None:
    calm = queue.submit(make_draft(6, priority=1, waiting_minutes=60), by="alice")
    crisis = queue.submit(make_draft(7, priority=4, crisis=True, text=""), by="alice")
    old = queue.submit(make_draft(8, priority=3, waiting_minutes=30), by="alice")
    new = queue.submit(make_draft(9, priority=3, waiting_minutes=1), by="alice")
    assert crisis.status == "escalated"
    assert [i.id for i in queue.list_items()] == [crisis.id, calm.id, old.id, new.id]
    assert [i.id for i in queue.list_items(status="escalated")] == [crisis.id]
    with pytest.raises(UserError, match="no text"):
        queue.approve(crisis.id, by="rita", version=1)  # a crisis needs a person's words, not an empty draft
    approved = queue.approve(crisis.id, by="rita", version=1, text="We're here for you; a specialist will DM you.")
    assert approved.status == "approved"


def test_crises_and_possible_crises_need_an_individual_decision(queue) -> None:
    def with_triage(n: int, **crisis: object):
        draft = make_draft(n)
        return replace(draft, triage=replace(draft.triage, **crisis))

    ordinary = queue.submit(make_draft(30), by="alice")
    maybe = queue.submit(with_triage(31, crisis_level="possible", crisis_reason="abuse", crisis_span="he hits me"),
                         by="alice")
    crisis = queue.submit(with_triage(32, crisis=True, crisis_level="crisis", crisis_reason="self-harm"), by="alice")
    cleared = queue.submit(with_triage(33, crisis_span="killing me", crisis_note="cleared: a figure of speech"),
                           by="alice")
    legacy = queue.submit(make_draft(34, crisis=True), by="alice")  # stored before levels: only the flag
    assert maybe.status == "pending" and crisis.status == "escalated" and legacy.status == "escalated"
    assert [requires_individual_decision(i) for i in (ordinary, maybe, crisis, cleared, legacy)] == [
        False, True, True, False, True]
    stored = queue.get(maybe.id)
    assert (stored.crisis_level, stored.crisis_reason, stored.crisis_span) == ("possible", "abuse", "he hits me")
    assert queue.get_case(maybe.case_id).crisis_level == "possible"
    assert stored.to_dict()["crisis_level"] == "possible" and legacy.crisis_level == "crisis"
    assert cleared.crisis_level is None and cleared.crisis_note == "cleared: a figure of speech"


def test_spam_is_recorded_as_a_case_with_nothing_to_approve(queue) -> None:
    draft = make_draft(35, status="skipped", text="", inbound_id="tweet-spam")
    draft = replace(draft, triage=replace(draft.triage, kind="spam"))
    case = queue.record_spam(draft, by="alice")
    assert case.status == "open" and case.triage["kind"] == "spam" and case.text.startswith("My router")
    assert queue.record_spam(draft, by="alice").id == case.id  # the same message stays one case
    assert queue.list_items(status="all") == []
    with pytest.raises(UserError, match="skipped as spam"):
        queue.record_spam(make_draft(36), by="alice")
    with pytest.raises(UserError, match="pending or escalated"):
        queue.submit(draft, by="alice")  # a skipped draft never becomes an item


def test_list_filters_and_validation(queue) -> None:
    reply = queue.submit(make_draft(10), by="alice")
    starter = queue.submit(make_draft(11, kind="starter"), by="alice")
    assert starter.case_id is None  # community posts answer nobody: no case
    assert [i.id for i in queue.list_items(kind="starter")] == [starter.id]
    assert {i.id for i in queue.list_items(status="all")} == {reply.id, starter.id}
    with pytest.raises(UserError, match="unknown status"):
        queue.list_items(status="done")
    with pytest.raises(UserError, match="unknown draft kind"):
        queue.submit(make_draft(12, kind="tweetstorm"), by="alice")
    with pytest.raises(UserError, match="pending or escalated"):
        queue.submit(make_draft(13, status="approved"), by="alice")


def test_drafts_for_one_inbound_message_share_a_case(queue) -> None:
    first = queue.submit(make_draft(14, inbound_id="tweet-1"), by="alice")
    second = queue.submit(make_draft(15, inbound_id="tweet-1"), by="bob")
    assert first.case_id == second.case_id
    queue.reject(first.id, by="rita", version=1, reason="too long")
    assert queue.get_case(first.case_id).status == "open"
    assert [c.id for c in queue.list_cases(status="open")] == [first.case_id]


def test_assign_sets_owner_without_bumping_the_version(queue) -> None:
    item = queue.submit(make_draft(16), by="alice")
    item = queue.assign(item.id, "bob", by="rita")
    assert item.assignee == "bob" and item.version == 1
    assert queue.get_case(item.case_id).owner == "bob"
    event = queue.audit(item.id)[-1]
    assert (event.action, event.detail) == ("assign", {"assignee": "bob", "previous": None})
    queue.approve(item.id, by="rita", version=1)  # assignment never makes a review stale


def test_roles_are_enforced_once_users_exist(queue) -> None:
    item = queue.submit(make_draft(17), by="anyone")  # single-user mode while nobody is registered
    with pytest.raises(UserError, match="first user must be an admin"):
        queue.add_user("rita", "reviewer")
    queue.add_user("root", "admin", password="s3cret")
    with pytest.raises(PermissionDenied, match="needs an admin"):
        queue.add_user("rita", "reviewer")
    queue.add_user("rita", "reviewer", by="root")
    queue.add_user("alice", "agent", by="root")
    with pytest.raises(PermissionDenied, match="users needs admin"):
        queue.add_user("eve", "admin", by="rita")
    with pytest.raises(PermissionDenied, match="unknown user 'anyone'"):
        queue.edit(item.id, "New text.", by="anyone", version=1)
    with pytest.raises(PermissionDenied, match="alice is an agent; approve needs admin or reviewer"):
        queue.approve(item.id, by="alice", version=1)
    with pytest.raises(PermissionDenied, match="only assign items to themselves"):
        queue.assign(item.id, "rita", by="alice")
    assert queue.assign(item.id, "alice", by="alice").assignee == "alice"
    with pytest.raises(UserError, match="unknown user 'ghost'"):
        queue.assign(item.id, "ghost", by="rita")
    item = queue.edit(item.id, "Agent's edit.", by="alice", version=1)
    assert queue.approve(item.id, by="rita", version=item.version).status == "approved"
    with pytest.raises(PermissionDenied):
        queue.publish_approved(OutboxPublisher(queue.settings.outbox_path), by="alice")
    assert queue.verify_password("root", "s3cret") == "admin"
    assert queue.verify_password("root", "wrong") is None
    assert queue.verify_password("ghost", "s3cret") is None
    assert queue.verify_password("rita", "") is None  # no password set: no login
    assert [(u.name, u.role, u.has_password) for u in queue.list_users()] == [
        ("alice", "agent", False), ("rita", "reviewer", False), ("root", "admin", True)]
    assert queue.role_of("rita") == "reviewer" and queue.role_of("ghost") is None


def test_four_eyes_rule(settings: Settings) -> None:  # noqa: F811
    with open_queue(settings.model_copy(update={"four_eyes": True})) as queue:
        item = queue.submit(make_draft(18), by="alice")
        with pytest.raises(PermissionDenied, match="four-eyes"):
            queue.approve(item.id, by="alice", version=1)  # drafted it
        item = queue.edit(item.id, "Bob's better text.", by="bob", version=1)
        with pytest.raises(PermissionDenied, match="four-eyes"):
            queue.approve(item.id, by="bob", version=2)  # edited it last
        with pytest.raises(PermissionDenied, match="own edit"):
            queue.approve(item.id, by="carol", version=2, text="Carol's own words.")
        assert queue.approve(item.id, by="carol", version=2).approved_by == "carol"


def test_migrations_are_idempotent_and_data_survives_reopen(settings: Settings) -> None:  # noqa: F811
    with open_queue(settings) as queue:
        item = queue.submit(make_draft(19), by="alice")
    with open_queue(settings) as queue:
        assert queue.get(item.id).text == item.text


def test_a_batch_of_drafts_is_imported_once(settings: Settings) -> None:  # noqa: F811
    drafts = [make_draft(20).to_dict(), make_draft(21, crisis=True).to_dict()]
    with open_queue(settings) as queue:
        assert queue.import_drafts(drafts, sha256="batch-1", source="pending.jsonl") == 2
        items = queue.list_items(status="all")
        assert sorted(i.inbound_id for i in items) == ["msg-20", "msg-21"]
        assert {i.status for i in items} == {"pending", "escalated"}
        assert all(i.drafted_by == "import" for i in items)
        assert queue.audit(items[0].id)[0].detail == {"source": "pending.jsonl"}
        # The same batch again (a crash between the import and whatever followed) adds nothing.
        assert queue.import_drafts(drafts, sha256="batch-1", source="pending.jsonl") == 0
        assert len(queue.list_items(status="all")) == 2


def test_transition_table_matches_the_issue() -> None:
    assert TRANSITIONS["reopen"] == (("rejected",), "pending")
    assert set(TRANSITIONS["approve"][0]) == {"pending", "escalated"}
    assert TRANSITIONS["post"] == (("posting",), "posted")
    assert TRANSITIONS["failure"] == (("posting",), "failed")


def test_clock_drives_timestamps(tmp_path: Path) -> None:
    moments = iter(datetime(2026, 1, 1, 12, minute, tzinfo=UTC) for minute in range(60))
    with open_queue(Settings(data_dir=tmp_path), clock=lambda: next(moments)) as queue:
        item = queue.submit(make_draft(23), by="alice")
        item = queue.approve(item.id, by="rita", version=1)
        assert item.drafted_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        assert item.review_time_s == 60.0
