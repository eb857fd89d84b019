"""A real HTTP server on 127.0.0.1 (a free port, one thread a request) that a platform fake builds on.

It records every request, and can be told to misbehave for the next requests: answer 429 or 5xx without doing
anything, hang past the client's timeout, or do the work and then hang or drop the connection (the case where
the client cannot know whether its post was made).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, Any]  # status, JSON body


@dataclass(frozen=True)
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    """What to do instead of a normal answer, for the next ``count`` requests of ``method``."""

    kind: str  # "status" | "hang" | "hang_after" | "drop_after"
    count: int
    method: str | None = None
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Subclasses answer ``handle(request)``; this serves it and injects faults."""

    hang_s = 3.0  # longer than the clients' timeout in the tests

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self._faults: list[Fault] = []
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Faults

    def fail_next(self, count: int = 1, status: int = 500, *, method: str | None = None,
                  retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (nothing is stored)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._add(Fault("status", count, method, status, headers))

    def hang_next(self, count: int = 1, *, method: str | None = None) -> None:
        """Never answer the next requests (nothing is stored): the client times out."""
        self._add(Fault("hang", count, method))

    def store_then_hang(self, count: int = 1, *, method: str | None = "POST") -> None:
        """Do the work, then never answer: the client times out although the post was made."""
        self._add(Fault("hang_after", count, method))

    def store_then_drop(self, count: int = 1, *, method: str | None = "POST") -> None:
        """Do the work, then close the connection without an answer."""
        self._add(Fault("drop_after", count, method))

    def _add(self, fault: Fault) -> None:
        with self.lock:
            self._faults.append(fault)

    def _take_fault(self, method: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.method in (None, method) and fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # Serving

    def handle(self, request: Request) -> Answer:
        raise NotImplementedError

    def _serve(self, request: Request) -> tuple[Answer | None, Mapping[str, str]]:
        """The answer to send (None: send nothing and close), and extra headers."""
        with self.lock:
            self.requests.append(request)
        fault = self._take_fault(request.method)
        if fault is not None and fault.kind == "status":
            return (fault.status, {"error": "injected failure"}), fault.headers
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(self.hang_s)
            return None, {}
        with self.lock:
            answer = self.handle(request)
        if fault is not None and fault.kind == "hang_after":
            self._stopping.wait(self.hang_s)
            return None, {}
        if fault is not None and fault.kind == "drop_after":
            return None, {}
        return answer, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                answer, extra = server._serve(request)
                if answer is None:
                    self.close_connection = True
                    return
                status, data = answer
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = _any

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler


class WebhookReceiver(FakeServer):
    """Stands in for the copilot's webhook route: hands each request to ``receive(headers, body)`` and answers
    2xx with what it returns, or the status of the ``WebhookRejected`` it raises."""

    def __init__(self, receive: Callable[[Mapping[str, str], bytes], Any]) -> None:
        super().__init__()
        self.receive = receive
        self.answers: list[int] = []

    def handle(self, request: Request) -> Answer:
        from copilot.connectors.base import WebhookRejected

        try:
            result = self.receive(request.headers, request.body)
        except WebhookRejected as exc:
            self.answers.append(exc.status)
            return exc.status, {"error": exc.reason}
        self.answers.append(200)
        return 200, {"ok": True, "result": result}
