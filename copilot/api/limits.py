"""Request limits: a body over the size limit is refused (413) before it is read whole, and each API token (or
client address, without a valid token) gets a number of requests per minute (429 with Retry-After)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from copilot.api.errors import ApiError, error_response

# The paths the limits guard; the web app mounted at "/" has its own (Gradio's) handling.
LIMITED_PREFIXES = ("/api/", "/webhooks/")


def limited(path: str) -> bool:
    """Whether a request path belongs to the API or the webhooks."""
    return path.startswith(LIMITED_PREFIXES)


class BodyLimit:
    """ASGI middleware: a declared ``Content-Length`` over ``max_bytes`` is refused at once, and a body sent
    without one (chunked) is counted as it streams in and refused as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not limited(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared < 0:
            await error_response(400, "the Content-Length header is not a number")(scope, receive, send)
            return
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, declared)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "more"
        response = error_response(413, f"the request body is too large ({size}; at most {self.max_bytes} bytes)",
                                  headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then waits on the client as before."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests in a burst, refilled evenly over the minute."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        """Count one request of ``key``; ApiError 429 with Retry-After when its bucket is empty."""
        rate = self.per_minute / 60.0
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
            bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                self._forget_full(now)
                return
            wait = math.ceil((1.0 - bucket.tokens) / rate)
        raise ApiError(429, f"too many requests: at most {self.per_minute} a minute; try again in {wait} s",
                       headers={"Retry-After": str(wait)})

    def _forget_full(self, now: float) -> None:
        # Keys whose buckets have refilled are as good as new: drop them so the table does not grow forever.
        if len(self._buckets) < 10_000:
            return
        rate = self.per_minute / 60.0
        for key in [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * rate >= self.per_minute]:
            del self._buckets[key]
