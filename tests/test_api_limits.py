"""The API's limits and its webhook route: oversized bodies (413), the rate limit (429), and webhooks handed
raw to the intake (a fake one here; the real intake has its own tests)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from _api_support import ApiWorld, make_api_world
from _ui_support import AGENT, REVIEWER

from copilot.connectors.base import WebhookRejected


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return make_api_world(tmp_path_factory.mktemp("api-limits"))


def _reason(response: Any) -> str:
    body = response.json()
    assert body["error"]["status"] == response.status_code
    return str(body["error"]["reason"])


# Body size ----------------------------------------------------------------------------------------------


def test_a_declared_oversized_body_is_413_before_anything_runs(api: ApiWorld) -> None:
    client = api.client(api.with_settings(api_max_body_bytes=2_000))
    before = api.pipeline.queue.count_items()
    response = client.post("/api/v1/messages", headers=api.auth(AGENT),
                           json={"text": "x" * 5_000, "channel": "twitter"})
    assert response.status_code == 413 and "at most 2000 bytes" in _reason(response)
    assert api.pipeline.queue.count_items() == before
    small = client.post("/api/v1/triage", headers=api.auth(AGENT), json={"text": "is it on?"})
    assert small.status_code == 200


def test_a_streamed_body_without_a_length_is_counted_and_refused(api: ApiWorld) -> None:
    client = api.client(api.with_settings(api_max_body_bytes=2_000))

    def chunks() -> Iterator[bytes]:  # sent chunked, with no Content-Length (see test_api_serve for a real server)
        yield b'{"text": "'
        for _ in range(20):
            yield b"x" * 500

    response = client.post("/api/v1/triage", content=chunks(),
                           headers={**api.auth(AGENT), "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    _reason(response)


def test_the_limit_applies_to_webhooks(api: ApiWorld) -> None:
    intake = FakeIntake()
    client = api.client(api.with_settings(api_max_body_bytes=1_000), intake=intake)
    response = client.post("/webhooks/chatwoot", content=b"{" + b" " * 2_000 + b"}")
    assert response.status_code == 413 and intake.calls == []


# Rate limit ---------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_token_has_its_own_rate_limit_with_retry_after(api: ApiWorld) -> None:
    clock = Clock()
    client = api.client(api.with_settings(api_rate_per_minute=3), clock=clock)
    for _ in range(3):
        assert client.get("/api/v1/items", headers=api.auth(REVIEWER)).status_code == 200
    limited = client.get("/api/v1/items", headers=api.auth(REVIEWER))
    assert limited.status_code == 429 and "at most 3 a minute" in _reason(limited)
    assert int(limited.headers["retry-after"]) == 20  # one request comes back every 60/3 s
    assert client.get("/api/v1/items", headers=api.auth(AGENT)).status_code == 200  # another token
    clock.now += 20
    assert client.get("/api/v1/items", headers=api.auth(REVIEWER)).status_code == 200
    assert client.get("/api/v1/items", headers=api.auth(REVIEWER)).status_code == 429


def test_requests_without_a_valid_token_are_limited_by_address(api: ApiWorld) -> None:
    client = api.client(api.with_settings(api_rate_per_minute=2), clock=Clock())
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/api/v1/items", headers={"Authorization": "Bearer cpt_guess"}).status_code == 401
    for attempt in (client.get("/api/v1/health"),
                    client.get("/api/v1/items", headers={"Authorization": "Bearer cpt_guess-again"})):
        assert attempt.status_code == 429 and "retry-after" in attempt.headers
    assert client.get("/api/v1/items", headers=api.auth(REVIEWER)).status_code == 200  # a token has its own


# Webhooks -----------------------------------------------------------------------------------------------


@dataclass
class FakeReport:
    platform: str
    items: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "items": list(self.items)}


@dataclass
class FakeIntake:
    """The intake's interface: checks a signature header, refuses unknown platforms, records what it got."""

    calls: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def receive(self, platform: str, headers: Mapping[str, str], body: bytes) -> FakeReport:
        if platform != "chatwoot":
            raise WebhookRejected(404, f"no {platform} connector is configured")
        if headers.get("x-chatwoot-signature") != "sha256=good":
            raise WebhookRejected(401, "the signature does not match")
        if not body.startswith(b"{"):
            raise WebhookRejected(400, "the payload is not JSON")
        self.calls.append((platform, dict(headers), body))
        return FakeReport(platform, (42,))


def test_a_webhook_is_handed_raw_to_the_intake_without_a_token(api: ApiWorld) -> None:
    intake = FakeIntake()
    client = api.client(intake=intake)
    raw = b'{"event": "message_created",  "content": "caf\xc3\xa9"}'
    response = client.post("/webhooks/chatwoot", content=raw,
                           headers={"X-Chatwoot-Signature": "sha256=good", "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json() == {"platform": "chatwoot", "items": [42]}
    [(platform, headers, body)] = intake.calls
    assert platform == "chatwoot" and body == raw and headers["x-chatwoot-signature"] == "sha256=good"


@pytest.mark.parametrize(("platform", "headers", "body", "status"), [
    ("chatwoot", {}, b"{}", 401),
    ("chatwoot", {"X-Chatwoot-Signature": "sha256=bad"}, b"{}", 401),
    ("chatwoot", {"X-Chatwoot-Signature": "sha256=good"}, b"not json", 400),
    ("zendesk", {"X-Chatwoot-Signature": "sha256=good"}, b"{}", 404),
    ("../etc", {}, b"{}", 404),
])
def test_a_refused_webhook_is_a_json_error(api: ApiWorld, platform: str, headers: dict[str, str], body: bytes,
                                           status: int) -> None:
    intake = FakeIntake()
    response = api.client(intake=intake).post(f"/webhooks/{platform}", content=body, headers=headers)
    assert response.status_code == status
    _reason(response)
    assert intake.calls == []


def test_without_configured_connectors_a_webhook_is_404(api: ApiWorld) -> None:
    response = api.client().post("/webhooks/chatwoot", content=b"{}")  # the real intake, nothing configured
    assert response.status_code == 404 and "no chatwoot connector is configured" in _reason(response)
    assert api.client().get("/webhooks/chatwoot").status_code == 405
