"""Talking to a platform's HTTP API: timeouts, retries with backoff, and posting a reply at most once.

Both web connectors (Chatwoot, Discourse) call their platform through :class:`PlatformClient`:

- 429 is retried after the ``Retry-After`` the platform asked for (or the backoff, whichever is longer);
  408, 425, 5xx, timeouts and dropped connections are retried with a backoff that doubles each time;
  any other answer raises :class:`PublishError` at once (the queue keeps the item failed and retries it on
  the next publish);
- :meth:`PlatformClient.post_once` is how a public reply is sent exactly once. Neither platform takes an
  idempotency header, so the connector writes the queue's key into the post where it can be read back, and
  ``post_once`` looks for it (``find``) before the first attempt and again after any attempt whose outcome is
  unknown (a timeout, a dropped connection or a 5xx after the request went out): a post already made is
  returned as a duplicate instead of being made twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from copilot.connectors.base import WebhookRejected
from copilot.queue.publish import RETRYABLE_STATUS, PostReceipt, PublishError

log = logging.getLogger(__name__)

# A Retry-After longer than this is not waited for inside one publish: the item fails and is retried later.
MAX_RETRY_AFTER_S = 60.0

Find = Callable[[], str | None]


class PlatformClient:
    """One platform's HTTP API, with its auth headers, timeouts and retries."""

    def __init__(
        self,
        platform: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self._headers = dict(headers)
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=True)
        self._sleep = sleep
        self._clock = clock

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *,
                 missing_ok: bool = False) -> Any:
        """GET a JSON document; with ``missing_ok``, None for a 404."""
        response = self._send("GET", path, params=params, missing_ok=missing_ok)
        return None if response is None else _json(response, self.platform)

    def post_json(self, path: str, payload: Mapping[str, Any]) -> Any:
        """POST JSON (retried, so use it only where a second copy does no harm, e.g. a private note)."""
        return _json(self._send("POST", path, json=payload), self.platform)

    def delete(self, path: str) -> None:
        """DELETE a resource."""
        self._send("DELETE", path)

    def post_once(self, path: str, payload: Mapping[str, Any], *, find: Find,
                  id_of: Callable[[Any], str | None], check_first: bool = True) -> tuple[PostReceipt, Any]:
        """POST a post that must exist once: ``find`` returns the id of the post already made with this
        payload's key, or None. Returns the receipt and the platform's answer (None for a duplicate).
        ``check_first=False`` when the caller has just looked itself."""
        # A publish retried after a crash or a lost answer: the post may be there already.
        found = find() if check_first else None
        if found is not None:
            return PostReceipt(external_id=found, duplicate=True), None
        response = self._send("POST", path, json=payload, recheck=find)
        if isinstance(response, _Found):
            return PostReceipt(external_id=response.external_id, duplicate=True), None
        data = _json(response, self.platform)
        return PostReceipt(external_id=id_of(data)), data

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, *, json: Mapping[str, Any] | None = None,
              params: Mapping[str, Any] | None = None, missing_ok: bool = False,
              recheck: Find | None = None) -> Any:
        url = self.base_url + path
        last_error = "no attempt"
        wait = 0.0
        uncertain = False  # an attempt may have been carried out although we got no answer
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(wait)
                if uncertain and recheck is not None:
                    found = recheck()
                    if found is not None:
                        log.info("%s: %s %s had gone through before the failure (%s)", self.platform, method,
                                 path, found)
                        return _Found(found)
            wait = self.backoff_s * 2 ** attempt
            try:
                response = self._client.request(method, url, json=json, params=params, headers=self._headers)
            except httpx.TimeoutException as exc:
                last_error = f"timed out after {self.timeout_s:g} s"
                uncertain = uncertain or not isinstance(exc, httpx.ConnectTimeout)
                continue
            except httpx.TransportError as exc:
                last_error = f"connection failed: {exc}"
                uncertain = uncertain or not isinstance(exc, httpx.ConnectError)
                continue
            if response.is_success:
                return response
            status = response.status_code
            if status == 404 and missing_ok:
                return None
            if status in RETRYABLE_STATUS or status >= 500:
                last_error = f"HTTP {status}"
                uncertain = uncertain or status >= 500
                wait = max(wait, self._retry_after(response))
                continue
            raise PublishError(f"{self.platform} refused {method} {path}: HTTP {status} {response.text[:200]}")
        raise PublishError(f"{self.platform}: {method} {path} failed after {self.retries + 1} attempts: "
                           f"{last_error}")

    def _retry_after(self, response: httpx.Response) -> float:
        """The wait a 429 or 503 asks for (seconds or an HTTP date), capped; 0 when absent or unreadable."""
        value = response.headers.get("Retry-After", "").strip()
        if not value:
            return 0.0
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - self._clock()
            except (TypeError, ValueError, IndexError):
                return 0.0
        return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


class _Found:
    """``recheck`` found the post an earlier, unanswered attempt made."""

    def __init__(self, external_id: str) -> None:
        self.external_id = external_id


def _json(response: httpx.Response, platform: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise PublishError(f"{platform} answered HTTP {response.status_code} with something that is not JSON: "
                           f"{response.text[:200]}") from exc


def json_object(body: bytes) -> dict[str, Any]:
    """A webhook's body as a JSON object, or ``WebhookRejected(400)``."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected(400, f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, "the body is not a JSON object")
    return data


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive: one lower-case dict to read them from."""
    return {str(k).lower(): str(v) for k, v in headers.items()}
