"""What every Gradio callback of the app shares: the acting user, errors turned into messages, streaming."""

from __future__ import annotations

import logging
import queue as queue_mod
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gradio as gr

from copilot.errors import CopilotError, PermissionDenied
from copilot.ui import render as r

log = logging.getLogger(__name__)
T = TypeVar("T")
SKIP = gr.skip
_DONE = object()


def message_of(exc: BaseException) -> str:
    """A readable one-line message for any error; never a traceback."""
    if isinstance(exc, CopilotError):
        return str(exc)
    log.error("unexpected error in the web app", exc_info=exc)
    return f"Something went wrong ({type(exc).__name__}). The details are in the server log."


def username(request: gr.Request | None) -> str:
    name = getattr(request, "username", None) if request is not None else None
    if not name:
        raise PermissionDenied("log in first")
    return str(name)


def call(request: gr.Request | None, n: int, status: int, fn: Callable[[str], Any]) -> Any:
    """Run ``fn(user)``; on an error leave every output as it is except ``status``, which shows the error."""
    try:
        return fn(username(request))
    except Exception as exc:  # noqa: BLE001 - the UI's boundary: every error becomes a message
        return failure(exc, n, status)


def failure(exc: BaseException, n: int, status: int) -> Any:
    message = message_of(exc)
    gr.Warning(message)
    out: list[Any] = [SKIP()] * n
    out[status] = r.error_md(message)
    return tuple(out) if n > 1 else out[0]


def streamed(work: Callable[[Callable[[str], None]], T], every_s: float = 0.08) -> Iterator[tuple[str, T | None]]:
    """Run ``work(on_token)`` in a thread; yield the text so far as tokens come, then ``(text, result)``."""
    tokens: queue_mod.Queue[Any] = queue_mod.Queue()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = work(tokens.put)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            box["error"] = exc
        finally:
            tokens.put(_DONE)

    threading.Thread(target=run, name="copilot-stream", daemon=True).start()
    text, last = "", 0.0
    while (token := tokens.get()) is not _DONE:
        text += token
        if time.monotonic() - last >= every_s:
            last = time.monotonic()
            yield text, None
    if "error" in box:
        raise box["error"]
    yield text, box["result"]
