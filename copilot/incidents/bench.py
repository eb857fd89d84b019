"""``copilot bench incidents``: a burst of simulated messages taken in, clustered and queued, timed.

The burst (:func:`copilot.incidents.simulate.simulate_outage`) goes through the real intake in batches, with the
real triager and embedder and the queue on disk: triage, placement, cases, surge detection, and, once the
incident is detected, one approval of its suggested reply (as a reviewer would, at once), after which every
later member is queued as it arrives. Messages that are not held by the incident would be drafted by the chat
model; that is the drafting benchmark's business, so here they get a fixed placeholder draft (no model call),
and the time is the incident machinery's alone. The numbers: wall time, messages/s, when the incident was
detected (simulated minutes after the outage began, and how many of its messages had arrived), membership
precision and recall, how well the own-reply cases were kept out, and that no case got two replies.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from copilot.config import Settings
from copilot.connectors.base import PlatformEvent, PostReceipt
from copilot.incidents.desk import IncidentDesk
from copilot.incidents.simulate import SimulatedMessage, simulate_outage
from copilot.types import Draft, Inbound, Triage, Turn

BENCH_USER = "bench-reviewer"


class _SimulatedPlatform:
    """A connector with nothing behind it: notes and posts go nowhere."""

    name = "simulated"

    def parse(self, headers: Any, body: bytes) -> list[PlatformEvent]:
        return []

    def post_note(self, inbound: Inbound, text: str) -> None:
        return None

    def post(self, message: Any) -> PostReceipt:
        raise NotImplementedError("the benchmark publishes nothing")

    def close(self) -> None:
        return None


class _PlaceholderDrafter:
    """Stands in for the chat model on the messages the incident does not hold (see the module docstring)."""

    def __init__(self, triager: Any) -> None:
        self.triager = triager

    def draft(self, inbound: Inbound, *, history: Sequence[Turn] = (), triage: Triage | None = None) -> Draft:
        triage = triage or self.triager.triage(inbound)
        crisis = triage.crisis_level == "crisis"
        return Draft(text="(drafted by the chat model outside this benchmark)", channel=inbound.channel,
                     inbound=inbound, triage=triage, cited_ids=(), retrieved_ids=(), confidence=0.0, template="",
                     template_hash="", latency_ms=0.0, status="escalated" if crisis else "pending")


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def run_incident_bench(settings: Settings, *, n: int = 10_000, outage_share: float = 0.6, batch: int = 250,
                       baseline: int | None = None, seed: int = 7) -> dict[str, Any]:
    """Time the burst; see the module docstring."""
    from copilot.intake import Intake
    from copilot.pipeline import build_pipeline
    from copilot.queue.store import open_queue

    start = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    clock = _Clock(start - timedelta(hours=3))
    with tempfile.TemporaryDirectory(prefix="copilot-bench-incidents-") as folder:
        bench_settings = settings.model_copy(update={"data_dir": Path(folder), "database_url": None})
        queue = open_queue(bench_settings, clock=clock)
        queue.add_user(BENCH_USER, "admin")
        pipeline = build_pipeline(bench_settings, queue=queue)
        triager = pipeline.triager
        desk = IncidentDesk(queue, pipeline.embedder, book=pipeline.book, phrases=pipeline.phrases, clock=clock,
                            detect_every_s=0.0)
        intake = Intake(queue, _PlaceholderDrafter(triager), {"simulated": _SimulatedPlatform()}, incidents=desk,
                        triager=triager)
        platform = _SimulatedPlatform()
        # The hour before the outage: ordinary traffic at the burst's own ordinary rate (each topic's normal rate).
        n_ordinary = n - int(n * outage_share)
        warm = simulate_outage(n_outage=0, n_ordinary=baseline if baseline else n_ordinary,
                               start=start - timedelta(minutes=61), minutes=60, seed=seed + 1)
        _feed(intake, platform, clock, warm, batch, prefix="warm")
        messages = simulate_outage(n_outage=int(n * outage_share), n_ordinary=n_ordinary, start=start, minutes=60,
                                   seed=seed)
        began = time.perf_counter()
        detected_at: datetime | None = None
        seen_outage_at_detection = 0
        approve_s = 0.0
        approved: set[int] = set()
        batch_s: list[float] = []
        for i in range(0, len(messages), batch):
            chunk = messages[i:i + batch]
            t0 = time.perf_counter()
            _feed(intake, platform, clock, chunk, batch, prefix="burst")
            for found in desk.list_incidents("open"):  # a reviewer approves each new incident's reply at once
                if found.id in approved:
                    continue
                if detected_at is None:
                    detected_at = clock.now
                    seen_outage_at_detection = sum(1 for m in messages[:i + batch] if m.about_outage)
                a0 = time.perf_counter()
                desk.approve(found.id, "reply", by=BENCH_USER)
                approve_s += time.perf_counter() - a0
                approved.add(found.id)
            batch_s.append(time.perf_counter() - t0)
        total_s = time.perf_counter() - began
        result = _score(desk, messages)
        first_outage = min(m.at for m in messages if m.about_outage)
        result.update(
            messages=len(messages), outage_messages=sum(m.about_outage for m in messages), batch=batch,
            warmup_messages=len(warm), seconds=round(total_s, 2), per_second=round(len(messages) / total_s, 1),
            batch_median_s=round(statistics.median(batch_s), 3),
            batch_p95_s=round(sorted(batch_s)[int(0.95 * (len(batch_s) - 1))], 3),
            approve_s=round(approve_s, 2),
            detected_minutes_after_start=None if detected_at is None else
            round((detected_at - first_outage).total_seconds() / 60, 1),
            outage_messages_before_detection=seen_outage_at_detection,
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        )
        queue.close()
        return result


def _feed(intake: Any, platform: Any, clock: _Clock, messages: Sequence[SimulatedMessage], batch: int, *,
          prefix: str) -> None:
    for i in range(0, len(messages), batch):
        chunk = messages[i:i + batch]
        clock.now = chunk[-1].at
        intake.take(platform, [PlatformEvent(m.inbound, f"{prefix}-{m.inbound.id}") for m in chunk])


def _score(desk: IncidentDesk, messages: Sequence[SimulatedMessage]) -> dict[str, Any]:
    """Membership over every incident: a member about the outage is right, any other member is wrong."""
    incidents = desk.list_incidents()
    truth = {m.inbound.id: m for m in messages}
    members = [m for x in incidents for m in desk.members(x.id)]
    in_burst = [m for m in members if m.inbound_id in truth]
    right = [m for m in in_burst if truth[str(m.inbound_id)].about_outage]
    outage_total = sum(1 for m in messages if m.about_outage)
    own = {i for i, m in truth.items() if m.own_reply}
    ids = {m.inbound_id for m in in_burst}
    left = {m.inbound_id for m in in_burst if m.left_out}
    replies = Counter(m.case_id for m in members if m.reply_item_id is not None)
    wrong_replies = sum(1 for m in in_burst if m.reply_item_id is not None and not truth[str(m.inbound_id)].about_outage)
    biggest = max(incidents, key=lambda x: x.affected) if incidents else None
    return {
        "incidents": len(incidents),
        "incident_title": biggest.title if biggest else None,
        "members": len(in_burst),
        "membership_precision": round(len(right) / len(in_burst), 4) if in_burst else None,
        "membership_recall": round(len(right) / outage_total, 4) if outage_total else None,
        "own_reply_members": len(own & ids),
        "own_reply_left_out": len(own & left),
        "left_out_without_reason_to": len(left - own),
        "queued_replies": sum(replies.values()),
        "replies_to_messages_not_about_the_outage": wrong_replies,
        "cases_with_two_replies": sum(1 for n in replies.values() if n > 1),
        "other_incidents": [{"title": x.title, "affected": x.affected} for x in incidents if x is not biggest],
    }


def format_incident_bench(result: dict[str, Any]) -> str:
    lines = [
        (f"burst: {result['messages']} messages ({result['outage_messages']} about the outage) after "
        f"{result['warmup_messages']} ordinary ones, in batches of {result['batch']}"),
        (f"wall time {result['seconds']} s = {result['per_second']} msg/s; batch median {result['batch_median_s']} s, "
        f"p95 {result['batch_p95_s']} s; the one approval {result['approve_s']} s; peak RSS {result['peak_rss_mb']} MB"),
        (f"detected {result['detected_minutes_after_start']} simulated minutes after the outage's first message, "
        f"after {result['outage_messages_before_detection']} of its messages"),
        (f"incident: {result['incident_title']!r} with {result['members']} cases; membership precision "
        f"{result['membership_precision']}, recall {result['membership_recall']}"),
        (f"own-reply cases among members {result['own_reply_members']}, left out {result['own_reply_left_out']}; "
        f"left out with no reason to {result['left_out_without_reason_to']}"),
        (f"replies queued {result['queued_replies']} (to messages not about the outage: "
        f"{result['replies_to_messages_not_about_the_outage']}); cases with two replies "
        f"{result['cases_with_two_replies']}"),
    ]
    if result["other_incidents"]:
        lines.append("other incidents: " + "; ".join(f"{x['title']!r} ({x['affected']})"
                                                      for x in result["other_incidents"]))
    return "\n".join(lines)
