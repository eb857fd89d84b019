"""End to end, per platform, over real HTTP: a signed event reaches ``/webhooks/<platform>`` of the served API
-> a case with its thread -> the draft as a private note (or whisper) on the fake platform -> a reviewer
approves through the API -> the public reply appears on the fake exactly once, through a redelivered event, a
lost answer and a platform outage; a follow-up in the same conversation is drafted with the thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
import uvicorn
from _api_support import ApiWorld, make_api_world
from _ports import free_port
from _ui_support import REVIEWER
from fake_platforms.chatwoot import FakeChatwoot
from fake_platforms.discourse import FakeDiscourse

from copilot.api.app import build_api
from copilot.pipeline import Pipeline

FIRST = "My bulb will not connect to the wifi during setup, so annoying"
FOLLOW_UP = "I did the first step and it still fails"



class Served:
    """The API of a pipeline on a real uvicorn server in a thread."""

    def __init__(self, pipeline: Pipeline) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(build_api(pipeline), host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the API server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def api(tmp_path: Path) -> ApiWorld:
    return make_api_world(tmp_path)


def _review(api: ApiWorld, served: Served, item_id: int) -> dict[str, Any]:
    auth = api.auth(REVIEWER)
    item = httpx.get(f"{served.url}/api/v1/items/{item_id}", headers=auth).json()
    answer = httpx.post(f"{served.url}/api/v1/items/{item_id}/approve", headers=auth,
                        json={"version": item["item"]["version"]})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _publish(api: ApiWorld, served: Served) -> dict[str, Any]:
    answer = httpx.post(f"{served.url}/api/v1/publish", headers=api.auth(REVIEWER), timeout=60)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture
def chatwoot(api: ApiWorld) -> Iterator[tuple[FakeChatwoot, Served]]:
    with FakeChatwoot() as fake:
        pipeline = api.with_settings(chatwoot_url=fake.url, chatwoot_account_id=fake.account_id,
                                     chatwoot_api_token=fake.api_token, chatwoot_webhook_secret=fake.webhook_secret,
                                     connector_backoff_s=0.01)
        api.world.pipeline = pipeline
        with Served(pipeline) as served:
            yield fake, served


def test_chatwoot_end_to_end(api: ApiWorld, chatwoot: tuple[FakeChatwoot, Served]) -> None:
    fake, served = chatwoot
    hook = f"{served.url}/webhooks/chatwoot"
    queue = api.pipeline.queue
    # A wrongly signed event: 401 and nothing stored.
    wrong = fake.customer_says(42, FIRST)
    _, refused = fake.deliver(hook, wrong, secret="not-the-secret")
    assert refused.status_code == 401 and "error" in refused.json() and queue.count_items() == 0
    # The signed event: a case, a draft, the draft as a private note; its redelivery changes nothing.
    delivery, answer = fake.deliver(hook, wrong)
    assert answer.status_code == 200, answer.text
    [item_id] = answer.json()["items"]
    again = fake.redeliver(hook, delivery)
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    [note] = fake.notes(42)
    item = queue.get(item_id)
    assert item.text in note["content"] and fake.replies(42) == [] and queue.count_items() == 1
    # Approved through the API; the first answer to the post is lost after Chatwoot stored it, then a 503.
    assert _review(api, served, item_id)
    fake.store_then_drop(1, method="POST")
    report = _publish(api, served)
    assert report["posted"] == [item_id] or report["duplicates"] == [item_id], report
    assert len(fake.replies(42)) == 1 and fake.replies(42)[0]["content"] == item.text
    assert _publish(api, served)["posted"] == [] and len(fake.replies(42)) == 1  # exactly once
    # A follow-up joins the case and is drafted with the thread.
    follow = fake.customer_says(42, FOLLOW_UP)
    [second_id] = fake.deliver(hook, follow)[1].json()["items"]
    second = queue.get(second_id)
    assert second.case_id == item.case_id and any(f.startswith("follow-up: drafted with the 2 earlier")
                                                  for f in second.draft["flags"])
    assert [t.direction for t in queue.thread(item.case_id)] == ["in", "out", "in"]
    # An outage: the item is kept failed, and posted once when Chatwoot is back.
    _review(api, served, second_id)
    fake.fail_next(4, 503, method="POST")  # more than the connector's retries (3) within one publish
    failed = _publish(api, served)
    assert failed["failed"] and queue.get(second_id).status == "failed" and len(fake.replies(42)) == 1
    assert _publish(api, served)["posted"] == [second_id] and len(fake.replies(42)) == 2


@pytest.fixture
def discourse(api: ApiWorld) -> Iterator[tuple[FakeDiscourse, Served]]:
    with FakeDiscourse() as fake:
        pipeline = api.with_settings(discourse_url=fake.url, discourse_api_key=fake.api_key,
                                     discourse_api_username=fake.api_username,
                                     discourse_webhook_secret=fake.webhook_secret, connector_backoff_s=0.01)
        api.world.pipeline = pipeline
        with Served(pipeline) as served:
            yield fake, served


def test_discourse_end_to_end(api: ApiWorld, discourse: tuple[FakeDiscourse, Served]) -> None:
    fake, served = discourse
    hook = f"{served.url}/webhooks/discourse"
    queue = api.pipeline.queue
    first = fake.open_topic("Bulb will not join the wifi", raw=FIRST)
    topic = first["topic_id"]
    assert fake.deliver(hook, first, secret="wrong").status_code == 401 and queue.count_items() == 0
    answer = fake.deliver(hook, first)
    assert answer.status_code == 200, answer.text
    [item_id] = answer.json()["items"]
    assert fake.deliver(hook, first).json()["duplicates"] == 1  # a redelivery (Discourse gives it a new id)
    [whisper] = fake.whispers(topic)
    item = queue.get(item_id)
    assert item.text in whisper["raw"] and fake.replies(topic) == []
    _review(api, served, item_id)
    fake.store_then_drop(1, method="POST")
    _publish(api, served)
    assert [r["raw"].split("<!--")[0].strip() for r in fake.replies(topic)] == [item.text]
    assert _publish(api, served)["posted"] == [] and len(fake.replies(topic)) == 1
    follow = fake.member_posts(topic, FOLLOW_UP)
    [second_id] = fake.deliver(hook, follow).json()["items"]
    assert queue.get(second_id).case_id == item.case_id
    assert any(f.startswith("follow-up: drafted with the 2 earlier") for f in queue.get(second_id).draft["flags"])
