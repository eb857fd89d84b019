"""Platform messages into the queue: once per delivery, with the thread, a draft and a private note."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from _queue_support import outbox_lines
from test_compose import make
from test_draft import labels

from copilot.connectors.base import PlatformEvent, WebhookRejected
from copilot.connectors.registry import RoutingPublisher
from copilot.intake import Intake
from copilot.queue.publish import OutboxPublisher, OutgoingMessage, PostReceipt, PublishError
from copilot.types import Inbound

OPENING = "Thanks for sticking with this, we will get it sorted together."


class FakeConnector:
    """A platform whose webhook body is {"id", "text", "conversation"} signed by the header X-Ok: yes."""

    name = "fakechat"

    def __init__(self, fail_notes: bool = False) -> None:
        self.notes: list[tuple[Inbound, str]] = []
        self.fail_notes = fail_notes
        self.taken: list[str] = []
        self.mail: list[PlatformEvent] = []

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[PlatformEvent]:
        if headers.get("X-Ok") != "yes":
            raise WebhookRejected(401, "bad signature")
        data = json.loads(body)
        if data.get("outgoing"):
            return []
        inbound = Inbound(text=data["text"], channel="chat", author="@sam", id=data["id"],
                          conversation=f"fakechat:{data['conversation']}")
        return [PlatformEvent(inbound, data.get("delivery", data["id"]))]

    def post_note(self, inbound: Inbound, text: str) -> None:
        if self.fail_notes:
            raise PublishError("HTTP 503")
        self.notes.append((inbound, text))

    def post(self, message: OutgoingMessage) -> PostReceipt:
        raise AssertionError("the intake never posts publicly")

    def close(self) -> None:
        pass

    def poll(self) -> list[PlatformEvent]:
        return list(self.mail)

    def mark_taken(self, event: PlatformEvent) -> None:
        self.taken.append(event.delivery_id)


def event(mid: str, text: str, conversation: str = "7", **extra: object) -> bytes:
    return json.dumps({"id": mid, "text": text, "conversation": conversation, **extra}).encode()


SIGNED = {"X-Ok": "yes"}


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    pipe = make(tmp_path, [OPENING], labels())
    connector = FakeConnector()
    return pipe, connector, Intake(pipe.queue, pipe.drafter, {"fakechat": connector})


def test_a_message_becomes_a_case_a_draft_and_a_private_note(setup) -> None:
    pipe, connector, intake = setup
    report = intake.receive("fakechat", SIGNED, event("m1", "my bulb will not connect to the wifi during setup"))
    [item_id] = report.items
    item = pipe.queue.get(item_id)
    assert item.status == "pending" and item.draft["inbound"]["conversation"] == "fakechat:7"
    [(inbound, note)] = connector.notes
    assert inbound.id == "m1" and item.text in note and f"queue item {item_id}" in note
    assert pipe.queue.audit(item_id)[0].actor == "platform:fakechat"
    assert pipe.queue.get_case(item.case_id).owner is None


def test_a_redelivery_is_acknowledged_and_nothing_else_happens(setup) -> None:
    pipe, connector, intake = setup
    body = event("m1", "my bulb will not connect to the wifi during setup", delivery="d-1")
    intake.receive("fakechat", SIGNED, body)
    calls = len(pipe.chat.seen)
    again = intake.receive("fakechat", SIGNED, body)
    other_delivery_same_message = intake.receive("fakechat", SIGNED, event("m1", "my bulb ...", delivery="d-2"))
    assert again.duplicates == 1 and again.items == () and other_delivery_same_message.duplicates == 1
    assert len(connector.notes) == 1 and len(pipe.chat.seen) == calls  # no second draft, note or model call
    assert pipe.queue.count_items() == 1


def test_a_follow_up_joins_the_case_and_is_drafted_with_the_thread(setup) -> None:
    pipe, _connector, intake = setup
    [first] = intake.receive("fakechat", SIGNED, event("m1", "my bulb will not connect to the wifi during setup")).items
    [second] = intake.receive("fakechat", SIGNED, event("m2", "I did the first step and it still fails")).items
    one, two = pipe.queue.get(first), pipe.queue.get(second)
    assert one.case_id == two.case_id
    assert [t.text for t in pipe.queue.thread(one.case_id)] == [
        "my bulb will not connect to the wifi during setup", "I did the first step and it still fails"]
    assert "follow-up: drafted with the 1 earlier message(s) of the conversation" in two.draft["flags"]
    [other] = intake.receive("fakechat", SIGNED, event("m3", "my bulb will not connect", conversation="8")).items
    assert pipe.queue.get(other).case_id != one.case_id


def test_bad_requests_store_nothing(setup) -> None:
    pipe, connector, intake = setup
    with pytest.raises(WebhookRejected) as rejected:
        intake.receive("fakechat", {}, event("m1", "hello"))
    assert rejected.value.status == 401
    with pytest.raises(WebhookRejected) as unknown:
        intake.receive("chatwoot", SIGNED, event("m1", "hello"))
    assert unknown.value.status == 404 and "COPILOT_CHATWOOT_" in unknown.value.reason
    assert intake.receive("fakechat", SIGNED, event("m9", "x", outgoing=True)).ignored == 1
    assert pipe.queue.count_items() == 0 and connector.notes == []


def test_a_note_the_platform_refuses_keeps_the_draft(tmp_path: Path) -> None:
    pipe = make(tmp_path, [OPENING], labels())
    intake = Intake(pipe.queue, pipe.drafter, {"fakechat": FakeConnector(fail_notes=True)})
    report = intake.receive("fakechat", SIGNED, event("m1", "my bulb will not connect to the wifi"))
    [item_id] = report.items
    assert report.note_errors == (f"item {item_id}: HTTP 503",) and pipe.queue.get(item_id).status == "pending"


def test_spam_is_kept_as_a_case_without_a_draft_or_note(tmp_path: Path) -> None:
    pipe = make(tmp_path, [OPENING], labels(kind="spam"))
    connector = FakeConnector()
    report = Intake(pipe.queue, pipe.drafter, {"fakechat": connector}).receive(
        "fakechat", SIGNED, event("m1", "cheap followers at example.biz"))
    assert report.items == () and len(report.cases) == 1 and connector.notes == []
    assert [t.text for t in pipe.queue.thread(report.cases[0])] == ["cheap followers at example.biz"]


def test_a_polled_message_is_marked_taken_only_once_stored(setup) -> None:
    pipe, connector, intake = setup
    connector.mail = connector.parse(SIGNED, event("e1", "my bulb will not connect to the wifi"))
    assert intake.poll(connector).items and connector.taken == ["e1"]
    assert intake.poll(connector).duplicates == 1 and connector.taken == ["e1", "e1"]
    assert pipe.queue.count_items() == 1


def test_an_approved_reply_goes_back_through_its_platform_exactly_once(setup) -> None:
    pipe, connector, intake = setup
    posted: list[OutgoingMessage] = []

    def post(message: OutgoingMessage) -> PostReceipt:
        posted.append(message)
        return PostReceipt(external_id=f"fc-{len(posted)}")

    connector.post = post  # type: ignore[method-assign]
    [platform_item] = intake.receive("fakechat", SIGNED, event("m1", "my bulb will not connect to the wifi")).items
    pasted = pipe.queue.submit(pipe.drafter.draft(Inbound(text="my bulb will not connect", channel="chat")), by="kim")
    for item_id in (platform_item, pasted.id):
        pipe.actions.approve(item_id, by="rita", version=pipe.queue.get(item_id).version)
    actions = replace(pipe.actions, publisher=lambda s: RoutingPublisher(OutboxPublisher(s.outbox_path),
                                                                         {"fakechat": connector}))
    report = actions.publish(by="rita")
    assert len(report.posted) == 2 and [m.item_id for m in posted] == [platform_item]
    assert [line["item_id"] for line in outbox_lines(pipe.settings)] == [pasted.id]
    assert actions.publish(by="rita").posted == () and len(posted) == 1  # exactly once
    case = pipe.queue.get(platform_item).case_id
    assert [(t.direction, t.platform_id) for t in pipe.queue.thread(case)] == [("in", "m1"), ("out", "fc-1")]


def test_a_reply_for_a_platform_that_is_not_configured_fails_and_is_kept(setup) -> None:
    pipe, _connector, _intake = setup
    draft = pipe.drafter.draft(Inbound(text="my bulb will not connect", channel="chat", id="c1",
                                       conversation="chatwoot:1:42"))
    item = pipe.queue.submit(draft, by="kim")
    pipe.actions.approve(item.id, by="rita", version=item.version)
    actions = replace(pipe.actions, publisher=lambda s: RoutingPublisher(OutboxPublisher(s.outbox_path), {}))
    report = actions.publish(by="rita")
    [(failed_id, error)] = report.failed
    assert report.posted == () and failed_id == item.id and "no chatwoot connector is configured" in error
    assert pipe.queue.get(item.id).status == "failed" and outbox_lines(pipe.settings) == []


def test_an_approved_starter_becomes_a_forum_topic_when_a_starter_category_is_set() -> None:
    sent: list[OutgoingMessage] = []

    class Forum(FakeConnector):
        name = "discourse"

        def post(self, message: OutgoingMessage) -> PostReceipt:
            sent.append(message)
            return PostReceipt(external_id="topic-1")

    class Default:
        name = "outbox"

        def post(self, message: OutgoingMessage) -> PostReceipt:
            return PostReceipt(external_id="outbox")

        def close(self) -> None:
            pass

    starter = OutgoingMessage(item_id=1, idempotency_key="k1", kind="starter", channel="forum", text="Title\nBody")
    routed = RoutingPublisher(Default(), {"discourse": Forum()}, starters_to="discourse")
    assert routed.post(starter).external_id == "topic-1" and sent == [starter]
    unrouted = RoutingPublisher(Default(), {"discourse": Forum()})
    assert unrouted.post(starter).external_id == "outbox"


def test_connectors_status_and_poll_say_what_is_configured(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from copilot.cli import main

    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))
    assert main(["connectors", "status", "--json"]) == 0
    assert {k: v["configured"] for k, v in json.loads(capsys.readouterr().out).items()} == {
        "chatwoot": False, "discourse": False, "email": False}
    assert main(["connectors", "poll"]) == 1
    assert "no mailbox is configured: set COPILOT_IMAP_HOST" in capsys.readouterr().err
    monkeypatch.setenv("COPILOT_CHATWOOT_URL", "http://127.0.0.1:9")
    assert main(["connectors", "status"]) == 1
    assert "COPILOT_CHATWOOT_API_TOKEN" in capsys.readouterr().err


def test_the_mailbox_poller_survives_a_failed_round(setup, caplog: pytest.LogCaptureFixture) -> None:
    import threading

    from copilot.cli.connectors_cmd import poll_forever

    pipe, connector, _ = setup
    connector.name = "email"
    rounds: list[int] = []
    stop = threading.Event()
    good = connector.parse(SIGNED, event("e1", "my bulb will not connect to the wifi"))

    def poll() -> list[PlatformEvent]:
        rounds.append(1)
        if len(rounds) == 1:
            raise PublishError("IMAP server unreachable")
        if len(rounds) >= 3:
            stop.set()
        return good

    connector.poll = poll  # type: ignore[method-assign]
    poll_forever(Intake(pipe.queue, pipe.drafter, {"email": connector}), 0.01, stop=stop)
    assert len(rounds) == 3 and "mailbox poll failed" in caplog.text
    assert pipe.queue.count_items() == 1 and connector.taken == ["e1", "e1"]
