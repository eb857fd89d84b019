"""A realistic month of history for demos and the report test, made through the real queue API.

Every case is submitted, edited, approved or rejected and published with ``ReviewQueue`` methods while
the queue's clock is set to the simulated time of each action, so timestamps, audit trail, cases and
edit distances are exactly what real use would leave behind. Nothing is posted anywhere: publishing
goes to an in-memory channel. The traffic (channels, kinds, a mid-period hub incident, promoters,
knowledge gaps) comes from ``data/demo_corpus.yaml``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from copilot.community.promoters import scan_promoters
from copilot.community.registry import Registry
from copilot.community.starters import STARTER_TRIAGE
from copilot.errors import UserError
from copilot.pii import redact
from copilot.queue.publish import OutgoingMessage, PostReceipt
from copilot.types import Draft, Inbound, Triage

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

CORPUS = Path(__file__).parent / "data" / "demo_corpus.yaml"
CHANNEL_WEIGHTS = {"twitter": 34, "facebook": 20, "instagram": 10, "forum": 20, "email": 10, "chat": 6}
KIND_WEIGHTS = {"complaint": 30, "question": 33, "praise": 11, "feedback": 9, "conversation": 8, "gap": 6, "crisis": 1}
HANDLE_CHANNELS = ("twitter", "facebook", "instagram", "forum")
AGENTS = ("amira", "ben")
REVIEWERS = ("rita", "sam")
DRAFTER = "copilot"


class SimulatedChannel:
    """A publisher that remembers what it was sent (idempotent by key) and posts nowhere."""

    name = "simulated"

    def __init__(self) -> None:
        self.sent: dict[str, OutgoingMessage] = {}

    def post(self, message: OutgoingMessage) -> PostReceipt:
        if message.idempotency_key in self.sent:
            return PostReceipt(external_id=f"sim-{message.item_id}", duplicate=True)
        self.sent[message.idempotency_key] = message
        return PostReceipt(external_id=f"sim-{message.item_id}")

    def close(self) -> None:
        self.sent.clear()


@dataclass
class _Plan:
    """One simulated draft and what people do with it, with the time of each step."""

    draft: Draft
    drafted: datetime
    outcome: str  # posted | approved | rejected | pending
    edit: str | None = None
    edited: datetime | None = None
    decided: datetime | None = None
    posted: datetime | None = None
    gap: bool = False
    outreach_to: str | None = None
    outreach_kind: str = "thanks"


@dataclass(frozen=True)
class DemoReport:
    """What ``seed_demo`` created."""

    cases: int
    items: int
    outcomes: dict[str, int]
    starters: int
    outreach: int
    promoters: int
    gaps_logged: int
    since: datetime
    until: datetime
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "since": self.since.isoformat(), "until": self.until.isoformat()}


def seed_demo(pipeline: Pipeline, *, cases: int = 500, days: int = 30, seed: int = 7, end: datetime | None = None,
              force: bool = False) -> DemoReport:
    """Fill the queue with ``cases`` simulated cases over ``days`` days ending at ``end`` (default now)."""
    if cases < 50:
        raise UserError("--cases must be at least 50 for a realistic history")
    if not 1 <= days <= 365:
        raise UserError("--days must be between 1 and 365")
    queue = pipeline.queue
    existing = queue.count_items()
    users = queue.count_users()
    if existing and not force:
        raise UserError(f"the queue already holds {existing} items; seed a demo into an empty data folder "
                        "(COPILOT_DATA_DIR) or pass --force to add to it")
    if users:
        raise UserError("the queue has users; seed the demo into its own data folder (COPILOT_DATA_DIR)")
    started = time.perf_counter()
    corpus = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    until = (end or datetime.now(UTC)).replace(microsecond=0)
    since = until - timedelta(days=days)
    rng = random.Random(seed)
    world = _World(corpus, rng, since, until)
    plans = world.cases(cases) + world.starters() + world.outreach()
    channel = SimulatedChannel()
    original_clock = queue.clock
    gaps: list[dict[str, Any]] = []
    outcomes: dict[str, int] = {}
    try:
        # Posted first, in posting order: each publish then finds exactly the one item it should post.
        for plan in sorted((p for p in plans if p.outcome == "posted"), key=lambda p: p.posted or until):
            _run(queue, plan, channel)
        for plan in (p for p in plans if p.outcome != "posted"):
            _run(queue, plan, channel)
        queue.clock = lambda: until - timedelta(hours=1)
        scan_promoters(pipeline, by=DRAFTER)
        registry = Registry(queue)
        for plan in plans:
            if plan.outreach_to and registry.find(plan.outreach_to):
                queue.clock = _stopped_clock(plan.drafted)
                registry.record_outreach(plan.outreach_to, item_id=_item_id_for(queue, plan),
                                         outreach=plan.outreach_kind, by=AGENTS[0])
        quiet = corpus["promoters"][-1]["handle"]
        if registry.find(quiet):
            queue.clock = lambda: until - timedelta(hours=3)
            registry.set_opt_out(quiet, opted_out=True, by=AGENTS[1], reason="asked not to be contacted (demo)")
    finally:
        queue.clock = original_clock
    for plan in plans:
        outcomes[plan.outcome] = outcomes.get(plan.outcome, 0) + 1
        if plan.gap:
            gaps.append({"at": plan.drafted, "text": redact(plan.draft.inbound.text),
                         "channel": plan.draft.channel, "kind": "question", "best_id": None, "best_score": 0.2})
    for record in sorted(gaps, key=lambda r: r["at"]):
        pipeline.gaps.record(record.pop("text"), **record)
    n_cases = sum(1 for p in plans if p.draft.kind == "reply")
    return DemoReport(
        cases=n_cases, items=len(plans), outcomes=outcomes,
        starters=sum(1 for p in plans if p.draft.kind == "starter"),
        outreach=sum(1 for p in plans if p.draft.kind == "outreach"),
        promoters=len(Registry(queue).list()), gaps_logged=len(gaps), since=since, until=until,
        seconds=round(time.perf_counter() - started, 2))


def _stopped_clock(at: datetime) -> Callable[[], datetime]:
    """A queue clock that always reads ``at``."""
    return lambda: at


def _run(queue: Any, plan: _Plan, channel: SimulatedChannel) -> None:
    queue.clock = lambda: plan.drafted
    item = queue.submit(plan.draft, by=DRAFTER)
    plan_item = item.id
    if plan.edit and plan.edited:
        queue.clock = lambda: plan.edited
        item = queue.edit(plan_item, plan.edit, by=AGENTS[plan_item % 2], version=item.version)
    if plan.outcome in ("posted", "approved") and plan.decided:
        queue.clock = lambda: plan.decided
        item = queue.approve(plan_item, by=REVIEWERS[plan_item % 2], version=item.version)
    elif plan.outcome == "rejected" and plan.decided:
        queue.clock = lambda: plan.decided
        queue.reject(plan_item, by=REVIEWERS[plan_item % 2], version=item.version,
                     reason="not our voice; rewrite it")
    if plan.outcome == "posted" and plan.posted:
        queue.clock = lambda: plan.posted
        report = queue.publish_approved(channel, by=REVIEWERS[0], limit=1)
        if report.posted != (plan_item,):
            raise RuntimeError(f"demo publishing went out of order: expected item {plan_item}, got {report}")


def _item_id_for(queue: Any, plan: _Plan) -> int:
    return queue.find_item(kind="outreach", author=plan.draft.inbound.author, drafted_at=plan.drafted).id


class _World:
    """Draws simulated traffic from the corpus."""

    def __init__(self, corpus: dict[str, Any], rng: random.Random, since: datetime, until: datetime) -> None:
        self.c = corpus
        self.rng = rng
        self.since = since
        self.until = until
        self.span = (until - since).total_seconds()
        self.serial = 0
        # Many occasional authors, as on a real channel: each posts only a few times a month.
        self.customers = sorted({f"{n}_{rng.randint(10, 999)}" for n in corpus["names"] for _ in range(8)})

    # -- time ---------------------------------------------------------------------------------------
    def moment(self, *, incident: bool = False) -> datetime:
        """A received time: daytime-weighted, quieter at weekends; incidents cluster in two days."""
        while True:
            if incident and self.rng.random() < 0.6:
                day0 = self.since + timedelta(seconds=self.span * 0.62)
                at = day0 + timedelta(hours=self.rng.uniform(0, 40))
            else:
                at = self.since + timedelta(seconds=self.rng.uniform(0, self.span))
            hour_weight = 1.0 if 8 <= at.hour < 22 else 0.25
            day_weight = 0.7 if at.weekday() >= 5 else 1.0
            if self.rng.random() < hour_weight * day_weight and at < self.until - timedelta(minutes=5):
                return at

    def review_delay(self, at: datetime) -> timedelta:
        minutes = math.exp(self.rng.gauss(math.log(14), 0.9))
        if not 8 <= at.hour < 22:
            minutes += ((8 - at.hour) % 24) * 60
        return timedelta(minutes=min(minutes, 36 * 60))

    # -- plans --------------------------------------------------------------------------------------
    def cases(self, n: int) -> list[_Plan]:
        plans = [self._promoter_case(p, text) for p in self.c["promoters"] for text in p["messages"]]
        kinds = list(KIND_WEIGHTS)
        while len(plans) < n:
            kind = self.rng.choices(kinds, weights=[KIND_WEIGHTS[k] for k in kinds])[0]
            plans.append(self._case(kind))
        return plans

    def _case(self, kind: str) -> _Plan:
        rng = self.rng
        channel = rng.choices(list(CHANNEL_WEIGHTS), weights=list(CHANNEL_WEIGHTS.values()))[0]
        author = rng.choice(self.customers)
        gap_answer = ""
        cited: tuple[str, ...]
        if kind in ("complaint", "question"):
            issues = [i for i in self.c["issues"] if i.get(kind)]
            issue = rng.choices(issues, weights=[i.get("weight", 1) for i in issues])[0]
            received = self.moment(incident=bool(issue.get("incident")) and kind == "complaint")
            text, reply, cited = rng.choice(issue[kind]), issue["reply"], (issue["entry"],)
        elif kind == "gap":
            gap = rng.choice(self.c["gaps"])
            received = self.moment()
            text = rng.choice([gap["question"], *gap.get("variants", [])])
            reply = ("Thanks for asking! I don't want to guess on this one, so I've passed it to our team to "
                     "check. We'll come back to you with a proper answer.")
            cited, gap_answer = (), gap.get("answer") or ""
        else:
            received = self.moment()
            text = rng.choice(self.c[kind])
            reply, cited = {
                "praise": "Thank you so much for the kind words, it made our day!",
                "feedback": "Thanks for the idea! I've logged it on the ideas board so the product team sees it.",
                "conversation": "Great question for the community! Share your favourites below.",
                "crisis": "Please stop using it and unplug it now if it is safe to do so. A member of our team "
                          "is contacting you right away.",
            }[kind], ()
        triage = self._triage("question" if kind == "gap" else kind)
        plan = self._plan(text, reply, channel, author, triage, cited, received, gap=kind == "gap")
        if kind == "gap" and gap_answer and plan.outcome in ("posted", "approved"):
            plan.edit = self._with_handle(f"Thanks for asking! {gap_answer}", channel, author)
            plan.edited = plan.drafted + (plan.decided - plan.drafted) / 2 if plan.decided else None
        return plan

    def _promoter_case(self, promoter: dict[str, Any], text: str) -> _Plan:
        other = f"@{self.rng.choice(self.customers)}"
        text = text.replace("{other}", other)
        helpful = text.startswith("@")
        triage = self._triage("conversation" if helpful else "praise", positive=True)
        reply = "Thanks for helping out, great tip!" if helpful else "Thank you, that's lovely to hear!"
        plan = self._plan(text, reply, promoter["channel"], promoter["handle"], triage, (), self.moment())
        if plan.outcome != "posted":
            plan.outcome, plan.decided = "posted", plan.drafted + timedelta(minutes=8)
            plan.posted = plan.decided + timedelta(minutes=1)
        return plan

    def _triage(self, kind: str, *, positive: bool = False) -> Triage:
        rng = self.rng
        if kind == "crisis":
            return Triage(kind="crisis", sentiment="negative", sentiment_score=-0.9, priority=1, priority_score=100.0,
                          crisis=True, crisis_reason="safety: smoke", confidence=0.9)
        score = {"complaint": rng.uniform(-0.95, -0.3), "question": rng.uniform(-0.35, 0.3),
                 "praise": rng.uniform(0.5, 0.95), "feedback": rng.uniform(-0.2, 0.5),
                 "conversation": rng.uniform(0.0, 0.6)}[kind]
        if positive:
            score = rng.uniform(0.5, 0.95)
        sentiment = "negative" if score < -0.2 else "positive" if score > 0.35 else "neutral"
        priority = {"complaint": 2, "question": 3}.get(kind, 4)
        return Triage(kind=kind, sentiment=sentiment, sentiment_score=round(score, 3), priority=priority,
                      priority_score=round(100 - priority * 20 - score * 10, 1), confidence=0.8)

    def _with_handle(self, text: str, channel: str, author: str) -> str:
        if channel in HANDLE_CHANNELS:
            return f"@{author} {text}"
        if channel == "email":
            return f"Hi {author.split('_')[0].title()},\n\n{text}\n\nThe Lumio Support Team"
        return text

    def _plan(self, text: str, reply: str, channel: str, author: str, triage: Triage, cited: tuple[str, ...],
              received: datetime, *, gap: bool = False, kind: str = "reply") -> _Plan:
        rng = self.rng
        self.serial += 1
        drafted = received + timedelta(minutes=rng.uniform(0.3, 3.0))
        inbound = Inbound(text=text, channel=channel, author=f"@{author}", id=f"demo-{self.serial}",
                          waiting_minutes=round((drafted - received).total_seconds() / 60, 3))
        body = self._with_handle(reply, channel, author) if kind == "reply" else reply
        draft = Draft(text=body, channel=channel, inbound=inbound, triage=triage, cited_ids=cited,
                      retrieved_ids=cited, confidence=0.8 if cited else 0.5, template="demo", template_hash="demo",
                      latency_ms=round(rng.uniform(2500, 9000), 1), status="escalated" if triage.crisis else "pending",
                      needs_attention=gap or triage.crisis, knowledge_gap=gap, kind=kind, model="demo",
                      flags=("no grounded answer: knowledge gap",) if gap else ())
        decided = drafted + (timedelta(minutes=rng.uniform(2, 6)) if triage.crisis else self.review_delay(drafted))
        roll = rng.random()
        outcome = "rejected" if roll < 0.06 and not triage.crisis else "approved"
        if gap and roll > 0.6:
            outcome = "pending"
        plan = _Plan(draft, drafted, outcome, decided=decided, gap=gap)
        # Most approved messages are posted within minutes; a few of the latest wait for the next publish.
        if outcome == "approved" and decided < self.until:
            plan.posted = decided + timedelta(minutes=rng.uniform(0.2, 2.5))
            recent = decided > self.until - timedelta(hours=12)
            if plan.posted < self.until and not (recent and rng.random() < 0.3):
                plan.outcome = "posted"
            else:
                plan.posted = None
        elif decided >= self.until:
            plan.outcome, plan.decided = "pending", None
        if plan.outcome in ("posted", "approved") and not gap and rng.random() < 0.32:
            plan.edit = body + rng.choice(self.c["edits"])
            plan.edited = drafted + (decided - drafted) / 2
        return plan

    def starters(self) -> list[_Plan]:
        out = []
        for entry in self.c["starters"]:
            at = self.moment()
            plan = self._plan("Discussion starter (demo)", entry["text"], entry["channel"], "community", STARTER_TRIAGE,
                              (), at, kind="starter")
            plan.draft = replace(plan.draft, inbound=Inbound(text="Discussion starter (demo)", channel=entry["channel"]))
            out.append(plan)
        return out

    def outreach(self) -> list[_Plan]:
        out = []
        for promoter, entry in zip(self.c["promoters"][1:3], self.c["outreach"], strict=False):
            name, text = promoter["handle"], entry["text"]
            at = self.until - timedelta(days=self.rng.uniform(1, 6))
            plan = self._plan(f"Outreach to @{name}", text.replace("{name}", name), promoter["channel"], name,
                              Triage(kind="praise", sentiment="positive", sentiment_score=0.6, priority=4,
                                     priority_score=15.0), (), at, kind="outreach")
            plan.outreach_to, plan.outreach_kind = name, entry["kind"]
            out.append(plan)
        return out
