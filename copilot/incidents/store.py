"""The incident store: incidents, their affected cases, the replies queued for them, their timelines, and the
message vectors surge detection reads. It owns the ``incident_*`` tables and is the only code that runs SQL on
them. The tables live in the queue's database (migration ``0004``), so an incident's replies are queued in the
same transaction that records them: one reply per case and phase, however often an approval is repeated or
two reviewers approve at once (a unique key, checked inside the transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from copilot.errors import ConflictError, NotFoundError, UserError
from copilot.incidents.detect import Point
from copilot.incidents.records import Incident, IncidentEvent, Member, QueuedReport
from copilot.incidents.tables import events, incidents, members, replies, vectors
from copilot.queue import tables, users
from copilot.queue.db import reading, writing
from copilot.queue.records import Case, crisis_level_of
from copilot.queue.rows import apply_action, case_from_row, load_row, new_id, record_event, refresh_case
from copilot.queue.store import ReviewQueue

CHUNK = 400  # cases queued per transaction


def _vector(blob: bytes, dtype: Any = np.float16) -> np.ndarray:
    return np.frombuffer(blob, dtype=dtype).astype(np.float32)


def _centroids(row: Any) -> np.ndarray:
    return np.frombuffer(bytes(row["centroids"]), dtype=np.float32).reshape(-1, int(row["dims"]))


def _incident(row: Any, counts: dict[int, tuple[int, int]]) -> Incident:
    kept, left = counts.get(int(row["id"]), (0, 0))
    return Incident(
        id=row["id"], title=row["title"], status=row["status"], keywords=tuple(row["keywords"] or ()),
        first_seen=row["first_seen"], last_seen=row["last_seen"], detected_at=row["detected_at"], members=kept,
        left_out=left, expected=float(row["expected"]), example_case_id=row["example_case_id"],
        announcement_id=row["announcement_id"], reply=dict(row["reply"] or {}),
        reply_drafted_by=row["reply_drafted_by"], reply_approved_by=row["reply_approved_by"],
        reply_approved_at=row["reply_approved_at"], followup=dict(row["followup"] or {}),
        followup_announcement_id=row["followup_announcement_id"],
        followup_approved_by=row["followup_approved_by"], followup_approved_at=row["followup_approved_at"],
        resolved_by=row["resolved_by"], resolved_at=row["resolved_at"], merged_into=row["merged_into"],
    )


def _counts(conn: Connection, ids: Sequence[int] | None = None) -> dict[int, tuple[int, int]]:
    m = members.c
    query = select(m.incident_id, func.count().label("n"), func.count(m.left_out).label("left")).group_by(
        m.incident_id)
    if ids is not None:
        query = query.where(m.incident_id.in_(list(ids)))
    return {int(r.incident_id): (int(r.n) - int(r.left), int(r.left)) for r in conn.execute(query)}


def _event(conn: Connection, incident_id: int, action: str, actor: str, now: datetime, **detail: Any) -> None:
    conn.execute(insert(events).values(incident_id=incident_id, at=now, action=action, actor=actor, detail=detail))


class IncidentStore:
    """Incidents in the queue's database (see the module's docstring)."""

    def __init__(self, queue: ReviewQueue) -> None:
        self.queue = queue
        self.engine = queue.engine

    # Vectors -------------------------------------------------------------------------------------

    def save_vectors(self, points: Iterable[Point]) -> None:
        """Remember each message's vector for detection (once per case)."""
        rows = [{"case_id": p.case_id, "at": p.at, "vector": np.asarray(p.vector, dtype=np.float16).tobytes()}
                for p in points]
        if not rows:
            return
        with writing(self.engine) as conn:
            known = set(conn.execute(select(vectors.c.case_id).where(
                vectors.c.case_id.in_([r["case_id"] for r in rows]))).scalars())
            fresh = [r for r in rows if r["case_id"] not in known]
            if fresh:
                conn.execute(insert(vectors), fresh)

    def window(self, since: datetime) -> list[Point]:
        """The vectors of messages since ``since`` that belong to no incident."""
        v = vectors.c
        query = (select(v.case_id, v.at, v.vector).where(v.at >= since)
                 .where(~v.case_id.in_(select(members.c.case_id))).order_by(v.at))
        with reading(self.engine) as conn:
            return [Point(int(r.case_id), r.at, _vector(r.vector)) for r in conn.execute(query)]

    def baseline(self, since: datetime, until: datetime) -> np.ndarray:
        """The vectors of every message between ``since`` and ``until`` (the topic rates' baseline)."""
        v = vectors.c
        with reading(self.engine) as conn:
            blobs = list(conn.execute(select(v.vector).where(v.at >= since, v.at < until)).scalars())
        return np.stack([_vector(b) for b in blobs]) if blobs else np.zeros((0, 0), dtype=np.float32)

    def prune_vectors(self, before: datetime) -> int:
        """Forget the vectors older than the baseline needs."""
        with writing(self.engine) as conn:
            return int(conn.execute(delete(vectors).where(vectors.c.at < before)).rowcount or 0)

    # Incidents -----------------------------------------------------------------------------------

    def create(self, *, title: str, keywords: Sequence[str], centroid: np.ndarray, expected: float,
               example_case_id: int | None, joined: Sequence[tuple[int, float, datetime, str | None]],
               announcement_id: str | None, now: datetime) -> Incident:
        """A new incident with its first affected cases (``(case id, cosine, arrived, left out why)``)."""
        if not joined:
            raise UserError("an incident needs at least one affected case")
        first = min(j[2] for j in joined)
        last = max(j[2] for j in joined)
        with writing(self.engine) as conn:
            incident_id = new_id(conn.execute(insert(incidents).values(
                title=title, status="open", keywords=list(keywords),
                centroids=np.asarray(centroid, dtype=np.float32).tobytes(), dims=int(np.asarray(centroid).size), first_seen=first, last_seen=last,
                detected_at=now, expected=expected, example_case_id=example_case_id, announcement_id=announcement_id,
                reply={}, followup={}, updated_at=now)))
            added = self._add_members(conn, incident_id, joined, now)
            _event(conn, incident_id, "detected", "copilot", now, messages=added, expected=round(expected, 2),
                   announcement=announcement_id)
            return self._get(conn, incident_id)

    def join(self, incident_id: int, joined: Sequence[tuple[int, float, datetime, str | None]], now: datetime
             ) -> int:
        """Cases that arrived later join the incident (a case already in one stays where it is)."""
        if not joined:
            return 0
        with writing(self.engine) as conn:
            return self._add_members(conn, incident_id, joined, now)

    @staticmethod
    def _add_members(conn: Connection, incident_id: int, joined: Sequence[tuple[int, float, datetime, str | None]],
                     now: datetime) -> int:
        ids = [j[0] for j in joined]
        known = set(conn.execute(select(members.c.case_id).where(members.c.case_id.in_(ids))).scalars())
        fresh = [(c, s, at, why) for c, s, at, why in joined if c not in known]
        if fresh:
            conn.execute(insert(members), [{"incident_id": incident_id, "case_id": c, "similarity": s, "joined_at": at,
                                            "left_out": why} for c, s, at, why in fresh])
            last = max(at for _, _, at, _ in fresh)
            i = incidents.c
            current = conn.execute(select(i.last_seen).where(i.id == incident_id)).scalar_one()
            conn.execute(update(incidents).where(i.id == incident_id).values(
                last_seen=max(current, last), updated_at=now))
        return len(fresh)

    def get(self, incident_id: int) -> Incident:
        with reading(self.engine) as conn:
            return self._get(conn, incident_id)

    @staticmethod
    def _get(conn: Connection, incident_id: int) -> Incident:
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no incident {incident_id}: `copilot incidents list` shows them")
        return _incident(row, _counts(conn, [incident_id]))

    def list_incidents(self, status: str | None = None, limit: int = 100) -> list[Incident]:
        """Incidents, newest first (``status``: only those)."""
        query = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(incidents.c.status == status)
        with reading(self.engine) as conn:
            rows = list(conn.execute(query).mappings())
            counts = _counts(conn, [r["id"] for r in rows])
        return [_incident(r, counts) for r in rows]

    def centroids(self, *, updated_since: datetime) -> tuple[list[Incident], np.ndarray, list[int]]:
        """The incidents a new message may join (open or resolved, or closed since ``updated_since``; never
        dismissed or merged), their centroids as rows, and which incident owns each row."""
        i = incidents.c
        query = (select(incidents).where(i.status.in_(("open", "resolved", "closed")))
                 .where((i.status != "closed") | (i.updated_at >= updated_since)).order_by(i.id))
        with reading(self.engine) as conn:
            rows = list(conn.execute(query).mappings())
            counts = _counts(conn, [r["id"] for r in rows])
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32), []
        blocks = [_centroids(r) for r in rows]
        owners = [int(r["id"]) for r, block in zip(rows, blocks, strict=True) for _ in range(len(block))]
        return [_incident(r, counts) for r in rows], np.vstack(blocks), owners

    def add_centroid(self, incident_id: int, centroid: np.ndarray, now: datetime) -> None:
        """One more group of messages about this incident (another language, another wording)."""
        i = incidents.c
        with writing(self.engine) as conn:
            row = conn.execute(select(i.centroids, i.dims).where(i.id == incident_id)).first()
            if row is None:
                raise NotFoundError(f"no incident {incident_id}: `copilot incidents list` shows them")
            grown = bytes(row.centroids) + np.asarray(centroid, dtype=np.float32).tobytes()
            conn.execute(update(incidents).where(i.id == incident_id).values(centroids=grown, updated_at=now))

    def merge(self, target: int, source: int, *, by: str, now: datetime) -> Incident:
        """``source`` is the same problem as ``target``: its cases and centroids move over, and it is closed as
        merged. Refused once either has sent a reply the other has not (a case would be answered twice)."""
        if target == source:
            raise UserError("an incident cannot be merged into itself")
        i = incidents.c
        with writing(self.engine) as conn:
            users.require(conn, by, "approve")
            into, src = self._get(conn, target), self._get(conn, source)
            for incident in (into, src):
                if incident.status in ("dismissed", "merged"):
                    raise ConflictError(f"incident {incident.id} is {incident.status}; nothing was merged")
            if src.reply_approved_at is not None:
                raise ConflictError(f"incident {source}'s reply was approved already: merge the other way round "
                                    f"(`copilot incidents merge {source} {target}`), or keep both")
            rows = {r.id: r for r in conn.execute(select(i.id, i.centroids, i.first_seen, i.last_seen)
                                                  .where(i.id.in_((target, source))))}
            conn.execute(update(members).where(members.c.incident_id == source).values(incident_id=target))
            conn.execute(update(incidents).where(i.id == target).values(
                centroids=bytes(rows[target].centroids) + bytes(rows[source].centroids),
                first_seen=min(rows[target].first_seen, rows[source].first_seen),
                last_seen=max(rows[target].last_seen, rows[source].last_seen), updated_at=now))
            conn.execute(update(incidents).where(i.id == source).values(status="merged", merged_into=target,
                                                                         updated_at=now))
            _event(conn, target, "merged", by, now, incident=source)
            _event(conn, source, "merged_into", by, now, incident=target)
            return self._get(conn, target)

    def members(self, incident_id: int, *, limit: int | None = None, case_ids: Sequence[int] | None = None
                ) -> list[Member]:
        """The incident's affected cases (``case_ids``: only those), in the order they arrived, with what each
        was sent."""
        m, c = members.c, tables.cases.c
        query = (select(m.incident_id, m.case_id, m.similarity, m.joined_at, m.left_out, c.channel, c.author,
                        c.text, c.triage, c.inbound_id, c.status.label("case_status"))
                 .join(tables.cases, tables.cases.c.id == m.case_id)
                 .where(m.incident_id == incident_id).order_by(m.joined_at, m.case_id))
        sent_query = select(replies.c.case_id, replies.c.phase, replies.c.item_id).where(
            replies.c.incident_id == incident_id)
        if case_ids is not None:
            query = query.where(m.case_id.in_(list(case_ids)))
            sent_query = sent_query.where(replies.c.case_id.in_(list(case_ids)))
        if limit is not None:
            query = query.limit(limit)
        with reading(self.engine) as conn:
            rows = list(conn.execute(query).mappings())
            sent = {(int(r.case_id), r.phase): int(r.item_id) for r in conn.execute(sent_query)}
        return [Member(incident_id=r["incident_id"], case_id=r["case_id"], similarity=float(r["similarity"]),
                       joined_at=r["joined_at"], left_out=r["left_out"], channel=r["channel"], author=r["author"],
                       text=r["text"], language=str((r["triage"] or {}).get("language") or "en"),
                       case_status=r["case_status"], triage=dict(r["triage"] or {}), inbound_id=r["inbound_id"],
                       reply_item_id=sent.get((int(r["case_id"]), "reply")),
                       followup_item_id=sent.get((int(r["case_id"]), "followup"))) for r in rows]

    def incident_of(self, case_id: int) -> int | None:
        with reading(self.engine) as conn:
            found = conn.execute(select(members.c.incident_id).where(members.c.case_id == case_id)).first()
        return int(found.incident_id) if found else None

    def centroid(self, incident_id: int) -> np.ndarray:
        """The incident's centroids, one row per group of messages it gathered."""
        with reading(self.engine) as conn:
            row = conn.execute(select(incidents.c.centroids, incidents.c.dims)
                               .where(incidents.c.id == incident_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no incident {incident_id}: `copilot incidents list` shows them")
        return _centroids(row)

    def cases(self, case_ids: Sequence[int]) -> list[Case]:
        """The cases with these ids (any order; unknown ids left out)."""
        found: list[Case] = []
        with reading(self.engine) as conn:
            for start in range(0, len(case_ids), 900):
                chunk = list(case_ids[start:start + 900])
                found += [case_from_row(r) for r in conn.execute(
                    select(tables.cases).where(tables.cases.c.id.in_(chunk))).mappings()]
        return found

    def held_cases(self, incident_id: int) -> list[Case]:
        """The incident's cases that have no queue item at all (held for the incident's reply)."""
        with_items = select(tables.items.c.case_id).where(tables.items.c.case_id.is_not(None))
        with reading(self.engine) as conn:
            ids = list(conn.execute(select(members.c.case_id).where(
                members.c.incident_id == incident_id, ~members.c.case_id.in_(with_items))).scalars())
        return self.cases(ids)

    def oldest_vector(self) -> datetime | None:
        with reading(self.engine) as conn:
            return conn.execute(select(func.min(vectors.c.at))).scalar()

    def timeline(self, incident_id: int) -> list[IncidentEvent]:
        e = events.c
        with reading(self.engine) as conn:
            rows = conn.execute(select(events).where(e.incident_id == incident_id).order_by(e.id)).mappings()
            return [IncidentEvent(r["at"], r["action"], r["actor"], dict(r["detail"] or {})) for r in rows]

    def arrivals(self, incident_id: int) -> list[datetime]:
        """When each affected case's message arrived (for the volume over time)."""
        with reading(self.engine) as conn:
            return list(conn.execute(select(members.c.joined_at).where(members.c.incident_id == incident_id)
                                     .order_by(members.c.joined_at)).scalars())

    # Changes -------------------------------------------------------------------------------------

    def save_texts(self, incident_id: int, phase: str, texts: dict[str, str], *, by: str, now: datetime,
                   announcement_id: str | None = None, system: bool = False) -> Incident:
        """The reply (or follow-up) a reviewer will approve, per language; changes nothing once approved.
        ``system``: written by the product itself (the suggestion at detection), so no user role is checked."""
        i = incidents.c
        with writing(self.engine) as conn:
            if not system:
                users.require(conn, by, "edit")
            current = self._get(conn, incident_id)
            if current.status in ("dismissed", "merged"):
                raise ConflictError(f"incident {incident_id} is {current.status}; nothing was changed")
            if current.approved(phase):  # approved texts stay as they were sent; a new language may be added
                sent = current.texts(phase)
                changed = sorted(lang for lang, text in texts.items() if lang in sent and sent[lang] != text)
                if changed:
                    raise ConflictError(f"incident {incident_id}'s {_name(phase)} was approved already in "
                                        f"{', '.join(changed)}; only a language it lacks can be added")
                texts = {**sent, **texts}
            values: dict[str, Any] = {phase: dict(texts), "updated_at": now}
            if phase == "reply":
                values["reply_drafted_by"] = by
            if announcement_id is not None:
                values["announcement_id" if phase == "reply" else "followup_announcement_id"] = announcement_id
            conn.execute(update(incidents).where(i.id == incident_id).values(**values))
            _event(conn, incident_id, f"{phase}_drafted", by, now, languages=sorted(texts))
            return self._get(conn, incident_id)

    def resolve(self, incident_id: int, *, by: str, now: datetime, announcement_id: str | None = None) -> Incident:
        """Mark the incident fixed: the follow-up is next."""
        i = incidents.c
        with writing(self.engine) as conn:
            if not by.startswith("announcement:"):
                users.require(conn, by, "approve")
            current = self._get(conn, incident_id)
            if current.status != "open":
                raise ConflictError(f"incident {incident_id} is {current.status} already")
            conn.execute(update(incidents).where(i.id == incident_id, i.status == "open").values(
                status="resolved", resolved_by=by, resolved_at=now, updated_at=now,
                followup_announcement_id=announcement_id))
            _event(conn, incident_id, "resolved", by, now, announcement=announcement_id)
            return self._get(conn, incident_id)

    def dismiss(self, incident_id: int, *, by: str, now: datetime) -> Incident:
        """Not an incident after all: nothing is queued for it from now on."""
        i = incidents.c
        with writing(self.engine) as conn:
            users.require(conn, by, "reject")
            current = self._get(conn, incident_id)
            if current.reply_approved_at is not None:
                raise ConflictError(f"incident {incident_id}'s reply was approved already; resolve it instead")
            if current.status == "dismissed":
                return current
            conn.execute(update(incidents).where(i.id == incident_id).values(status="dismissed", updated_at=now))
            _event(conn, incident_id, "dismissed", by, now)
            return self._get(conn, incident_id)

    def queue_replies(self, incident_id: int, phase: str, plan: Sequence[tuple[int, str | None, str]], *, by: str,
                      now: datetime, first: bool) -> QueuedReport:
        """Queue one approved reply per case of ``plan`` (``(case id, text or None, why not)``), at most once per
        case and phase, in chunks; a case whose own draft is still pending has it rejected in its favour.

        A case whose triage became a crisis or a possible crisis since it joined is left out here, in the same
        transaction. ``first`` marks the incident's phase approved (and records who approved it).
        """
        queued: list[int] = []
        superseded: list[int] = []
        left: list[tuple[int, str]] = [(c, why) for c, text, why in plan if text is None]
        already = 0
        todo = [(c, text) for c, text, _ in plan if text is not None]
        if first:
            with writing(self.engine) as conn:
                users.require(conn, by, "approve")
                self._mark_approved(conn, incident_id, phase, by, now, len(todo))
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            for attempt in range(3):
                try:
                    with writing(self.engine) as conn:
                        done = self._queue_chunk(conn, incident_id, phase, chunk, by=by, now=now)
                    break
                except IntegrityError:  # another approval queued some of these at the same moment: look again
                    if attempt == 2:
                        raise
            queued += done[0]
            already += done[1]
            left += done[2]
            superseded += done[3]
        return QueuedReport(incident_id, phase, tuple(queued), already, tuple(left), tuple(superseded))

    @staticmethod
    def _mark_approved(conn: Connection, incident_id: int, phase: str, by: str, now: datetime, cases: int) -> None:
        i = incidents.c
        row = conn.execute(select(incidents).where(i.id == incident_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no incident {incident_id}: `copilot incidents list` shows them")
        if row[f"{phase}_approved_at"] is not None:
            return  # approved before (a retried approval): the queueing below adds only what is missing
        values: dict[str, Any] = {f"{phase}_approved_by": by, f"{phase}_approved_at": now, "updated_at": now}
        if phase == "followup":
            values["status"] = "closed"
        conn.execute(update(incidents).where(i.id == incident_id).values(**values))
        _event(conn, incident_id, f"{phase}_approved", by, now, cases=cases)

    @staticmethod
    def _queue_chunk(conn: Connection, incident_id: int, phase: str, chunk: Sequence[tuple[int, str]], *, by: str,
                     now: datetime) -> tuple[list[int], int, list[tuple[int, str]], list[int]]:
        ids = [c for c, _ in chunk]
        r = replies.c
        done = set(conn.execute(select(r.case_id).where(r.phase == phase, r.case_id.in_(ids))).scalars())
        cases = {int(row["id"]): row for row in conn.execute(
            select(tables.cases).where(tables.cases.c.id.in_(ids))).mappings()}
        queued: list[int] = []
        left: list[tuple[int, str]] = []
        superseded: list[int] = []
        for case_id, text in chunk:
            if case_id in done:
                continue
            case = cases.get(case_id)
            if case is None:
                left.append((case_id, "the case no longer exists"))
                continue
            level = crisis_level_of(dict(case["triage"] or {}))
            if level is not None:
                what = "a crisis" if level == "crisis" else "a possible crisis"
                left.append((case_id, f"{what}: a person answers it"))
                continue
            if phase == "reply":
                superseded += _supersede(conn, case_id, incident_id, by, now)
            queued.append(_queue_item(conn, case, text, incident_id, phase, by, now))
        return queued, len(done), left, superseded


def _name(phase: str) -> str:
    return "holding reply" if phase == "reply" else "follow-up"


def _supersede(conn: Connection, case_id: int, incident_id: int, by: str, now: datetime) -> list[int]:
    """The case's own pending drafts give way to the incident's reply (rejected, with the reason, reopenable)."""
    t = tables.items.c
    pending = list(conn.execute(select(t.id).where(t.case_id == case_id, t.status == "pending",
                                                   t.drafted_by != f"incident:{incident_id}")).scalars())
    for item_id in pending:
        row = load_row(conn, item_id)
        apply_action(conn, row, "reject", by, now, {"reject_reason": f"answered by incident {incident_id}'s reply",
                                                    "rejected_at": now},
                     detail={"incident": incident_id})
    return [case_id] if pending else []


def _queue_item(conn: Connection, case: Any, text: str, incident_id: int, phase: str, by: str, now: datetime
                ) -> int:
    """An approved reply on the case's own channel and thread, audited as drafted by the incident and approved
    by the reviewer who approved the incident's text."""
    triage = dict(case["triage"] or {})
    drafter = f"incident:{incident_id}"
    inbound = {"text": case["text"], "channel": case["channel"], "author": case["author"], "id": case["inbound_id"],
               "conversation": case["conversation"]}
    item_id = new_id(conn.execute(insert(tables.items).values(
        conversation=case["conversation"], case_id=case["id"], kind="reply", status="pending", version=1, text=text,
        original_text=text, channel=case["channel"], author=case["author"], inbound_id=case["inbound_id"],
        inbound_text=case["text"], priority=int(case["priority"]),
        priority_score=float(triage.get("priority_score") or 0.0), drafted_by=drafter,
        received_at=case["received_at"], drafted_at=now, updated_at=now, attempts=0, triage=triage,
        draft={"text": text, "channel": case["channel"], "inbound": inbound, "triage": triage, "kind": "reply",
               "status": "pending", "incident": incident_id, "phase": phase,
               "flags": [f"incident {incident_id}: {_name(phase)}, approved once for every affected case"]},
        idempotency_key=f"copilot-incident-{incident_id}-{phase}-{case['id']}",
    )))
    row = {"id": item_id, "case_id": case["id"], "status": None}
    record_event(conn, row, "draft", drafter, now, "pending", 1, after_text=text,
                 detail={"incident": incident_id, "phase": phase})
    apply_action(conn, load_row(conn, item_id), "approve", by, now, {"approved_by": by, "approved_at": now},
                 detail={"incident": incident_id, "phase": phase})
    conn.execute(insert(replies).values(incident_id=incident_id, case_id=case["id"], phase=phase, item_id=item_id,
                                        at=now))
    refresh_case(conn, int(case["id"]), now)
    return item_id
