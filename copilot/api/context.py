"""What every route of the API works with: the pipeline, the rate limiter, and the intake for webhooks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, Request

from copilot.api.errors import ApiError
from copilot.api.limits import RateLimiter

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from copilot.pipeline import Pipeline


class IntakeReportLike(Protocol):
    """What the webhook route needs of an intake's report."""

    def to_dict(self) -> dict[str, Any]: ...


class IntakeLike(Protocol):
    """What the webhook route needs of ``copilot.intake.Intake``."""

    def receive(self, platform: str, headers: Mapping[str, str], body: bytes) -> IntakeReportLike: ...


class Readiness(Protocol):
    """What the routes need of ``copilot.ui.warmup.Warmup``: wait for a start-up step, or say what is left."""

    def wait(self, name: str, timeout: float | None = None) -> bool: ...

    def pending(self, names: tuple[str, ...]) -> list[str]: ...


READY_WAIT_S = 30.0  # how long a request waits for a start-up step before it gets 503


@dataclass
class ApiContext:
    """The parts the routes share; the intake is built on the first webhook unless one was given."""

    pipeline: Pipeline
    limiter: RateLimiter
    given_intake: IntakeLike | None = None
    build_intake: Callable[[Pipeline], IntakeLike] | None = None
    warmup: Readiness | None = None  # the server's start-up (indexing, models); None: everything is ready
    _intake: IntakeLike | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def ready(self, *steps: str) -> None:
        """Wait a little for the start-up steps a request needs (``index``, ``triage``, ``chat``); 503 with
        Retry-After if they are still running."""
        if self.warmup is None:
            return
        if not all(self.warmup.wait(step, READY_WAIT_S) for step in steps):
            left = ", ".join(self.warmup.pending(steps))
            raise ApiError(503, f"the server is still starting ({left}); try again shortly",
                           headers={"Retry-After": "15"})

    def intake(self) -> IntakeLike:
        """The intake for webhooks (built once, on first use, so the API starts without the connectors)."""
        if self.given_intake is not None:
            return self.given_intake
        with self._lock:
            if self._intake is None:
                build = self.build_intake or default_intake
                self._intake = build(self.pipeline)
            return self._intake


def default_intake(pipeline: Pipeline) -> IntakeLike:
    """The intake of the configured connectors, drafting with the pipeline's drafter, with incident detection."""
    from copilot.connectors.registry import build_connectors
    from copilot.intake import Intake

    return Intake(pipeline.queue, pipeline.drafter, build_connectors(pipeline.settings),
                  incidents=pipeline.incidents, triager=pipeline.triager)


def context_of(request: Request) -> ApiContext:
    """The API context of the app serving this request (a FastAPI dependency)."""
    ctx = request.app.state.copilot
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(context_of)]
