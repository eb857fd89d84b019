"""Messages from the platforms: a signed event becomes a case with its thread, a draft, and a private note.

The web server's webhook route calls :meth:`Intake.receive` with the raw request; a mailbox loop calls
:meth:`Intake.poll`. For each message: a delivery taken in before (the same delivery id, or the same message
id) is acknowledged and nothing else happens; otherwise the draft is written with the conversation so far
(``ReviewQueue.thread_for``), stored with its delivery ids in one transaction (``ReviewQueue.take_in``), and
shown to the team inside the platform as a private note. Nothing is ever posted publicly here: the public
reply leaves only after a person approves it, through the publisher (see ``connectors.registry``).

Webhooks are processed before the answer, so a platform that times out redelivers, and the redelivery is
recognised; a message is never lost between an acknowledgement and its case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import httpx

from copilot.connectors.base import Connector, PlatformEvent, WebhookRejected
from copilot.errors import CopilotError
from copilot.incidents.desk import IncidentDesk, Placement
from copilot.queue.records import Case, ReviewItem
from copilot.queue.store import ReviewQueue
from copilot.types import Draft, Inbound, Triage, TriageStage, Turn

log = logging.getLogger(__name__)


class DraftStage(Protocol):
    """What the intake needs of the drafter."""

    def draft(self, inbound: Inbound, *, history: Sequence[Turn] = (), triage: Triage | None = None) -> Draft: ...


def held_draft(inbound: Inbound, triage: Triage, incident_id: int) -> Draft:
    """A message its incident's reply answers: its case is kept with no draft of its own (no model call)."""
    return Draft(text="", channel=inbound.channel, inbound=inbound, triage=triage, cited_ids=(), retrieved_ids=(),
                 confidence=0.0, template="", template_hash="", latency_ms=0.0, status="skipped",
                 flags=(f"incident {incident_id}: answered by the incident's reply",))


@runtime_checkable
class Mailbox(Protocol):
    """A connector that is polled (email) instead of called; it marks a message taken once its case exists."""

    name: str

    def poll(self) -> list[PlatformEvent]: ...

    def mark_taken(self, event: PlatformEvent) -> None: ...


@dataclass(frozen=True)
class IntakeReport:
    """What one webhook request or one poll became."""

    platform: str
    items: tuple[int, ...] = ()  # queue items drafted for review
    cases: tuple[int, ...] = ()  # cases opened or joined (spam included)
    duplicates: int = 0  # deliveries taken in before
    ignored: int = 0  # requests with no message for us (our own posts, private notes, other events)
    note_errors: tuple[str, ...] = ()  # notes the platform did not take (the drafts are in the queue anyway)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def note_text(item: ReviewItem) -> str:
    """The private note with the draft: what a person sees inside the platform before anything is public."""
    if item.crisis_level == "crisis":
        head = f"Crisis: a trained person must answer this (queue item {item.id}). Suggested holding message:"
    elif item.crisis_level == "possible":
        head = f"Possible crisis: a person decides (queue item {item.id}). Suggested holding message:"
    else:
        head = f"Suggested reply, waiting for review (queue item {item.id}):"
    flags = item.draft.get("flags") or []
    tail = "\n\nNotes: " + "; ".join(str(f) for f in flags[:4]) if flags else ""
    return f"{head}\n\n{item.text}{tail}"


