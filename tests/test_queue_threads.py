"""Conversations in the queue: a follow-up joins its case, the thread keeps every message in order, a posted
reply joins the thread, and a calm follow-up never downgrades a crisis. SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest
from _queue_support import make_draft, settings  # noqa: F401 - settings is a fixture

from copilot.config import Settings
from copilot.queue.publish import OutboxPublisher
from copilot.queue.store import open_queue
from copilot.types import Draft


@pytest.fixture
def queue(settings: Settings):  # noqa: F811
    with open_queue(settings) as q:
        yield q


def in_thread(n: int, text: str, conversation: str | None = "chatwoot:acme:42", **kw) -> Draft:  # type: ignore[no-untyped-def]
    draft = make_draft(n, channel="chatwoot", **kw)
    return replace(draft, inbound=replace(draft.inbound, text=text, conversation=conversation))


def post_all(queue) -> None:  # type: ignore[no-untyped-def]
    report = queue.publish_approved(OutboxPublisher(queue.settings.outbox_path), by="rita")
    assert not report.failed


def test_a_follow_up_joins_its_case_and_the_thread_keeps_both_sides_in_order(queue) -> None:
    first = queue.submit(in_thread(1, "My hub is amber"), by="kim")
    queue.approve(first.id, by="rita", version=first.version)
    post_all(queue)
    assert queue.get_case(first.case_id).status == "resolved"
    follow = queue.submit(in_thread(2, "I unplugged it like you said, still amber"), by="kim")
    assert follow.case_id == first.case_id
    case = queue.get_case(first.case_id)
    assert case.status == "open" and case.text == "I unplugged it like you said, still amber"
    assert case.conversation == "chatwoot:acme:42"
    turns = queue.thread(first.case_id)
    assert [(t.direction, t.text) for t in turns] == [
        ("in", "My hub is amber"), ("out", first.text), ("in", "I unplugged it like you said, still amber")]
    assert turns[0].platform_id == "msg-1" and turns[1].platform_id is not None  # the outbox's id for the post
    assert queue.thread_for("chatwoot", "chatwoot:acme:42", limit=2) == turns[1:]
    assert queue.thread_for("chatwoot", "chatwoot:acme:99") == [] and queue.thread_for("chatwoot", None) == []


def test_other_conversations_and_messages_without_one_get_their_own_cases(queue) -> None:
    a = queue.submit(in_thread(1, "Hub amber"), by="kim")
    b = queue.submit(in_thread(2, "Bulb flickers", conversation="chatwoot:acme:43"), by="kim")
    c = queue.submit(in_thread(3, "Strip dim", conversation=None), by="kim")
    d = queue.submit(in_thread(4, "Strip dim again", conversation=None), by="kim")
    assert len({a.case_id, b.case_id, c.case_id, d.case_id}) == 4
    assert [t.text for t in queue.thread(c.case_id)] == ["Strip dim"]


def test_a_redraft_of_the_same_message_adds_no_second_turn(queue) -> None:
    first = queue.submit(in_thread(1, "Hub amber"), by="kim")
    again = queue.submit(in_thread(1, "Hub amber"), by="kim")  # same platform message id: same case
    assert again.case_id == first.case_id
    assert [t.text for t in queue.thread(first.case_id)] == ["Hub amber"]


def test_a_calm_follow_up_never_downgrades_a_crisis_case(queue) -> None:
    crisis = queue.submit(in_thread(1, "I can't go on", crisis=True, priority=1), by="kim")
    queue.submit(in_thread(2, "also, what is the warranty?", priority=4), by="kim")
    case = queue.get_case(crisis.case_id)
    assert case.priority == 1 and case.triage["crisis"] is True
    assert case.text == "also, what is the warranty?"  # the newest message is what the case shows
