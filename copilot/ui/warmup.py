"""Getting the heavy parts ready in the background, so the page comes up at once.

Steps run in order in one thread: index the knowledge base (incremental: quick when nothing changed), load
the triager, load the chat model. A handler that needs a step waits for it and can show its progress.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from copilot.errors import CopilotError, ProviderError

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

log = logging.getLogger(__name__)

STEPS = ("index", "triage", "chat")
LABELS = {"index": "indexing the knowledge base", "triage": "loading the triage model",
          "chat": "loading the chat model"}


@dataclass(frozen=True)
class StepState:
    name: str
    state: str  # waiting | running | ready | failed
    seconds: float = 0.0
    error: str | None = None
    done: int = 0
    total: int = 0


class Warmup:
    """Runs the warm-up steps once in a background thread and reports their state."""

    def __init__(self, pipeline: Pipeline, *, ingest: bool = True) -> None:
        self.pipeline = pipeline
        self.ingest = ingest
        self._states = {name: StepState(name, "waiting") for name in STEPS}
        self._events = {name: threading.Event() for name in STEPS}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> Warmup:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="copilot-warmup", daemon=True)
                self._thread.start()
        return self

    def _set(self, name: str, **changes: Any) -> None:
        with self._lock:
            current = self._states[name]
            self._states[name] = StepState(**{**current.__dict__, **changes})

    def _run(self) -> None:
        actions: dict[str, Callable[[], Any]] = {
            "index": self._index,
            "triage": lambda: self.pipeline.triager,
            "chat": self._chat,
        }
        for name in STEPS:
            start = time.perf_counter()
            self._set(name, state="running")
            try:
                actions[name]()
            except CopilotError as exc:
                self._set(name, state="failed", error=str(exc), seconds=time.perf_counter() - start)
            except Exception as exc:  # the thread must report, not die silently
                log.exception("warm-up step %s failed", name)
                self._set(name, state="failed", error=f"{type(exc).__name__}: {exc}",
                          seconds=time.perf_counter() - start)
            else:
                self._set(name, state="ready", seconds=time.perf_counter() - start)
            self._events[name].set()

    def _index(self) -> None:
        if not self.ingest:
            return

        def progress(done: int, total: int) -> None:
            self._set("index", done=done, total=total)

        self.pipeline.ingest(progress=progress)

    def _chat(self) -> None:
        chat = self.pipeline.chat
        load = getattr(chat, "load", None)
        if callable(load):
            load()

    def state(self, name: str) -> StepState:
        with self._lock:
            return self._states[name]

    def wait(self, name: str, timeout: float | None = None) -> bool:
        """Wait until ``name`` has finished (or ``timeout`` passed); raise its error if it failed."""
        if not self._events[name].wait(timeout):
            return False
        failed = self.state(name)
        if failed.state == "failed":
            raise ProviderError(f"{LABELS[name]} failed: {failed.error}")
        return True

    def wait_all(self, names: tuple[str, ...], timeout: float | None = None) -> bool:
        return all(self.wait(name, timeout) for name in names)

    def pending(self, names: tuple[str, ...] = STEPS) -> list[str]:
        """The steps among ``names`` that are not finished yet, described for a progress message."""
        out = []
        for name in names:
            s = self.state(name)
            if s.state in ("waiting", "running"):
                extra = f" ({s.done}/{s.total})" if s.total else ""
                out.append(LABELS[name] + extra)
        return out

    def summary(self) -> str:
        """One line for the page header."""
        parts = []
        for name in STEPS:
            s = self.state(name)
            if s.state == "ready":
                parts.append(f"{name} ready")
            elif s.state == "failed":
                parts.append(f"{name} failed: {s.error}")
            else:
                parts.append(f"{LABELS[name]}…")
        return " · ".join(parts)
