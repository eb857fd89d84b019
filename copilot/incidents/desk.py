"""The incident desk: surge detection over the inbound messages, one approved answer for every affected case,
and the follow-up once the problem is fixed.

The intake asks :meth:`IncidentDesk.place` where a new message belongs before drafting it: a message close to
an open incident joins it and, unless it says something the incident's reply does not cover, gets no draft of
its own (the incident's reply answers it); every other message is drafted as usual. :meth:`record` then stores
the vectors and the memberships, queues the approved reply for a late arrival, and now and then runs
:meth:`detect` over the sliding window.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from copilot.compose import PhraseBook
from copilot.config import ChannelProfile, Settings
from copilot.errors import ConflictError, UserError
from copilot.incidents.detect import (
    Point,
    Surge,
    SurgeRules,
    find_surges,
    keywords,
    nearest_centroid,
    normalise,
)
from copilot.incidents.records import PHASES, Incident, IncidentEvent, Member, QueuedReport
from copilot.incidents.replies import (
    OFF_TOPIC_BELOW,
    candidate_sentences,
    current_announcements,
    is_resolution,
    left_out_reason,
    personalise,
    suggest,
)
from copilot.incidents.store import IncidentStore
from copilot.knowledge_book import KnowledgeBook
from copilot.models.embeddings import as_matrix
from copilot.queue.records import Case
from copilot.queue.store import ReviewQueue
from copilot.signature import signature_for
from copilot.triage.features import embedding_text
from copilot.types import Draft, Entry, Inbound, Triage, Turn

ANNOUNCEMENT_MATCH = 0.35  # cosine of an announcement to an incident's centroid for it to be about it
JOIN_GRACE = timedelta(days=2)  # a closed incident still takes late messages (they get the follow-up)
TITLE_MAX = 90


class DraftOne(Protocol):
    """Drafts one message on its own (a held case of a dismissed incident): the drafter's ``draft``."""

    def __call__(self, inbound: Inbound, *, history: Sequence[Turn] = ()) -> Draft: ...


@dataclass(frozen=True)
class Placement:
    """Where a new message belongs: an incident (and whether its reply fits it), or nowhere yet."""

    vector: np.ndarray | None  # None: spam, which neither joins nor counts
    incident_id: int | None = None
    similarity: float = 0.0
    left_out: str | None = None

    @property
    def held(self) -> bool:
        """Answered by its incident's reply: no draft of its own."""
        return self.incident_id is not None and self.left_out is None


@dataclass(frozen=True)
class RecordReport:
    """What :meth:`IncidentDesk.record` did."""

    joined: int = 0
    queued: tuple[int, ...] = ()
    detected: tuple[Incident, ...] = ()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _title(text: str) -> str:
    first = " ".join(text.split())
    for stop in (". ", "! ", "? ", "\n"):
        first = first.split(stop)[0]
    first = first.strip(" .!?")
    return first if len(first) <= TITLE_MAX else first[: TITLE_MAX - 1].rsplit(" ", 1)[0] + "\u2026"


