"""Publisher adapters: the boundary where an approved message leaves the copilot for a channel.

A real channel connector implements :class:`Publisher`. Its contract, which makes publishing
exactly-once from the customer's point of view:

- ``post`` delivers one message and returns a :class:`PostReceipt`;
- it is idempotent by ``message.idempotency_key``: a key it has already delivered is not delivered again,
  it returns the first receipt with ``duplicate=True`` (the queue resends a key after a crash or a lost
  answer, so the connector, or the channel behind it, must remember keys);
- a failure it expects (the channel is down, refuses, times out) raises :class:`PublishError`; the queue
  records the error, keeps the item as ``failed`` and retries it on the next publish.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from copilot.config import Settings
from copilot.errors import ConfigError, ProviderError

SIGNATURE_HEADER = "X-Copilot-Signature"
TIMESTAMP_HEADER = "X-Copilot-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class PublishError(ProviderError):
    """A channel did not take the message; the item is kept as failed and retried later."""


@dataclass(frozen=True)
class OutgoingMessage:
    """An approved message on its way to a channel."""

    item_id: int
    idempotency_key: str
    kind: str
    channel: str
    text: str
    author: str | None = None  # who we answer
    in_reply_to: str | None = None  # the inbound message's id on the channel
    case_id: int | None = None
    approved_by: str | None = None
    conversation: str | None = None  # the platform's thread to answer in (see ``Inbound.conversation``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PostReceipt:
    """What the channel answered: its id for the post, and whether the key had been delivered before."""

    external_id: str | None = None
    duplicate: bool = False


@runtime_checkable
class Publisher(Protocol):
    """A channel adapter. See the module docstring for the idempotency contract."""

    name: str

    def post(self, message: OutgoingMessage) -> PostReceipt:
        """Deliver one message, at most once per idempotency key."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class OutboxPublisher:
    """Appends each message as a JSON line to a file (default ``outbox.jsonl`` in the data folder).

    Safe from many processes at once: an exclusive file lock covers reading the keys already written
    and appending, so a key is written at most once.
    """

    name = "outbox"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._keys: set[str] = set()
        self._offset = 0  # bytes of the file already read into _keys

    def post(self, message: OutgoingMessage) -> PostReceipt:
        fcntl = _fcntl()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.path, "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    self._catch_up(handle)
                    if message.idempotency_key in self._keys:
                        return PostReceipt(external_id=message.idempotency_key, duplicate=True)
                    record = {**message.to_dict(), "posted_at": datetime.now(UTC).isoformat()}
                    handle.seek(0, os.SEEK_END)
                    handle.write((json.dumps(record, ensure_ascii=False) + "\n").encode())
                    handle.flush()
                    os.fsync(handle.fileno())
                    self._offset = handle.tell()
                    self._keys.add(message.idempotency_key)
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        except OSError as exc:
            raise PublishError(f"cannot write the outbox {self.path}: {exc}") from exc
        return PostReceipt(external_id=message.idempotency_key)

    def _catch_up(self, handle: Any) -> None:
        """Read the keys other processes appended since we last looked; drop a torn last line."""
        size = handle.seek(0, os.SEEK_END)
        if size < self._offset:  # the file was replaced or truncated: start over
            self._keys.clear()
            self._offset = 0
        handle.seek(self._offset)
        data = handle.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            if line.strip():
                try:
                    self._keys.add(json.loads(line)["idempotency_key"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise PublishError(f"the outbox {self.path} has a line that is not a message: {exc}") from exc
        self._offset += end
        if end < len(data):
            # A writer died mid-line while holding the lock: that message was never delivered.
            handle.truncate(self._offset)

    def keys(self) -> set[str]:
        """Every idempotency key in the outbox (reads the file)."""
        if not self.path.exists():
            return set()
        with open(self.path, "rb") as handle:
            return {json.loads(line)["idempotency_key"] for line in handle if line.endswith(b"\n")}

    def close(self) -> None:
        self._keys.clear()
        self._offset = 0


def _fcntl() -> Any:
    try:
        import fcntl
    except ImportError as exc:  # Windows
        raise ConfigError("the outbox needs POSIX file locks; use COPILOT_PUBLISHER=webhook here") from exc
    return fcntl


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` and the hex HMAC-SHA256 of ``timestamp.body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, max_age_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """For receivers: whether a webhook request is authentic and recent (constant-time compare)."""
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        return False
    if abs(age) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookPublisher:
    """POSTs each message as JSON to a URL, signed with HMAC-SHA256, with timeouts and retries with backoff.

    Headers: ``Idempotency-Key`` (the receiver must answer 2xx without posting again for a key it has
    seen), ``X-Copilot-Timestamp`` and ``X-Copilot-Signature: sha256=<hex>`` over ``timestamp.body``.
    Connection errors, timeouts, 408/425/429 and 5xx are retried; other answers fail at once.
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not secret:
            raise ConfigError("the webhook publisher needs a secret: set COPILOT_WEBHOOK_SECRET")
        self.url = url
        self._secret = secret
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout_s))
        self._sleep = sleep

    def post(self, message: OutgoingMessage) -> PostReceipt:
        body = json.dumps(message.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        last_error = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: message.idempotency_key,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            }
            try:
                response = self._client.post(self.url, content=body, headers=headers)
            except httpx.TimeoutException:
                last_error = f"timed out after {self.timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                last_error = f"connection failed: {exc}"
                continue
            if response.is_success:
                return PostReceipt(
                    external_id=_external_id(response) or message.idempotency_key,
                    duplicate=response.headers.get("Idempotent-Replayed", "").lower() == "true",
                )
            if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
                last_error = f"HTTP {response.status_code}"
                continue
            raise PublishError(f"webhook refused the message: HTTP {response.status_code} {response.text[:200]}")
        raise PublishError(f"webhook failed after {self.retries + 1} attempts: {last_error}")

    def close(self) -> None:
        self._client.close()


def _external_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return None if value is None else str(value)


def build_publisher(settings: Settings) -> Publisher:
    """The publisher named by ``settings.publisher``."""
    if settings.publisher == "outbox":
        return OutboxPublisher(settings.outbox_path)
    if settings.publisher == "webhook":
        if not settings.webhook_url or not settings.webhook_secret:
            raise ConfigError("publisher=webhook needs COPILOT_WEBHOOK_URL and COPILOT_WEBHOOK_SECRET")
        return WebhookPublisher(
            settings.webhook_url, settings.webhook_secret, timeout_s=settings.webhook_timeout_s,
            retries=settings.webhook_retries, backoff_s=settings.webhook_backoff_s,
        )
    raise ConfigError(f"unknown publisher {settings.publisher!r}; known: outbox, webhook")
