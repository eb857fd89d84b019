"""Incidents: many customers reporting the same problem at once. Read them; approve one reply for all; resolve;
approve the follow-up. Every change goes through the incident desk, which checks the caller's role again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder

from copilot.api.auth import Who, require
from copilot.api.context import Ctx
from copilot.api.schemas import IncidentApproveIn, IncidentMergeIn, IncidentResolveIn, IncidentTextsIn
from copilot.errors import UserError
from copilot.incidents.records import INCIDENT_STATUSES, PHASES

router = APIRouter(tags=["incidents"])


def _phase(phase: str) -> str:
    if phase not in PHASES:
        raise UserError(f"unknown phase {phase!r}: {' or '.join(PHASES)}")
    return phase


@router.get("/incidents", summary="Incidents, newest first (filtered by status)")
def list_incidents(who: Who, ctx: Ctx, status: str | None = Query(default=None, description=", ".join(
        INCIDENT_STATUSES))) -> dict[str, Any]:
    require(who, "items")
    if status is not None and status not in INCIDENT_STATUSES:
        raise UserError(f"unknown status {status!r}: {', '.join(INCIDENT_STATUSES)}")
    return {"incidents": jsonable_encoder([x.to_dict() for x in ctx.pipeline.incidents.list_incidents(status)])}


@router.get("/incidents/{incident_id}", summary="One incident: its texts, affected cases, timeline and numbers")
def get_incident(incident_id: int, who: Who, ctx: Ctx,
                 cases: int = Query(default=50, ge=0, le=10_000, description="affected cases to list (0: all)")
                 ) -> dict[str, Any]:
    require(who, "items")
    desk = ctx.pipeline.incidents
    incident = desk.get(incident_id)
    members = desk.members(incident_id, limit=cases or None)
    return jsonable_encoder({
        "incident": incident.to_dict(), "insights": desk.insights(incident_id),
        "timeline": [e.to_dict() for e in desk.timeline(incident_id)],
        "related": [{"id": x.id, "title": x.title, "similarity": round(s, 3)} for x, s in desk.related(incident_id)],
        "cases": [m.to_dict() for m in members],
    })


@router.put("/incidents/{incident_id}/{phase}", summary="Write the reply (or follow-up) texts, per language")
def put_texts(incident_id: int, phase: str, body: IncidentTextsIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    require(who, "review")
    incident = ctx.pipeline.incidents.save(incident_id, _phase(phase), body.texts, by=who.name)
    return jsonable_encoder({"incident": incident.to_dict()})


@router.post("/incidents/{incident_id}/{phase}/approve",
             summary="One approval: the reply (or follow-up) queued, personalised, for every affected case")
def approve(incident_id: int, phase: str, body: IncidentApproveIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Queues one approved item per affected case that the text fits, exactly once each (a repeated call adds
    only what is missing); the cases that need their own reply are listed with the reason."""
    require(who, "review")
    report = ctx.pipeline.incidents.approve(incident_id, _phase(phase), by=who.name, texts=body.texts)
    return report.to_dict()


@router.post("/incidents/{incident_id}/resolve", summary="The problem is fixed: draft the follow-up")
def resolve(incident_id: int, body: IncidentResolveIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    require(who, "review")
    incident = ctx.pipeline.incidents.resolve(incident_id, by=who.name, announcement_id=body.announcement)
    return jsonable_encoder({"incident": incident.to_dict()})


@router.post("/incidents/{incident_id}/merge", summary="Another incident is the same problem: one incident")
def merge(incident_id: int, body: IncidentMergeIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    require(who, "review")
    incident = ctx.pipeline.incidents.merge(incident_id, body.source, by=who.name)
    return jsonable_encoder({"incident": incident.to_dict()})
