"""What every Gradio callback of the app shares: the pipeline and warm-up it runs against (``Context``), the
acting user, errors turned into messages (in the page and as a short toast), and streaming.

Callbacks return dicts keyed by component: whatever a dict leaves out stays as it is on the page.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr

from copilot.errors import CopilotError, PermissionDenied
from copilot.ui import render as r

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline
    from copilot.ui.warmup import Warmup

log = logging.getLogger(__name__)
T = TypeVar("T")
Updates = dict[Any, Any]
# Seconds a warning toast stays. Short: the same message stays in the page, beside what failed.
TOAST_S = 6.0
_DONE = object()


@dataclass(frozen=True)
class Context:
    """What the screens' callbacks run against: the pipeline, and the warm-up loading its heavy parts."""

    pipeline: Pipeline
    warmup: Warmup | None = None

    def wait_for(self, steps: tuple[str, ...]) -> Iterator[str]:
        """Yield progress messages while the warm-up steps that a callback needs are still running."""
        if self.warmup is None:
            return
        while pending := self.warmup.pending(steps):
            yield "Getting ready: " + ", ".join(pending) + "…"
            self.warmup.wait_all(steps, timeout=0.5)
        self.warmup.wait_all(steps)  # raises the error of a failed step


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


def guarded(request: gr.Request | None, status: Any, fn: Callable[[str], Updates]) -> Updates:
    """Run ``fn(user)``; on an error change nothing but ``status``, which shows the error."""
    try:
        return fn(username(request))
    except Exception as exc:  # noqa: BLE001 - the UI's boundary: every error becomes a message
        return failure(exc, status)


def failure(exc: BaseException, status: Any) -> Updates:
    """The update that shows an error in ``status`` (and briefly as a toast), leaving the rest as it is."""
    message = message_of(exc)
    gr.Warning(message, duration=TOAST_S)
    return {status: r.error_md(message)}


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
