"""``POST /webhooks/{platform}``: a platform's signed event, handed raw to the intake.

No bearer token: the platform signs its requests and the connector checks the signature (401 if wrong). The
body size limit applies as to the API. The intake's work (drafting, storing) runs in a worker thread, and the
answer waits for it, so a platform that times out redelivers and the redelivery is recognised.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from copilot.api.context import Ctx
from copilot.api.errors import ApiError

router = APIRouter(tags=["webhooks"])
_PLATFORM = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@router.post("/webhooks/{platform}", summary="A platform's webhook (Chatwoot, Discourse), signed by the platform")
async def webhook(platform: str, request: Request, ctx: Ctx) -> dict[str, Any]:
    """What the event became: the items drafted, the cases opened or joined, duplicates and ignored events."""
    if not _PLATFORM.match(platform):
        raise ApiError(404, f"no such platform {platform!r}")
    body = await request.body()
    headers = dict(request.headers)
    intake = await run_in_threadpool(ctx.intake)
    report = await run_in_threadpool(intake.receive, platform, headers, body)
    return report.to_dict()
