"""The Discourse connector against a fake Discourse: signed webhooks in, staff whispers and replies out, each
reply and discussion starter exactly once through 429s, 5xx, timeouts and lost answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fake_platforms import FakeDiscourse, WebhookReceiver

from copilot.config import load_settings
from copilot.connectors.base import Connector, PlatformEvent, WebhookRejected
from copilot.connectors.discourse import DiscourseConnector, marker
from copilot.errors import ConfigError
from copilot.queue.publish import OutgoingMessage, PublishError
from copilot.types import Inbound

KEY = "copilot-0123456789abcdef0123456789abcdef"


@pytest.fixture
def fake() -> Iterator[FakeDiscourse]:
    with FakeDiscourse() as server:
        yield server


def build(fake: FakeDiscourse, slept: list[float], **kw: Any) -> DiscourseConnector:
    options: dict[str, Any] = {"timeout_s": 0.5, "retries": 3, "backoff_s": 0.5, "starter_category": 9, **kw}
    return DiscourseConnector(fake.url, fake.api_key, fake.api_username, fake.webhook_secret,
                              sleep=slept.append, **options)


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def connector(fake: FakeDiscourse, slept: list[float]) -> Iterator[DiscourseConnector]:
    found = build(fake, slept)
    yield found
    found.close()


def event(fake: FakeDiscourse, post: dict[str, Any], **kw: Any) -> tuple[dict[str, str], bytes]:
    body = fake.webhook_body(post)
    return fake.signed(body, **kw), body


def reply(topic: int, *, key: str = KEY, in_reply_to: str | None = None, kind: str = "reply",
          text: str = "Unplug it for ten seconds.") -> OutgoingMessage:
    return OutgoingMessage(item_id=1, idempotency_key=key, kind=kind, channel="forum", text=text,
                           in_reply_to=in_reply_to, conversation=f"discourse:topic:{topic}" if topic else None)


def test_is_a_connector_and_builds_from_settings(fake: FakeDiscourse) -> None:
    settings = load_settings(discourse_url=fake.url, discourse_api_key="k", discourse_api_username="copilot",
                             discourse_webhook_secret="s", discourse_starter_category=9)
    built = DiscourseConnector.from_settings(settings)
    assert isinstance(built, Connector) and built.starter_category == 9
    built.close()
    with pytest.raises(ConfigError, match="COPILOT_DISCOURSE_API_KEY"):
        DiscourseConnector.from_settings(load_settings(discourse_url=fake.url))


def test_a_member_post_becomes_an_event(fake: FakeDiscourse, connector: DiscourseConnector) -> None:
    first = fake.open_topic()
    follow_up = fake.member_posts(first["topic_id"], "Still amber after unplugging.")
    headers, body = event(fake, follow_up)
    [found] = connector.parse(headers, body)
    assert found == PlatformEvent(Inbound(text="Still amber after unplugging.", channel="forum", author="sam",
                                          id=str(follow_up["id"]),
                                          conversation=f"discourse:topic:{first['topic_id']}"),
                                  headers["X-Discourse-Event-Id"])


@pytest.mark.parametrize("change", ["missing", "wrong secret", "tampered"])
def test_bad_signatures_are_401(fake: FakeDiscourse, connector: DiscourseConnector, change: str) -> None:
    headers, body = event(fake, fake.open_topic())
    if change == "missing":
        del headers["X-Discourse-Event-Signature"]
    elif change == "wrong secret":
        headers, body = event(fake, fake.open_topic(), secret="guess")
    else:
        body = body.replace(b"amber", b"green")
    with pytest.raises(WebhookRejected) as refused:
        connector.parse(headers, body)
    assert refused.value.status == 401


def test_malformed_payloads_are_400(fake: FakeDiscourse, connector: DiscourseConnector) -> None:
    bodies = [b"{oops", b'"post"', b'{"post": {"id": 1}}',
              b'{"post": {"id": 1, "topic_id": 2, "username": "sam", "raw": ""}}']
    statuses = []
    for body in bodies:
        try:
            connector.parse(fake.signed(body), body)
        except WebhookRejected as refused:
            statuses.append(refused.status)
    assert statuses == [400] * len(bodies)


def test_own_posts_whispers_system_and_pings_are_ignored(fake: FakeDiscourse, connector: DiscourseConnector) -> None:
    topic = fake.open_topic()["topic_id"]
    connector.post_note(Inbound(text="x", conversation=f"discourse:topic:{topic}"), "Draft: unplug it.")
    connector.post(reply(topic))
    for post in fake.posts(topic)[1:]:  # our whisper and our reply
        assert connector.parse(*event(fake, post)) == []
    staff_whisper = fake.member_posts(topic, "Looks like the firmware bug.", author="kim", post_type=4)
    system = fake.member_posts(topic, "This topic was closed.", author="system", user_id=-1)
    assert connector.parse(*event(fake, staff_whisper)) == [] and connector.parse(*event(fake, system)) == []
    ping = json.dumps({"ping": "OK"}).encode()
    assert connector.parse(fake.signed(ping, event="ping"), ping) == []
    edited = fake.webhook_body(fake.open_topic())
    assert connector.parse(fake.signed(edited, event="post_edited"), edited) == []


def test_whisper_and_reply_land_with_the_documented_request(fake: FakeDiscourse,
                                                            connector: DiscourseConnector) -> None:
    first = fake.open_topic()
    question = fake.member_posts(first["topic_id"], "Which button do I hold?")
    topic = first["topic_id"]
    connector.post_note(Inbound(text="x", conversation=f"discourse:topic:{topic}"), "Draft: hold the top one.")
    receipt = connector.post(reply(topic, in_reply_to=str(question["id"])))
    posts = [r for r in fake.requests if r.method == "POST"]
    assert all(r.path == "/posts.json" for r in posts)
    assert all(r.headers["api-key"] == "dc-key" and r.headers["api-username"] == "copilot" for r in fake.requests)
    assert posts[0].json() == {"topic_id": topic, "raw": "Draft: hold the top one.", "whisper": "true"}
    assert posts[1].json() == {"topic_id": topic, "raw": f"Unplug it for ten seconds.\n\n{marker(KEY)}",
                               "reply_to_post_number": question["post_number"]}
    assert [w["raw"] for w in fake.whispers(topic)] == ["Draft: hold the top one."]
    [public] = fake.replies(topic)
    assert receipt.external_id == str(public["id"]) and "copilot-key" not in public["cooked"]


def test_a_whisper_that_came_out_public_is_deleted(slept: list[float]) -> None:
    with FakeDiscourse(staff=False, legacy_whisper=True) as fake:
        topic = fake.open_topic()["topic_id"]
        connector = build(fake, slept)
        with pytest.raises(PublishError, match="instead of a whisper"):
            connector.post_note(Inbound(text="x", conversation=f"discourse:topic:{topic}"), "Draft")
        assert fake.posts(topic)[1:] == []  # nothing public is left
        connector.close()
    with FakeDiscourse(staff=False) as fake:
        topic = fake.open_topic()["topic_id"]
        connector = build(fake, slept)
        with pytest.raises(PublishError, match="HTTP 403"):
            connector.post_note(Inbound(text="x", conversation=f"discourse:topic:{topic}"), "Draft")
        connector.close()


def test_429_and_5xx_are_retried_with_backoff(fake: FakeDiscourse, connector: DiscourseConnector,
                                              slept: list[float]) -> None:
    topic = fake.open_topic()["topic_id"]
    fake.fail_next(1, 429, method="POST", retry_after="3")
    fake.fail_next(1, 500, method="POST")
    receipt = connector.post(reply(topic))
    assert [str(p["id"]) for p in fake.replies(topic)] == [receipt.external_id] and slept == [3.0, 1.0]


@pytest.mark.parametrize("lose_answer", ["store_then_hang", "store_then_drop"])
def test_a_lost_answer_then_a_retry_posts_once(fake: FakeDiscourse, connector: DiscourseConnector,
                                               lose_answer: str) -> None:
    topic = fake.open_topic()["topic_id"]
    getattr(fake, lose_answer)(1)
    receipt = connector.post(reply(topic))
    [public] = fake.replies(topic)
    assert receipt.duplicate and receipt.external_id == str(public["id"])
    assert connector.post(reply(topic)).duplicate and len(fake.replies(topic)) == 1  # the queue's next publish


def test_a_persistent_outage_raises_publish_error(fake: FakeDiscourse, connector: DiscourseConnector) -> None:
    topic = fake.open_topic()["topic_id"]
    fake.fail_next(99, 503)
    with pytest.raises(PublishError, match="HTTP 503"):
        connector.post(reply(topic))
    assert fake.replies(topic) == []


def test_a_refusal_fails_at_once(fake: FakeDiscourse, slept: list[float]) -> None:
    topic = fake.open_topic()["topic_id"]
    wrong = DiscourseConnector(fake.url, "bad-key", "copilot", "s", sleep=slept.append)
    with pytest.raises(PublishError, match="HTTP 403"):
        wrong.post(reply(topic))
    with pytest.raises(PublishError, match="not a Discourse topic"):
        wrong.post(reply(0, kind="reply"))
    assert slept == [] and fake.replies(topic) == []
    wrong.close()


def test_a_starter_is_a_new_topic_once(fake: FakeDiscourse, connector: DiscourseConnector) -> None:
    fake.store_then_hang(1)
    receipt = connector.post(reply(0, kind="starter", text="# Share your setup\nWhich scenes do you use?"))
    [topic] = [t for t in fake.topics.values() if t.category_id == 9]
    assert topic.title == "Share your setup" and topic.external_id == KEY
    assert receipt.duplicate and receipt.external_id == str(topic.posts[0]["id"])
    assert connector.post_starter("Share your setup", "Which scenes?", idempotency_key=KEY).duplicate
    assert len([t for t in fake.topics.values() if t.category_id == 9]) == 1
    create = next(r for r in fake.requests if r.method == "POST").json()
    assert create == {"title": "Share your setup", "raw": f"Which scenes do you use?\n\n{marker(KEY)}",
                      "category": 9, "external_id": KEY}


def test_webhooks_over_http_and_redelivery(fake: FakeDiscourse, connector: DiscourseConnector) -> None:
    seen: set[str] = set()

    def receive(headers: Any, body: bytes) -> int:
        fresh = [e for e in connector.parse(headers, body) if f"message:{e.inbound.id}" not in seen]
        seen.update(f"message:{e.inbound.id}" for e in fresh)  # a redelivery has a new event id, same post
        return len(fresh)

    with WebhookReceiver(receive) as receiver:
        post = fake.open_topic()
        answers = [fake.deliver(receiver.url, post), fake.deliver(receiver.url, post), fake.ping(receiver.url),
                   fake.deliver(receiver.url, post, secret="guess")]
    assert [a.status_code for a in answers] == [200, 200, 200, 401]
    assert [a.json().get("result") for a in answers[:3]] == [1, 0, 0]
