"""The API's FastAPI app for one pipeline: routes under ``/api/v1`` and ``/webhooks``, limits, JSON errors, docs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI

import copilot
from copilot.api import errors, routes_incidents, routes_items, routes_webhooks, routes_work
from copilot.api.auth import anonymous
from copilot.api.context import ApiContext, Ctx, IntakeLike, Readiness
from copilot.api.limits import BodyLimit, RateLimiter

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

PREFIX = "/api/v1"
DESCRIPTION = """Submit inbound messages for a grounded draft, triage and search, and work the review queue:
the same actions, roles and rules as the web app. Authenticate with `Authorization: Bearer <token>` (make a
token with `copilot users token NAME`). Every error is `{"error": {"status": N, "reason": "..."}}`.
See docs/api.md."""

health = APIRouter(tags=["server"])


@health.get("/health", summary="Whether the server and its queue database answer (no token needed)",
            dependencies=[Depends(anonymous)])
def get_health(ctx: Ctx) -> dict[str, Any]:
    ctx.pipeline.queue.count_users()  # a database that does not answer is an error here
    return {"status": "ok", "version": copilot.__version__}


def build_api(pipeline: Pipeline, *, intake: IntakeLike | None = None,
              build_intake: Callable[[Pipeline], IntakeLike] | None = None, warmup: Readiness | None = None,
              clock: Callable[[], float] | None = None) -> FastAPI:
    """The API for one pipeline. ``intake`` (or ``build_intake``, called on the first webhook) takes the
    webhooks in; by default the configured connectors' ``copilot.intake.Intake``. ``clock`` drives the rate
    limiter (tests); ``warmup`` is the server's start-up, which drafting requests wait for."""
    settings = pipeline.settings
    limiter = RateLimiter(settings.api_rate_per_minute, **({"clock": clock} if clock else {}))
    app = FastAPI(title="Reply copilot API", version=copilot.__version__, description=DESCRIPTION,
                  docs_url=f"{PREFIX}/docs", redoc_url=None, openapi_url=f"{PREFIX}/openapi.json")
    app.state.copilot = ApiContext(pipeline, limiter, given_intake=intake, build_intake=build_intake,
                                    warmup=warmup)
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    for router in (health, routes_work.router, routes_items.router, routes_incidents.router):
        app.include_router(router, prefix=PREFIX)
    app.include_router(routes_webhooks.router)
    return app
