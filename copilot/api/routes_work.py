"""Messages in: submit one for a draft in the review queue, triage it, search the knowledge base, draft a reply."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from copilot.api.auth import Who, require
from copilot.api.context import ApiContext, Ctx
from copilot.api.errors import ApiError
from copilot.api.routes_items import item_dict
from copilot.api.schemas import MessageIn, TriageIn

router = APIRouter(tags=["messages"])


def _indexed(ctx: ApiContext, *steps: str) -> None:
    ctx.ready("index", *steps)
    if ctx.pipeline.index.count() == 0:
        raise ApiError(503, "the knowledge base is not indexed yet: run `copilot ingest`, or wait while the "
                            "server indexes it at start", headers={"Retry-After": "30"})


@router.post("/messages", status_code=201, summary="Submit an inbound message: triage, draft, queue for review")
def post_message(body: MessageIn, who: Who, ctx: Ctx
                 ) -> JSONResponse:
    """Triage the message, draft a grounded reply with the conversation so far and put it in the review queue.

    Answers 201 with the queue item and its case; a message triaged as spam gets no draft: 200 with its case
    and ``item: null`` (a person can still answer it from the web app).
    """
    require(who, "submit")
    pipeline = ctx.pipeline
    inbound = body.inbound()
    _indexed(ctx, "triage", "chat")
    draft = pipeline.drafter.draft(inbound, history=pipeline.queue.history_for(inbound))
    if draft.status == "skipped":
        spam = pipeline.queue.record_spam(draft, by=who.name)
        return JSONResponse(jsonable_encoder({"item": None, "case": spam.to_dict(), "spam": True}), status_code=200)
    item = pipeline.queue.submit(draft, by=who.name)
    case = pipeline.queue.get_case(item.case_id).to_dict() if item.case_id is not None else None
    return JSONResponse(jsonable_encoder({"item": item_dict(item), "case": case, "spam": False}), status_code=201)


@router.post("/triage", summary="Label a message: kind, sentiment, priority, crisis screen, language")
def post_triage(body: TriageIn, who: Who, ctx: Ctx
                ) -> dict[str, Any]:
    require(who, "triage")
    ctx.ready("triage")
    return ctx.pipeline.triager.triage(body.inbound()).to_dict()


@router.get("/search", summary="Ranked knowledge-base passages for a query (one per entry)")
def get_search(who: Who, ctx: Ctx,
               q: str = Query(min_length=1, max_length=2000, description="what to search for"),
               k: int = Query(default=8, ge=1, le=50, description="how many passages")) -> dict[str, Any]:
    require(who, "search")
    if not q.strip():
        raise ApiError(422, "invalid request: query.q: must not be empty")
    _indexed(ctx)
    found = ctx.pipeline.retriever.search(q, k=k)
    return {"query": q, "grounded": found.grounded, "passages": [p.to_dict() for p in found.passages]}


@router.post("/draft", summary="Draft a reply without queueing it")
def post_draft(body: MessageIn, who: Who, ctx: Ctx
               ) -> dict[str, Any]:
    """A draft for the message (with the conversation so far), its triage, the passages it used and its
    checks' flags; nothing is stored in the queue."""
    require(who, "draft")
    pipeline = ctx.pipeline
    inbound = body.inbound()
    _indexed(ctx, "triage", "chat")
    draft = pipeline.drafter.draft(inbound, history=pipeline.queue.history_for(inbound))
    return {"draft": draft.to_dict()}
