"""The review queue over HTTP: list and show items, approve, edit, reject, reopen, assign, and publish.

Every change goes through the action layer (``pipeline.actions``), with the version the client saw: a stale
version is 409 and changes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from copilot.api.auth import Who, may_see, require
from copilot.api.context import Ctx
from copilot.api.schemas import ApproveIn, AssignIn, EditIn, RejectIn, ReopenIn
from copilot.errors import PermissionDenied
from copilot.queue.records import ITEM_KINDS, ReviewItem
from copilot.queue.store import requires_individual_decision

router = APIRouter(tags=["review queue"])
KindFilter = Query(default=None, description=f"one of {', '.join(ITEM_KINDS)}")


def item_dict(item: ReviewItem) -> dict[str, Any]:
    """An item as the API shows it."""
    return {**item.to_dict(), "requires_individual_decision": requires_individual_decision(item)}


@router.get("/items", summary="Items by urgency (escalated first), filtered by status and kind")
def list_items(who: Who, ctx: Ctx,
               status: str = Query(default="pending,escalated", description="comma-separated statuses, or 'all'"),
               kind: str | None = KindFilter,
               limit: int = Query(default=100, ge=1, le=1000)) -> dict[str, Any]:
    """Reviewers and admins see every item; an agent sees the items they drafted or were assigned."""
    require(who, "items")
    queue = ctx.pipeline.queue
    statuses = None if status.strip() in ("", "all") else status
    if who.lead:
        items = queue.list_items(status=statuses, kind=kind, limit=limit)
    else:
        items = [i for i in queue.list_items(status=statuses, kind=kind, limit=10_000) if may_see(who, i)][:limit]
    return {"items": [item_dict(i) for i in items]}


@router.get("/items/{item_id}", summary="One item with its audit trail and, for a reply, its case's thread")
def show_item(item_id: int, who: Who, ctx: Ctx
              ) -> dict[str, Any]:
    require(who, "items")
    queue = ctx.pipeline.queue
    item = queue.get(item_id)
    if not may_see(who, item):
        raise PermissionDenied(f"{who.name} is an agent; agents see only the items they drafted or were assigned")
    thread = queue.thread(item.case_id) if item.kind == "reply" and item.case_id is not None else []
    return {"item": item_dict(item), "audit": [e.to_dict() for e in queue.audit(item_id)],
            "thread": thread}


@router.post("/items/{item_id}/approve", summary="Approve the version you reviewed, optionally with a final edit")
def approve(item_id: int, body: ApproveIn, who: Who, ctx: Ctx
            ) -> dict[str, Any]:
    """An approved FAQ proposal is written into the knowledge base and re-indexed, as from the web app."""
    require(who, "review")
    return item_dict(ctx.pipeline.actions.approve(item_id, by=who.name, version=body.version, text=body.text))


@router.post("/items/{item_id}/edit", summary="Save a new text without approving it")
def edit(item_id: int, body: EditIn, who: Who, ctx: Ctx
         ) -> dict[str, Any]:
    require(who, "review")
    return item_dict(ctx.pipeline.actions.edit(item_id, body.text, by=who.name, version=body.version))


@router.post("/items/{item_id}/reject", summary="Reject with a reason")
def reject(item_id: int, body: RejectIn, who: Who, ctx: Ctx
           ) -> dict[str, Any]:
    require(who, "review")
    return item_dict(ctx.pipeline.actions.reject(item_id, by=who.name, version=body.version, reason=body.reason))


@router.post("/items/{item_id}/reopen", summary="Bring a rejected item back to pending")
def reopen(item_id: int, body: ReopenIn, who: Who, ctx: Ctx
           ) -> dict[str, Any]:
    require(who, "review")
    return item_dict(ctx.pipeline.actions.reopen(item_id, by=who.name, version=body.version))


@router.post("/items/{item_id}/assign", summary="Give an item and its case an owner")
def assign(item_id: int, body: AssignIn, who: Who, ctx: Ctx
           ) -> dict[str, Any]:
    require(who, "assign")
    return item_dict(ctx.pipeline.actions.assign(item_id, body.assignee.strip(), by=who.name))


@router.post("/publish", summary="Post every approved item (and retry failed ones), exactly once each")
def publish(who: Who, ctx: Ctx) -> dict[str, Any]:
    require(who, "publish")
    return ctx.pipeline.actions.publish(by=who.name).to_dict()