class Intake:
    """Takes platform messages into the queue, once each, with their drafts."""

    def __init__(self, queue: ReviewQueue, drafter: DraftStage, connectors: Mapping[str, Connector], *,
                 incidents: IncidentDesk | None = None, triager: TriageStage | None = None) -> None:
        if incidents is not None and triager is None:
            raise ValueError("the incident desk needs the triager: a message is placed before it is drafted")
        self.queue = queue
        self.drafter = drafter
        self.connectors = dict(connectors)
        self.incidents = incidents
        self.triager = triager

    def connector(self, platform: str) -> Connector:
        """The configured connector, or a 404 that says how to configure one."""
        found = self.connectors.get(platform)
        if found is None:
            known = ", ".join(sorted(self.connectors)) or "none"
            raise WebhookRejected(404, f"no {platform} connector is configured (configured: {known}); see "
                                       f"docs/connectors/ for the COPILOT_{platform.upper()}_* settings")
        return found

    def receive(self, platform: str, headers: Mapping[str, str], body: bytes) -> IntakeReport:
        """One webhook request: verified and read by the connector (``WebhookRejected`` if not), then taken in."""
        connector = self.connector(platform)
        events = connector.parse(headers, body)
        if not events:
            return IntakeReport(platform, ignored=1)
        return self.take(connector, events)

    def poll(self, mailbox: Mailbox) -> IntakeReport:
        """One round of a polled connector; each message is marked taken only after its case is stored."""
        connector = self.connector(mailbox.name)
        return self.take(connector, mailbox.poll(), taken=mailbox.mark_taken)

    def take(self, connector: Connector, events: Sequence[PlatformEvent], *,
             taken: Callable[[PlatformEvent], None] | None = None) -> IntakeReport:
        """Draft and store each event once, then post its note.

        With the incident desk, the new messages are triaged and placed in one batch first: one that its
        incident's reply answers is stored with no draft of its own (no model call), and every message is
        recorded for surge detection once its case exists.
        """
        items: list[int] = []
        cases: list[int] = []
        duplicates = 0
        errors: list[str] = []
        fresh: list[tuple[PlatformEvent, list[str]]] = []
        for event in events:
            inbound = event.inbound
            ids = [event.delivery_id] + ([f"message:{inbound.id}"] if inbound.id else [])
            if self.queue.seen_delivery(connector.name, ids):  # no model call for a redelivery
                duplicates += 1
                if taken is not None:
                    taken(event)
            else:
                fresh.append((event, ids))
        inbounds = [event.inbound for event, _ in fresh]
        triages: list[Triage | None] = [None] * len(fresh)
        placements: list[Placement | None] = [None] * len(fresh)
        if self.incidents is not None and self.triager is not None and fresh:
            labelled = self.triager.triage_batch(inbounds)
            triages, placements = list(labelled), list(self.incidents.place(inbounds, labelled))
        stored: list[tuple[Placement, Case]] = []
        for (event, ids), triage, placement in zip(fresh, triages, placements, strict=True):
            inbound = event.inbound
            history = self.queue.history_for(inbound)
            held = placement.incident_id if placement is not None and placement.held else None
            if held is not None and triage is not None and not history:  # a follow-up in a thread is drafted
                draft = held_draft(inbound, triage, held)
            else:
                draft = self.drafter.draft(inbound, history=history, triage=triage)
            result = self.queue.take_in(draft, platform=connector.name, delivery_ids=ids)
            if result.duplicate:
                duplicates += 1
            if result.case is not None:
                cases.append(result.case.id)
                if placement is not None and not result.duplicate:
                    stored.append((placement, result.case))
            if result.item is not None:
                items.append(result.item.id)
                error = self._note(connector, inbound, result.item)
                if error:
                    errors.append(error)
            if taken is not None:
                taken(event)
        if self.incidents is not None and stored:
            try:
                self.incidents.record([p for p, _ in stored], [c for _, c in stored])
            except CopilotError as exc:  # the cases and drafts are stored: detection catches up next time
                log.warning("incident detection skipped for %d case(s): %s", len(stored), exc)
        return IntakeReport(connector.name, tuple(items), tuple(cases), duplicates, 0, tuple(errors))

    @staticmethod
    def _note(connector: Connector, inbound: Inbound, item: ReviewItem) -> str | None:
        try:
            connector.post_note(inbound, note_text(item))
        except (CopilotError, OSError, httpx.HTTPError) as exc:  # the case and draft are stored already
            log.warning("%s did not take the note for item %s: %s", connector.name, item.id, exc)
            return f"item {item.id}: {exc}"
        return None
