"""The Chatwoot connector against a fake Chatwoot: signed webhooks in, private notes and public replies out,
each reply exactly once through 429s, 5xx, timeouts and lost answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fake_platforms import FakeChatwoot, WebhookReceiver

from copilot.config import load_settings
from copilot.connectors.base import Connector, PlatformEvent, WebhookRejected
from copilot.connectors.chatwoot import ChatwootConnector
from copilot.errors import ConfigError
from copilot.queue.publish import OutgoingMessage, PublishError
from copilot.types import Inbound

NOW = 1_767_600_000


@pytest.fixture
def fake() -> Iterator[FakeChatwoot]:
    with FakeChatwoot() as server:
        yield server


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def connector(fake: FakeChatwoot, slept: list[float]) -> Iterator[ChatwootConnector]:
    found = ChatwootConnector(fake.url, fake.account_id, fake.api_token, fake.webhook_secret, timeout_s=0.5,
                              retries=3, backoff_s=0.5, clock=lambda: NOW, sleep=slept.append)
    yield found
    found.close()


def signed_event(fake: FakeChatwoot, message: dict[str, Any], **kw: Any) -> tuple[dict[str, str], bytes]:
    body = json.dumps(fake.webhook_payload(message)).encode()
    return fake.signed(body, timestamp=kw.pop("timestamp", NOW), **kw), body


def reply(key: str = "copilot-0123456789abcdef0123456789abcdef", conversation: str = "chatwoot:1:42",
          text: str = "Unplug it for ten seconds, then plug it back in.") -> OutgoingMessage:
    return OutgoingMessage(item_id=1, idempotency_key=key, kind="reply", channel="chat", text=text,
                           conversation=conversation)


def test_is_a_connector_and_builds_from_settings(fake: FakeChatwoot) -> None:
    settings = load_settings(chatwoot_url=fake.url, chatwoot_account_id=1, chatwoot_api_token="t",
                             chatwoot_webhook_secret="s", webhook_max_age_s=60)
    built = ChatwootConnector.from_settings(settings)
    assert isinstance(built, Connector) and built.max_age_s == 60 and built.account_id == 1
    built.close()
    with pytest.raises(ConfigError, match="COPILOT_CHATWOOT_WEBHOOK_SECRET"):
        ChatwootConnector.from_settings(load_settings(chatwoot_url=fake.url, chatwoot_account_id=1,
                                                      chatwoot_api_token="t"))


def test_a_customer_message_becomes_an_event(fake: FakeChatwoot, connector: ChatwootConnector) -> None:
    fake.open_conversation(42, channel="Channel::Email")
    message = fake.customer_says(42, "My bulb blinks amber")
    headers, body = signed_event(fake, message, delivery_id="d-1")
    [event] = connector.parse(headers, body)
    assert event == PlatformEvent(Inbound(text="My bulb blinks amber", channel="email", author="Sam Lee",
                                          id=str(message["id"]), conversation="chatwoot:1:42"), "d-1")


@pytest.mark.parametrize(("channel", "style"), [
    ("Channel::FacebookPage", "facebook"), ("Channel::Instagram", "instagram"),
    ("Channel::TwitterProfile", "twitter"), ("Channel::WebWidget", "chat"), ("Channel::Api", "chat"),
])
def test_channel_style_follows_the_inbox(fake: FakeChatwoot, connector: ChatwootConnector, channel: str,
                                         style: str) -> None:
    fake.open_conversation(8, channel=channel)
    [event] = connector.parse(*signed_event(fake, fake.customer_says(8, "hello")))
    assert event.inbound.channel == style


def test_without_a_delivery_header_the_message_id_dedupes(fake: FakeChatwoot, connector: ChatwootConnector) -> None:
    message = fake.customer_says(42, "hi")
    headers, body = signed_event(fake, message)
    del headers["X-Chatwoot-Delivery"]
    assert connector.parse(headers, body)[0].delivery_id == str(message["id"])


@pytest.mark.parametrize("change", ["missing", "wrong secret", "tampered", "stale", "future", "not a time"])
def test_bad_signatures_are_401(fake: FakeChatwoot, connector: ChatwootConnector, change: str) -> None:
    message = fake.customer_says(42, "hi")
    headers, body = signed_event(fake, message)
    if change == "missing":
        del headers["X-Chatwoot-Signature"]
    elif change == "wrong secret":
        headers, body = signed_event(fake, message, secret="not-the-secret")
    elif change == "tampered":
        body = body.replace(b"hi", b"ho")
    elif change == "stale":
        headers, body = signed_event(fake, message, timestamp=NOW - 301)
    elif change == "future":
        headers, body = signed_event(fake, message, timestamp=NOW + 301)
    else:
        headers["X-Chatwoot-Timestamp"] = "yesterday"
    with pytest.raises(WebhookRejected) as refused:
        connector.parse(headers, body)
    assert refused.value.status == 401


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"event": "message_created", "id": 5}',
                                  b'{"event": "message_created", "id": 5, "conversation": {"id": 3}}'])
def test_malformed_payloads_are_400(fake: FakeChatwoot, connector: ChatwootConnector, body: bytes) -> None:
    with pytest.raises(WebhookRejected) as refused:
        connector.parse(fake.signed(body, timestamp=NOW), body)
    assert refused.value.status == 400


def test_own_posts_notes_and_other_events_are_ignored(fake: FakeChatwoot, connector: ChatwootConnector) -> None:
    fake.customer_says(42, "hi")
    inbound = Inbound(text="hi", channel="chat", id="1", conversation="chatwoot:1:42")
    connector.post_note(inbound, "Suggested reply: ...")
    connector.post(reply())
    for message in fake.messages(42)[1:]:  # our note (private) and our reply (outgoing)
        assert connector.parse(*signed_event(fake, message)) == []
    other = fake.customer_says(42, "hello")
    payload = {**fake.webhook_payload(other), "event": "conversation_updated"}
    body = json.dumps(payload).encode()
    assert connector.parse(fake.signed(body, timestamp=NOW), body) == []
    bot = {**fake.webhook_payload(other), "message_type": "incoming", "sender": {"id": 9, "type": "agent_bot"}}
    body = json.dumps(bot).encode()
    assert connector.parse(fake.signed(body, timestamp=NOW), body) == []


def test_note_and_reply_land_with_the_documented_request(fake: FakeChatwoot, connector: ChatwootConnector) -> None:
    fake.customer_says(42, "hi")
    connector.post_note(Inbound(text="hi", conversation="chatwoot:1:42"), "Draft: unplug it.")
    receipt = connector.post(reply())
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [r.path for r in posts] == ["/api/v1/accounts/1/conversations/42/messages"] * 2
    assert all(r.headers["api_access_token"] == "cw-token" for r in fake.requests)
    assert posts[0].json() == {"content": "Draft: unplug it.", "message_type": "outgoing", "private": True}
    assert posts[1].json() == {"content": "Unplug it for ten seconds, then plug it back in.",
                               "message_type": "outgoing", "private": False,
                               "content_attributes": {"copilot_idempotency_key": reply().idempotency_key}}
    assert [n["content"] for n in fake.notes(42)] == ["Draft: unplug it."]
    [public] = fake.replies(42)
    assert receipt.external_id == str(public["id"]) and not receipt.duplicate


def test_429_and_5xx_are_retried_with_backoff(fake: FakeChatwoot, connector: ChatwootConnector,
                                              slept: list[float]) -> None:
    fake.customer_says(42, "hi")
    fake.fail_next(1, 429, method="POST", retry_after="7")
    fake.fail_next(1, 503, method="POST")
    receipt = connector.post(reply())
    assert len(fake.replies(42)) == 1 and receipt.external_id == str(fake.replies(42)[0]["id"])
    assert slept == [7.0, 1.0]  # Retry-After honoured, then the doubled backoff


@pytest.mark.parametrize("lose_answer", ["store_then_hang", "store_then_drop"])
def test_a_lost_answer_then_a_retry_posts_once(fake: FakeChatwoot, connector: ChatwootConnector,
                                               lose_answer: str) -> None:
    fake.customer_says(42, "hi")
    getattr(fake, lose_answer)(1)
    receipt = connector.post(reply())
    [public] = fake.replies(42)
    assert receipt.duplicate and receipt.external_id == str(public["id"])


def test_a_failed_publish_retried_later_does_not_post_again(fake: FakeChatwoot, slept: list[float]) -> None:
    fake.customer_says(42, "hi")
    once = ChatwootConnector(fake.url, 1, fake.api_token, fake.webhook_secret, timeout_s=0.5, retries=0,
                             sleep=slept.append)
    fake.store_then_hang(1)
    with pytest.raises(PublishError, match="timed out"):  # the item is kept failed
        once.post(reply())
    assert len(fake.replies(42)) == 1
    again = once.post(reply())  # the queue's next publish (a new process would do the same)
    assert again.duplicate and again.external_id == str(fake.replies(42)[0]["id"]) and len(fake.replies(42)) == 1
    once.close()


def test_a_persistent_outage_raises_publish_error(fake: FakeChatwoot, connector: ChatwootConnector,
                                                  slept: list[float]) -> None:
    fake.customer_says(42, "hi")
    fake.fail_next(99, 502)
    with pytest.raises(PublishError, match="HTTP 502"):
        connector.post(reply())
    assert fake.replies(42) == [] and slept == [0.5, 1.0, 2.0]


def test_other_errors_fail_at_once(fake: FakeChatwoot, slept: list[float]) -> None:
    fake.customer_says(42, "hi")
    wrong = ChatwootConnector(fake.url, 1, "not-the-token", "s", sleep=slept.append)
    with pytest.raises(PublishError, match="HTTP 401"):
        wrong.post(reply())
    with pytest.raises(PublishError, match="not a Chatwoot conversation"):
        wrong.post(reply(conversation="discourse:topic:4"))
    assert slept == [] and fake.replies(42) == []
    wrong.close()


def test_webhooks_sent_over_http_and_redelivered(fake: FakeChatwoot, connector: ChatwootConnector) -> None:
    seen: list[str] = []

    def receive(headers: Any, body: bytes) -> int:
        events = connector.parse(headers, body)
        fresh = [e for e in events if e.delivery_id not in seen]
        seen.extend(e.delivery_id for e in fresh)
        return len(fresh)

    with WebhookReceiver(receive) as receiver:
        message = fake.customer_says(42, "Still amber after the unplug")
        delivery, first = fake.deliver(receiver.url, message, timestamp=NOW)
        again = fake.redeliver(receiver.url, delivery, timestamp=NOW)
        forged = fake.redeliver(receiver.url, delivery, timestamp=NOW, secret="guess")
    assert (first.status_code, again.status_code, forged.status_code) == (200, 200, 401)
    assert first.json()["result"] == 1 and again.json()["result"] == 0 and seen == [delivery.delivery_id]