class IncidentDesk:
    """Incidents over one queue (see the module's docstring)."""

    def __init__(self, queue: ReviewQueue, embedder: Embeddings | Callable[[], Embeddings], *,
                 book: KnowledgeBook, phrases: PhraseBook, draft_one: DraftOne | None = None,
                 translate: Callable[[str, str, str], str | list[str]] | None = None,
                 rules: SurgeRules | None = None, clock: Callable[[], datetime] | None = None,
                 detect_every_s: float = 10.0) -> None:
        """``embedder`` may be a function that builds it (the embedder loads only when a message needs it);
        ``draft_one`` and ``translate`` are the drafter's, called only when a held case is drafted or a text
        translated, so listing, approving and resolving never load a model."""
        self.queue = queue
        self.store = IncidentStore(queue)
        self._embedder = embedder
        self.book = book
        self.phrases = phrases
        self.draft_one = draft_one
        self.translate = translate
        self.rules = rules or SurgeRules()
        self.clock = clock or queue.clock
        self.detect_every_s = detect_every_s
        self._last_detect = float("-inf")
        self._lock = threading.Lock()
        self._entry_cache: dict[str, np.ndarray] = {}

    @property
    def settings(self) -> Settings:
        return self.queue.settings

    @property
    def embedder(self) -> Embeddings:
        if not isinstance(self._embedder, Embeddings):
            self._embedder = self._embedder()
        return self._embedder

    def signature(self, language: str) -> str:
        return signature_for(self.settings, self.book, self.phrases, language)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return normalise(as_matrix(self.embedder, [embedding_text(t) for t in texts]))

    # Messages in ---------------------------------------------------------------------------------

    def place(self, inbounds: Sequence[Inbound], triages: Sequence[Triage]) -> list[Placement]:
        """Where each new message belongs (before it is drafted): one embedding batch, one pass over the
        open incidents, and one more batch for the sentences that might be a second problem."""
        keep = [i for i, t in enumerate(triages) if t.kind != "spam"]
        out: list[Placement] = [Placement(None) for _ in inbounds]
        if not keep:
            return out
        vectors = self._embed([inbounds[i].text for i in keep])
        _, centroids, owners = self.store.centroids(updated_since=self.clock() - JOIN_GRACE)
        matches = nearest_centroid(vectors, centroids, self.rules.join_similarity)
        reasons: dict[int, str | None] = {}
        checks: list[tuple[int, str, np.ndarray]] = []
        for row, i in enumerate(keep):
            match = matches[row]
            if match is None:
                continue
            reasons[i] = left_out_reason(inbounds[i].text, triages[i].to_dict())
            if reasons[i] is None:
                checks += [(i, s, centroids[match[0]]) for s in candidate_sentences(inbounds[i].text)]
        if checks:
            sims = (self._embed([s for _, s, _ in checks]) * np.stack([c for _, _, c in checks])).sum(axis=1)
            for (i, sentence, _), sim in zip(checks, sims, strict=True):
                if sim < OFF_TOPIC_BELOW and reasons.get(i) is None:
                    reasons[i] = left_out_reason(inbounds[i].text, triages[i].to_dict(), off_topic=sentence)
        for row, i in enumerate(keep):
            match = matches[row]
            out[i] = Placement(vectors[row]) if match is None else Placement(
                vectors[row], owners[match[0]], match[1], reasons.get(i))
        return out

    def record(self, placements: Sequence[Placement], cases: Sequence[Case | None], *,
               detect: bool | None = None) -> RecordReport:
        """After the cases are stored: their vectors, the memberships, the approved reply for a late arrival,
        and (every ``detect_every_s``, or when ``detect``) a detection pass over the window."""
        now = self.clock()
        points = [Point(c.id, c.received_at, p.vector) for p, c in zip(placements, cases, strict=True)
                  if c is not None and p.vector is not None]
        self.store.save_vectors(points)
        by_incident: dict[int, list[tuple[int, float, datetime, str | None]]] = {}
        for p, c in zip(placements, cases, strict=True):
            if c is not None and p.incident_id is not None:
                by_incident.setdefault(p.incident_id, []).append((c.id, p.similarity, c.received_at, p.left_out))
        joined = 0
        queued: list[int] = []
        for incident_id, rows in by_incident.items():
            joined += self.store.join(incident_id, rows, now)
            queued += self._late(incident_id, [r[0] for r in rows if r[3] is None])
        detected: tuple[Incident, ...] = ()
        due = time.monotonic() - self._last_detect >= self.detect_every_s
        if detect or (detect is None and due and points):
            detected = tuple(self.detect())
        return RecordReport(joined, tuple(queued), detected)

    def _late(self, incident_id: int, case_ids: Sequence[int]) -> list[int]:
        """The approved reply (or, once the follow-up is approved, the follow-up) for cases that joined late."""
        if not case_ids:
            return []
        incident = self.store.get(incident_id)
        phase = "followup" if incident.approved("followup") else "reply" if incident.approved("reply") else None
        if phase is None:
            return []
        by = incident.followup_approved_by if phase == "followup" else incident.reply_approved_by
        plan = self._plan(incident, phase, self.store.members(incident_id, case_ids=case_ids))
        return list(self.store.queue_replies(incident_id, phase, plan, by=by or "copilot", now=self.clock(),
                                             first=False).queued)

    # Detection -----------------------------------------------------------------------------------

    def detect(self) -> list[Incident]:
        """New incidents among the window's messages that belong to none yet."""
        with self._lock:
            self._last_detect = time.monotonic()
            now = self.clock()
            start = now - timedelta(seconds=self.rules.window_s)
            points = self.store.window(start)
            if len(points) < self.rules.min_members:
                return []
            base_start = start - timedelta(seconds=self.rules.baseline_s)
            baseline = self.store.baseline(base_start, start)
            oldest = self.store.oldest_vector()
            span = (start - max(base_start, oldest)).total_seconds() if oldest and oldest < start else 0.0
            changed = []
            for surge in find_surges(points, baseline, self.rules, baseline_span_s=span):
                changed.append(self._gather(surge, now))
            if changed:
                self.store.prune_vectors(base_start)
            return changed

    def _gather(self, surge: Surge, now: datetime) -> Incident:
        """A surge close to an incident's centroid is more of that incident (one more centroid, its cases
        joined, the approved reply queued for them); else it is a new incident."""
        _, centroids, owners = self.store.centroids(updated_since=now - JOIN_GRACE)
        match = nearest_centroid(surge.centroid[None, :], centroids, self.rules.merge_similarity)[0]
        if match is None:
            return self._create(surge.case_ids, surge.similarities, surge.centroid, surge.medoid, surge.expected,
                                now)
        incident_id = owners[match[0]]
        joined, _ = self._members_of(surge.case_ids, surge.similarities, surge.centroid)
        self.store.add_centroid(incident_id, surge.centroid, now)
        self.store.join(incident_id, joined, now)
        self._late(incident_id, [j[0] for j in joined if j[3] is None])
        return self.store.get(incident_id)

    def _members_of(self, case_ids: Sequence[int], sims: Sequence[float], centroid: np.ndarray
                    ) -> tuple[list[tuple[int, float, datetime, str | None]], dict[int, Case]]:
        """The surge's cases with why each needs its own reply (None: the incident's reply fits it), and the
        cases themselves."""
        cases = {c.id: c for c in self.store.cases(case_ids)}
        checks = [(cid, s) for cid in case_ids if cid in cases for s in candidate_sentences(cases[cid].text)]
        off: dict[int, str] = {}
        if checks:
            sims_off = self._embed([s for _, s in checks]) @ centroid
            for (cid, sentence), sim in zip(checks, sims_off, strict=True):
                if sim < OFF_TOPIC_BELOW:
                    off.setdefault(cid, sentence)
        joined = [(cid, float(sim), cases[cid].received_at,
                   left_out_reason(cases[cid].text, cases[cid].triage, off_topic=off.get(cid)))
                  for cid, sim in zip(case_ids, sims, strict=True) if cid in cases]
        return joined, cases

    def _create(self, case_ids: Sequence[int], sims: Sequence[float], centroid: np.ndarray, medoid: int,
                expected: float, now: datetime) -> Incident:
        joined, cases = self._members_of(case_ids, sims, centroid)
        first_seen = min(j[2] for j in joined)
        announcement = self._announcement(centroid[None, :], first_seen, resolution=False)
        texts = [cases[j[0]].text for j in joined[:200]]
        title = announcement.title if announcement is not None else _title(
            cases[medoid].text if medoid in cases else texts[0])
        incident = self.store.create(title=title, keywords=keywords(texts), centroid=centroid, expected=expected,
                                     example_case_id=medoid, joined=joined,
                                     announcement_id=announcement.id if announcement else None, now=now)
        languages = [str(cases[cid].triage.get("language") or "en") for cid, _, _, why in joined if why is None]
        suggestion = suggest("reply", languages, self.phrases, announcement=announcement, translate=None,
                             kb_language=self.settings.kb_language)
        return self.store.save_texts(incident.id, "reply", suggestion.texts, by="copilot", now=now,
                                     announcement_id=suggestion.announcement_id, system=True)

    def _announcement(self, centroids: np.ndarray, since: datetime, *, resolution: bool) -> Any:
        entries = [e for e in current_announcements(self.book.entries("announcement"), since)
                   if not resolution or is_resolution(e)]
        if not entries:
            return None
        sims = (self._entry_vectors(entries) @ np.atleast_2d(centroids).T).max(axis=1)
        best = int(np.argmax(sims))
        return entries[best] if sims[best] >= ANNOUNCEMENT_MATCH else None

    def _entry_vectors(self, entries: Sequence[Entry]) -> np.ndarray:
        """The announcements' vectors, embedded once per text (every detection, draft and announcement check
        compares with them)."""
        missing = [e.text for e in entries if e.text not in self._entry_cache]
        if missing:
            self._entry_cache.update(zip(missing, self._embed(missing), strict=True))
        return np.stack([self._entry_cache[e.text] for e in entries])

    # A reviewer's steps --------------------------------------------------------------------------

    def list_incidents(self, status: str | None = None) -> list[Incident]:
        return self.store.list_incidents(status)

    def get(self, incident_id: int) -> Incident:
        return self.store.get(incident_id)

    def members(self, incident_id: int, *, limit: int | None = None) -> list[Member]:
        return self.store.members(incident_id, limit=limit)

    def timeline(self, incident_id: int) -> list[IncidentEvent]:
        return self.store.timeline(incident_id)

    def draft(self, incident_id: int, phase: str, *, by: str, system: bool = False) -> Incident:
        """Write the phase's texts again for every language the affected cases use, translating the
        announcement's facts with the model (the reviewer reads each before approving)."""
        incident = self.store.get(incident_id)
        _check_phase(phase)
        if phase == "followup" and incident.status == "open":
            raise ConflictError(f"incident {incident_id} is still open: resolve it before its follow-up")
        since = incident.first_seen
        centroid = self.store.centroid(incident_id)
        announcement_id = incident.announcement_id if phase == "reply" else incident.followup_announcement_id
        announcement = (self.book.entry(announcement_id) if announcement_id else
                        self._announcement(centroid, since, resolution=phase == "followup"))
        languages = [m.language for m in self.store.members(incident_id) if m.left_out is None]
        suggestion = suggest(phase, languages, self.phrases, announcement=announcement,
                             translate=self.translate, kb_language=self.settings.kb_language)
        return self.store.save_texts(incident_id, phase, suggestion.texts, by=by, now=self.clock(),
                                     announcement_id=suggestion.announcement_id, system=system)

    def save(self, incident_id: int, phase: str, texts: dict[str, str], *, by: str) -> Incident:
        """A reviewer's own wording of the phase's texts (per language)."""
        _check_phase(phase)
        clean = {str(k).strip(): str(v).strip() for k, v in texts.items() if str(v).strip()}
        if not clean:
            raise UserError("the texts are empty: write the reply in at least one language")
        return self.store.save_texts(incident_id, phase, clean, by=by, now=self.clock())

    def approve(self, incident_id: int, phase: str, *, by: str, texts: dict[str, str] | None = None
                ) -> QueuedReport:
        """One approval: the phase's reply, personalised, queued (approved) for every affected case that fits
        it, exactly once each; the others are listed with the reason."""
        _check_phase(phase)
        if texts:
            self.queue.require(by, "approve")  # an agent may write texts, but not change them on the way to approving
            self.save(incident_id, phase, texts, by=by)
        incident = self.store.get(incident_id)
        if phase == "followup" and incident.status == "open":
            raise ConflictError(f"incident {incident_id} is still open: resolve it before its follow-up")
        if incident.status in ("dismissed", "merged"):
            raise ConflictError(f"incident {incident_id} was {incident.status}; nothing was queued")
        if not incident.texts(phase):
            raise UserError(f"incident {incident_id} has no {phase} text yet: draft or write one first")
        plan = self._plan(incident, phase, self.store.members(incident_id))
        return self.store.queue_replies(incident_id, phase, plan, by=by, now=self.clock(), first=True)

    def _plan(self, incident: Incident, phase: str, members: Sequence[Member]) -> list[tuple[int, str | None, str]]:
        texts = incident.texts(phase)
        plan: list[tuple[int, str | None, str]] = []
        for m in members:
            if m.left_out is not None:
                plan.append((m.case_id, None, m.left_out))
                continue
            if phase == "reply" and m.followup_item_id is not None:  # a late arrival told it is fixed already
                plan.append((m.case_id, None, "it was sent the follow-up: the problem is fixed"))
                continue
            profile: ChannelProfile = self.settings.channel(m.channel)
            text = personalise(texts, language=m.language, author=m.author, profile=profile,
                               phrases=self.phrases, signature=self.signature(m.language))
            plan.append((m.case_id, text, f"no approved text in its language ({m.language})"))
        return plan

    def resolve(self, incident_id: int, *, by: str, announcement_id: str | None = None) -> Incident:
        """The problem is fixed: the incident is resolved and its follow-up drafted for approval."""
        self.store.resolve(incident_id, by=by, now=self.clock(), announcement_id=announcement_id)
        return self.draft(incident_id, "followup", by=by, system=True)  # the resolver's right was checked

    def dismiss(self, incident_id: int, *, by: str) -> tuple[Incident, list[int]]:
        """Not an incident after all: nothing is sent for it, and each case it held (no draft of its own) is
        drafted now, one by one; the new items' ids."""
        incident = self.store.dismiss(incident_id, by=by, now=self.clock())
        drafted = []
        for case in self.store.held_cases(incident_id):
            inbound = Inbound(text=case.text, channel=case.channel, author=case.author, id=case.inbound_id,
                              conversation=case.conversation)
            if self.draft_one is None:
                raise UserError("this desk has no drafter: dismiss the incident from the web app or the CLI")
            draft = self.draft_one(inbound, history=self.queue.history_for(inbound))
            if draft.status != "skipped":
                drafted.append(self.queue.submit(draft, by=by).id)
        return incident, drafted

    def merge(self, target: int, source: int, *, by: str) -> Incident:
        """``source`` is the same problem as ``target`` (the embedder keeps languages apart): one incident.
        The cases that moved get ``target``'s approved reply, if it has one."""
        moved = [m.case_id for m in self.store.members(source) if m.left_out is None]
        incident = self.store.merge(target, source, by=by, now=self.clock())
        self._late(target, moved)
        return self.store.get(incident.id)

    def related(self, incident_id: int, *, floor: float = 0.25) -> list[tuple[Incident, float]]:
        """Other live incidents that may be the same problem (overlapping in time, somewhat alike): what a
        reviewer considers merging."""
        incident = self.store.get(incident_id)
        mine = self.store.centroid(incident_id)
        found, centroids, owners = self.store.centroids(updated_since=self.clock() - JOIN_GRACE)
        if not found:
            return []
        sims = (normalise(centroids) @ normalise(mine).T).max(axis=1)
        best: dict[int, float] = {}
        for owner, sim in zip(owners, sims, strict=True):
            best[owner] = max(best.get(owner, -1.0), float(sim))
        window = timedelta(seconds=self.rules.window_s)
        return sorted(((x, best[x.id]) for x in found if x.id != incident_id and best.get(x.id, 0.0) >= floor
                       and x.first_seen <= incident.last_seen + window and incident.first_seen <= x.last_seen + window),
                      key=lambda pair: -pair[1])

    def insights(self, incident_id: int) -> dict[str, Any]:
        """The incident for the report: volume over time, time to first response, sentiment before and after
        the first reply was posted, and the share of affected customers answered."""
        incident = self.store.get(incident_id)
        members = self.store.members(incident_id)
        posted = self.queue.posted_replies([m.case_id for m in members])
        first_post: dict[int, datetime] = {}
        for item in posted:
            if item.case_id is not None and item.posted_at is not None:
                first_post[item.case_id] = min(first_post.get(item.case_id, item.posted_at), item.posted_at)
        arrivals = [m.joined_at for m in members]
        start = min(arrivals) if arrivals else incident.first_seen
        span = ((max(arrivals) - start).total_seconds() if arrivals else 0.0)
        size = _bucket_minutes(span)
        volume: dict[str, int] = {}
        for at in arrivals:
            slot = start + timedelta(minutes=size * int((at - start).total_seconds() // (size * 60)))
            key = slot.strftime("%Y-%m-%d %H:%M")
            volume[key] = volume.get(key, 0) + 1
        waits = [(first_post[m.case_id] - m.joined_at).total_seconds() / 60 for m in members if m.case_id in first_post]
        replied_from = min(first_post.values()) if first_post else None
        before = [float(m.triage.get("sentiment_score") or 0.0) for m in members
                  if replied_from is None or m.joined_at < replied_from]
        after = [float(m.triage.get("sentiment_score") or 0.0) for m in members
                 if replied_from is not None and m.joined_at >= replied_from]
        answered = sum(1 for m in members if m.case_id in first_post)
        return {
            "incident": incident.to_dict(), "bucket_minutes": size, "volume": volume,
            "affected": len(members), "left_out": sum(1 for m in members if m.left_out),
            "answered": answered, "answered_share": round(answered / len(members), 3) if members else None,
            "first_response_minutes": {"median": _percentile(waits, 0.5), "p90": _percentile(waits, 0.9),
                                       "n": len(waits)},
            "sentiment_before": round(statistics.fmean(before), 3) if before else None,
            "sentiment_after": round(statistics.fmean(after), 3) if after else None,
            "messages_before_first_reply": len(before), "messages_after_first_reply": len(after),
        }

    def check_announcements(self) -> list[Incident]:
        """Open incidents that a new announcement says are over: resolved, with the follow-up drafted from it."""
        resolved = []
        for incident in self.store.list_incidents("open"):
            centroid = self.store.centroid(incident.id)
            entry = self._announcement(centroid, incident.first_seen, resolution=True)
            if entry is not None:
                resolved.append(self.resolve(incident.id, by=f"announcement:{entry.id}", announcement_id=entry.id))
        return resolved


def _bucket_minutes(span_s: float) -> int:
    """A bucket size that draws the volume in about twenty bars."""
    for minutes in (1, 5, 15, 30, 60, 180, 360, 1440):
        if span_s / (minutes * 60) <= 24:
            return minutes
    return 1440


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def _check_phase(phase: str) -> None:
    if phase not in PHASES:
        raise UserError(f"unknown phase {phase!r}: {' or '.join(PHASES)}")
