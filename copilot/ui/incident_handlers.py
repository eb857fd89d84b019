"""The Incidents screen's handlers: plain functions over the incident desk (``pipeline.incidents``), roles
checked here and again by the desk.

Every role sees the incidents; reviewers and admins act on them. One approval queues the incident's reply,
approved and personalised, for every affected case that fits it; the publisher sends those like any approved
reply. Nothing is posted from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from copilot.errors import PermissionDenied, UserError
from copilot.incidents.records import INCIDENT_STATUSES, PHASES, Incident, Member, QueuedReport
from copilot.ui.access import SCREENS, account, require, role_of
from copilot.ui.views import IncidentDetail

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

LIVE = ("open", "resolved")  # the incidents the banner shows: people are affected, or the follow-up waits
FILTERS = ("live", "all", *INCIDENT_STATUSES)
MEMBERS_SHOWN = 500
EXAMPLES = 3


def incident_id_of(value: Any) -> int:
    """An incident id from the page (an int, "3" or "#3 title"); UserError when none is picked."""
    if value is None or value == "":
        raise UserError("pick an incident first")
    if isinstance(value, int | float):
        return int(value)
    head = str(value).strip().lstrip("#").split(" ", 1)[0]
    if not head.isdigit():
        raise UserError(f"no incident {value!r}: pick one from the list")
    return int(head)


def incidents(pipeline: Pipeline, user: str | None, show: str | None = "live") -> list[Incident]:
    """The incidents under a filter: ``live`` (open and resolved), ``all``, or one status; newest first."""
    require(pipeline, user, "incidents")
    show = show or "live"
    if show not in FILTERS:
        raise UserError(f"unknown filter {show!r}; choose one of {', '.join(FILTERS)}")
    desk = pipeline.incidents
    if show == "all":
        return desk.list_incidents()
    if show == "live":
        return [x for x in desk.list_incidents() if x.status in LIVE]
    return desk.list_incidents(show)


def live_incidents(pipeline: Pipeline, user: str | None) -> list[Incident]:
    """Open and resolved incidents, the most affected first (what the banner shows)."""
    return sorted(incidents(pipeline, user, "live"), key=lambda x: (-x.affected, -x.id))


def banner_text(found: list[Incident]) -> str | None:
    """``Incident: <title> — N affected, <status>`` for the most affected one, ``+k more``; None for none."""
    if not found:
        return None
    top = found[0]
    text = f"⚠ Incident: {top.title} — {top.affected} affected, {top.status}"
    if len(found) > 1:
        text += f" (+{len(found) - 1} more)"
    return text


def banner(pipeline: Pipeline, user: str | None) -> str | None:
    return banner_text(live_incidents(pipeline, user))


def languages(pipeline: Pipeline, incident: Incident, members: list[Member], phase: str) -> tuple[str, ...]:
    """The languages a phase needs a text in: the knowledge base's first, then the texts' own, then those of
    the affected cases that get the incident's replies (a box left empty for a language still to write)."""
    texts = incident.texts(phase)
    if phase == "followup" and incident.status == "open" and not texts:
        return ()  # drafted on "Mark resolved"
    wanted = {m.language for m in members if m.left_out is None and m.language} | set(texts)
    first = str(pipeline.settings.kb_language or "en")
    return tuple(sorted(wanted, key=lambda lang: (lang != first, lang)))


def incident(pipeline: Pipeline, user: str | None, incident_id: Any) -> Incident:
    require(pipeline, user, "incidents")
    return pipeline.incidents.get(incident_id_of(incident_id))


def incident_detail(pipeline: Pipeline, user: str | None, incident_id: Any) -> IncidentDetail:
    """Everything the screen shows about one incident."""
    require(pipeline, user, "incidents")
    desk = pipeline.incidents
    incident = desk.get(incident_id_of(incident_id))
    members = desk.members(incident.id, limit=MEMBERS_SHOWN)
    fitting = [m for m in members if m.left_out is None]
    examples = sorted(fitting or members, key=lambda m: m.case_id != incident.example_case_id)[:EXAMPLES]
    can_act = "incident_actions" in account(pipeline, user).screens
    related = tuple(desk.related(incident.id))
    alike = {x.id for x, _ in related} | {incident.id}
    # The embedder keeps languages apart: the same problem in another language may score below the floor.
    others = tuple(x for x in desk.list_incidents() if x.status in LIVE and x.id not in alike)
    return IncidentDetail(
        incident=incident, members=tuple(members), examples=tuple(examples),
        timeline=tuple(desk.timeline(incident.id)), related=related, others=others,
        insights=desk.insights(incident.id), can_act=can_act,
        languages={phase: languages(pipeline, incident, members, phase) for phase in PHASES})


def texts_of(langs: list[str] | tuple[str, ...] | None, values: list[str | None]) -> dict[str, str]:
    """The text boxes' contents by language (empty boxes left out)."""
    return {lang: (text or "").strip() for lang, text in zip(langs or (), values, strict=False)
            if (text or "").strip()}


def _lead(pipeline: Pipeline, user: str | None) -> str:
    """The user, if a reviewer or admin (the desk checks the role again); else PermissionDenied."""
    role = role_of(pipeline, user)
    if role not in SCREENS["incident_actions"]:
        article = "an" if role[0] in "aeiou" else "a"
        raise PermissionDenied(f"{user} is {article} {role}: only a reviewer or an admin drafts, approves, "
                               "resolves, dismisses or merges an incident")
    assert user is not None
    return user


def draft_again(pipeline: Pipeline, user: str | None, incident_id: Any, phase: str) -> Incident:
    """Write the phase's texts again for every language of the affected cases (the model translates)."""
    by = _lead(pipeline, user)
    return pipeline.incidents.draft(incident_id_of(incident_id), phase, by=by)


def approve(pipeline: Pipeline, user: str | None, incident_id: Any, phase: str,
            texts: dict[str, str] | None = None) -> QueuedReport:
    """One approval: the phase's texts (as the reviewer edited them) queued, approved, for every case that
    fits; the report says how many, how many had it already, and who was left out and why."""
    by = _lead(pipeline, user)
    return pipeline.incidents.approve(incident_id_of(incident_id), phase, by=by, texts=texts or None)


def resolve(pipeline: Pipeline, user: str | None, incident_id: Any) -> Incident:
    """The problem is fixed: the incident is resolved and its follow-up drafted for approval."""
    by = _lead(pipeline, user)
    return pipeline.incidents.resolve(incident_id_of(incident_id), by=by)


def dismiss(pipeline: Pipeline, user: str | None, incident_id: Any) -> tuple[Incident, list[int]]:
    """Not an incident after all: nothing is sent for it; the cases it held (no draft of their own) are
    drafted one by one into the review queue (the new items' ids)."""
    by = _lead(pipeline, user)
    return pipeline.incidents.dismiss(incident_id_of(incident_id), by=by)


def merge(pipeline: Pipeline, user: str | None, target: Any, source: Any) -> Incident:
    """``source`` is the same problem as ``target``: one incident, the moved cases get its approved reply."""
    by = _lead(pipeline, user)
    if source is None or source == "":
        raise UserError("pick the related incident to merge into this one")
    return pipeline.incidents.merge(incident_id_of(target), incident_id_of(source), by=by)
