"""Publishers: the outbox file, and the webhook against a real HTTP server on loopback, failure paths included."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _queue_support import make_draft, outbox_lines

from copilot.config import Settings
from copilot.errors import ConfigError
from copilot.queue.publish import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    OutboxPublisher,
    OutgoingMessage,
    PublishError,
    WebhookPublisher,
    build_publisher,
    sign,
    verify_signature,
)
from copilot.queue.store import open_queue

SECRET = "test-secret"


def message(n: int = 1, key: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(item_id=n, idempotency_key=key or f"key-{n}", kind="reply", channel="twitter",
                           text=f"Hello {n}", author="@c", in_reply_to=f"msg-{n}", case_id=n)


class Receiver:
    """A channel behind a webhook: checks signatures, de-duplicates by idempotency key, follows a script.

    ``script`` holds what to do with the next requests: an HTTP status to answer, or ("slow", seconds) to
    take the post and answer late. When it is empty, ``default`` decides.
    """

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.script: list[Any] = []
        self.default: int = 200
        self.requests: list[dict[str, Any]] = []
        self.posts: dict[str, dict[str, Any]] = {}  # what customers see, by idempotency key
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.handle(self)

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers["Content-Length"]))
        headers = {k: v for k, v in request.headers.items()}
        with self.lock:
            self.requests.append({"headers": headers, "body": body})
            step = self.script.pop(0) if self.script else self.default
        valid = verify_signature(self.secret, headers.get(TIMESTAMP_HEADER, ""), body,
                                 headers.get(SIGNATURE_HEADER, ""))
        if not valid:
            return self.answer(request, 401, {"error": "bad signature"})
        if isinstance(step, tuple):  # take the post, answer late
            self.take(headers, body)
            time.sleep(step[1])
            return self.answer(request, 200, {"id": "late"})
        if step >= 300:
            return self.answer(request, step, {"error": "scripted"})
        post_id, replayed = self.take(headers, body)
        return self.answer(request, 200, {"id": post_id}, replayed=replayed)

    def take(self, headers: dict[str, str], body: bytes) -> tuple[str, bool]:
        key = headers[IDEMPOTENCY_HEADER]
        with self.lock:
            if key in self.posts:
                return self.posts[key]["id"], True
            self.posts[key] = {"id": f"post-{len(self.posts) + 1}", "body": json.loads(body)}
            return self.posts[key]["id"], False

    def answer(self, request: BaseHTTPRequestHandler, status: int, data: dict[str, Any], *,
               replayed: bool = False) -> None:
        payload = json.dumps(data).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(payload)))
            if replayed:
                request.send_header("Idempotent-Replayed", "true")
            request.end_headers()
            request.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up waiting (a timeout test)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def webhook(url: str, *, secret: str = SECRET, retries: int = 3, timeout_s: float = 2.0) -> WebhookPublisher:
    return WebhookPublisher(url, secret, timeout_s=timeout_s, retries=retries, backoff_s=0.01)


# Webhook ------------------------------------------------------------------------------------------------


def test_webhook_posts_signed_json_with_idempotency_key(receiver: Receiver) -> None:
    receipt = webhook(receiver.url).post(message(1))
    assert receipt.external_id == "post-1" and not receipt.duplicate
    [request] = receiver.requests
    headers = request["headers"]
    assert headers[IDEMPOTENCY_HEADER] == "key-1"
    assert headers[SIGNATURE_HEADER] == sign(SECRET, headers[TIMESTAMP_HEADER], request["body"])
    assert json.loads(request["body"])["text"] == "Hello 1"
    assert receiver.posts["key-1"]["body"]["in_reply_to"] == "msg-1"


def test_webhook_retries_5xx_with_backoff_then_succeeds(receiver: Receiver) -> None:
    receiver.script = [503, 500]
    sleeps: list[float] = []
    publisher = WebhookPublisher(receiver.url, SECRET, retries=3, backoff_s=0.05, sleep=sleeps.append)
    assert publisher.post(message(2)).external_id == "post-1"
    assert len(receiver.requests) == 3 and len(receiver.posts) == 1
    assert sleeps == [0.05, 0.1]  # backoff doubles
    assert {r["headers"][IDEMPOTENCY_HEADER] for r in receiver.requests} == {"key-2"}


def test_webhook_timeout_fails_and_the_resend_is_deduplicated(receiver: Receiver) -> None:
    receiver.script = [("slow", 0.6), ("slow", 0.6)]
    publisher = webhook(receiver.url, retries=1, timeout_s=0.2)
    with pytest.raises(PublishError, match="timed out after 0.2 s"):
        publisher.post(message(3))
    assert len(receiver.requests) == 2
    receipt = publisher.post(message(3))  # later: the channel had taken it, and says so
    assert receipt.duplicate and len(receiver.posts) == 1


def test_webhook_client_errors_are_not_retried(receiver: Receiver) -> None:
    receiver.script = [422]
    with pytest.raises(PublishError, match="refused the message: HTTP 422"):
        webhook(receiver.url).post(message(4))
    assert len(receiver.requests) == 1 and not receiver.posts


def test_webhook_with_wrong_secret_is_rejected_by_the_server(receiver: Receiver) -> None:
    with pytest.raises(PublishError, match="HTTP 401"):
        webhook(receiver.url, secret="not-the-secret").post(message(5))
    assert not receiver.posts


def test_webhook_unreachable_server(receiver: Receiver) -> None:
    url = receiver.url
    receiver.close()
    with pytest.raises(PublishError, match="after 2 attempts: connection failed"):
        webhook(url, retries=1).post(message(6))


def test_signature_verification_rejects_tampering_and_old_requests() -> None:
    body = b'{"text":"hi"}'
    now = int(time.time())
    signature = sign(SECRET, str(now), body)
    assert verify_signature(SECRET, str(now), body, signature)
    assert not verify_signature(SECRET, str(now), body + b" ", signature)
    assert not verify_signature("other", str(now), body, signature)
    assert not verify_signature(SECRET, str(now - 3600), body, sign(SECRET, str(now - 3600), body))
    assert not verify_signature(SECRET, "yesterday", body, signature)


def test_persistent_failure_is_kept_as_failed_and_retried_later(tmp_path: Path, receiver: Receiver) -> None:
    receiver.default = 500
    publisher = webhook(receiver.url, retries=1)
    with open_queue(Settings(data_dir=tmp_path)) as queue:
        item = queue.submit(make_draft(1), by="alice")
        queue.approve(item.id, by="rita", version=1)
        for _ in range(2):
            report = queue.publish_approved(publisher, by="rita")
            assert [i for i, _ in report.failed] == [item.id]
            failed = queue.get(item.id)
            assert failed.status == "failed" and failed.error == "webhook failed after 2 attempts: HTTP 500"
        assert queue.get_case(item.case_id).status == "waiting"
        receiver.default = 200
        report = queue.publish_approved(publisher, by="rita")
        assert report.posted == (item.id,)
        posted = queue.get(item.id)
        assert posted.status == "posted" and posted.external_id == "post-1" and posted.attempts == 3
        assert posted.error is None
        assert len({r["headers"][IDEMPOTENCY_HEADER] for r in receiver.requests}) == 1
        assert len(receiver.posts) == 1
        actions = [e.action for e in queue.audit(item.id)]
        assert actions == ["draft", "approve", "publish", "failure", "publish", "failure", "publish", "post"]
        assert queue.publish_approved(publisher, by="rita").posted == ()


def test_crash_after_webhook_post_is_recovered_without_a_second_post(tmp_path: Path, receiver: Receiver) -> None:
    class Crash(BaseException):
        pass

    class CrashAfterPost:
        name = "crash"

        def __init__(self, inner: WebhookPublisher) -> None:
            self.inner = inner

        def post(self, msg: OutgoingMessage):  # type: ignore[no-untyped-def]
            self.inner.post(msg)
            raise Crash

        def close(self) -> None:
            self.inner.close()

    with open_queue(Settings(data_dir=tmp_path)) as queue:
        item = queue.submit(make_draft(2), by="alice")
        queue.approve(item.id, by="rita", version=1)
        with pytest.raises(Crash):
            queue.publish_approved(CrashAfterPost(webhook(receiver.url)), by="rita")
        assert queue.get(item.id).status == "posting"
        # Within the lease another publisher leaves the claim alone; after it, the claim is taken over.
        assert queue.publish_approved(webhook(receiver.url), by="rita").to_dict()["duplicates"] == []
        report = queue.publish_approved(webhook(receiver.url), by="rita", lease_s=0)
        assert report.duplicates == (item.id,) and report.posted == ()
        assert queue.get(item.id).status == "posted"
        assert len(receiver.requests) == 2 and len(receiver.posts) == 1


# Outbox -------------------------------------------------------------------------------------------------


def test_outbox_appends_lines_and_deduplicates_by_key_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    first, second = OutboxPublisher(path), OutboxPublisher(path)
    assert not first.post(message(1)).duplicate
    assert second.post(message(1)).duplicate  # another process's write is seen
    assert not second.post(message(2)).duplicate
    assert first.post(message(2)).duplicate
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["idempotency_key"] for line in lines] == ["key-1", "key-2"]
    assert lines[0]["text"] == "Hello 1" and "posted_at" in lines[0]
    assert first.keys() == {"key-1", "key-2"}


def test_outbox_drops_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    publisher = OutboxPublisher(path)
    publisher.post(message(1))
    with open(path, "a") as handle:
        handle.write('{"item_id": 2, "idempotency_key": "key-2", "te')  # a writer died mid-line
    assert not OutboxPublisher(path).post(message(2)).duplicate
    assert [json.loads(line)["idempotency_key"] for line in path.read_text().splitlines()] == ["key-1", "key-2"]


def test_outbox_with_a_foreign_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    path.write_text("not json\n")
    with pytest.raises(PublishError, match="not a message"):
        OutboxPublisher(path).post(message(1))


def test_build_publisher_from_settings(tmp_path: Path) -> None:
    outbox = build_publisher(Settings(data_dir=tmp_path))
    assert isinstance(outbox, OutboxPublisher) and outbox.path == tmp_path / "outbox.jsonl"
    with pytest.raises(ConfigError, match="COPILOT_WEBHOOK_URL"):
        build_publisher(Settings(data_dir=tmp_path, publisher="webhook"))
    hook = build_publisher(Settings(data_dir=tmp_path, publisher="webhook", webhook_url="http://127.0.0.1:9/",
                                    webhook_secret="s", webhook_retries=5, webhook_timeout_s=1.5))
    assert isinstance(hook, WebhookPublisher) and hook.retries == 5 and hook.timeout_s == 1.5
    hook.close()


def test_publish_through_the_outbox_end_to_end(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with open_queue(settings) as queue:
        ids = [queue.submit(make_draft(n), by="alice").id for n in range(3)]
        queue.approve(ids[0], by="rita", version=1)
        queue.approve(ids[2], by="rita", version=1, text="Edited before approval.")
        report = queue.publish_approved(build_publisher(settings), by="rita")
        assert sorted(report.posted) == [ids[0], ids[2]]
        assert queue.get(ids[1]).status == "pending"
    lines = outbox_lines(settings)
    assert sorted(line["item_id"] for line in lines) == [ids[0], ids[2]]
    assert {line["text"] for line in lines if line["item_id"] == ids[2]} == {"Edited before approval."}


def test_an_approved_faq_proposal_is_never_posted(tmp_path: Path) -> None:
    from copilot.queue.store import open_queue

    settings = Settings(data_dir=tmp_path)
    queue = open_queue(settings)
    proposal = queue.submit(make_draft(1, kind="faq_proposal", channel="forum"), by="copilot")
    reply = queue.submit(make_draft(2), by="copilot")
    for item in (proposal, reply):
        queue.approve(item.id, by="lead", version=item.version)
    queue.publish_approved(OutboxPublisher(settings.outbox_path), by="lead")
    assert [line["item_id"] for line in outbox_lines(settings)] == [reply.id]
    assert queue.get(proposal.id).status == "approved"
