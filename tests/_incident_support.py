"""Shared parts of the incident tests: a rule triager, a clock, a knowledge base with announcements, a desk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fakes import FakeChat, HashEmbeddings

from copilot.config import Settings
from copilot.connectors.base import PlatformEvent
from copilot.incidents.desk import IncidentDesk
from copilot.incidents.detect import SurgeRules
from copilot.intake import Intake
from copilot.pipeline import Pipeline, build_pipeline
from copilot.queue.store import open_queue
from copilot.types import Inbound, Triage

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
# The bag-of-words test embedder scores these outage messages far above the everyday questions.
OUTAGE = [
    "my lumio hub is offline and the app says hub unreachable",
    "hub offline again, app says hub unreachable, lights not responding",
    "the lumio hub went offline, app shows hub unreachable",
    "is the hub down? my hub is offline, app says unreachable",
    "hub unreachable in the app, my lumio hub is offline",
    "lumio hub offline since 9, app says hub unreachable",
    "app says hub unreachable and the lumio hub is offline",
    "my hub is offline, the app keeps saying hub unreachable",
    "lumio hub offline, hub unreachable in app, restarted twice",
    "hub is offline and unreachable in the lumio app",
    "hub offline? app says hub unreachable for me too",
    "the app says my lumio hub is unreachable, hub offline",
]
ORDINARY = [
    "how do i cut the light strip to fit my kitchen cabinets",
    "when will my order ship, i ordered on monday",
    "can i share control of the lights with my partner",
    "does the colour bulb work with google home",
    "the android app crashes when i open schedules",
    "do you ship to ireland before christmas",
    "thanks for the quick help yesterday, all working now",
    "how many bulbs can one hub handle in a big house",
]
RULES = SurgeRules(similarity=0.5, join_similarity=0.5, merge_similarity=0.45, min_members=6, ratio=3.0)
ANNOUNCEMENT = """---
id: kb-outage-hub-2026-12-07
title: "Hub connection outage, 7 December 2026"
kind: announcement
updated: 2026-12-07
---
Why is my lumio hub offline and the app says hub unreachable?

Since 08:50 GMT a fault in our cloud service makes hubs show as offline and unreachable in the app. Lights still work from wall switches.

Status: investigating. We post updates at status.lumio.example.
"""
RESOLVED = ANNOUNCEMENT.replace("Status: investigating.", "Status: resolved at 11:20 GMT, hubs are back online.")


class RuleTriager:
    """Labels by rule: a language by marker words, a crisis on an emergency, private info on an email address."""

    def triage(self, inbound: Inbound) -> Triage:
        return self.triage_batch([inbound])[0]

    def triage_batch(self, inbounds: list[Inbound]) -> list[Triage]:
        out = []
        for inbound in inbounds:
            text = inbound.text.lower()
            crisis = "ambulance" in text or "smoke" in text
            language = "es" if " está " in f" {text} " or "desconectado" in text else "en"
            out.append(Triage(kind="crisis" if crisis else "complaint", sentiment="negative", sentiment_score=-0.5,
                              priority=1 if crisis else 2, priority_score=90.0 if crisis else 50.0, crisis=crisis,
                              crisis_level="crisis" if crisis else None,
                              crisis_reason="danger: medical" if crisis else None,
                              private_info="@" in text and "." in text.split("@")[-1], language=language))
        return out


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


class Platform:
    """A connector that records notes; nothing is published through it here."""

    name = "sim"

    def __init__(self) -> None:
        self.notes: list[str] = []

    def parse(self, headers: Any, body: bytes) -> list[PlatformEvent]:
        return []

    def post_note(self, inbound: Inbound, text: str) -> None:
        self.notes.append(text)

    def post(self, message: Any) -> Any:
        raise AssertionError("the intake never posts publicly")

    def close(self) -> None:
        pass


def make_desk(tmp_path: Path, *, settings: Settings | None = None, announcements: dict[str, str] | None = None,
              replies: list[str] | None = None) -> tuple[Pipeline, IncidentDesk, Intake, Clock, Platform]:
    """A pipeline on fresh data with a clock, a desk with the test rules, and an intake that uses both."""
    kb = tmp_path / "kb"
    (kb / "faq").mkdir(parents=True, exist_ok=True)
    (kb / "faq" / "hub.md").write_text("---\nid: kb-hub\ntitle: Hub limits\nkind: faq\n---\nOne hub handles 50 bulbs.\n",
                                       encoding="utf-8")
    for name, text in (announcements or {}).items():
        (kb / "announcements").mkdir(exist_ok=True)
        (kb / "announcements" / name).write_text(text, encoding="utf-8")
    base = settings or Settings(data_dir=tmp_path / "data")
    settings = base.model_copy(update={"kb_dir": kb, "draft_mode": "compose"})
    clock = Clock()
    queue = open_queue(settings, clock=clock)
    pipe = build_pipeline(settings, chat=FakeChat(replies=replies or ["Sorry about that, let's sort it out."]),
                          embedder=HashEmbeddings(), queue=queue, triager=RuleTriager())
    desk = IncidentDesk(queue, pipe.embedder, book=pipe.book, phrases=pipe.phrases, draft_one=pipe.drafter.draft,
                        translate=lambda text, lang, src: f"[{lang}] {text}", rules=RULES, clock=clock,
                        detect_every_s=0.0)
    pipe.__dict__["incidents"] = desk  # the pipeline's own desk is this one (its rules and clock)
    platform = Platform()
    intake = Intake(queue, pipe.drafter, {"sim": platform}, incidents=desk, triager=pipe.triager)
    return pipe, desk, intake, clock, platform


def send(intake: Intake, platform: Platform, clock: Clock, texts: list[str], *, prefix: str, channel: str = "twitter",
         every_s: float = 20.0) -> list[int]:
    """Each text as a new message ``every_s`` apart; the case ids."""
    cases: list[int] = []
    for n, text in enumerate(texts):
        clock.advance(seconds=every_s)
        inbound = Inbound(text=text, channel=channel, author=f"{prefix}{n}", id=f"{prefix}-{n}")
        cases += intake.take(platform, [PlatformEvent(inbound, f"d-{prefix}-{n}")]).cases  # type: ignore[arg-type]
    return cases


def desk_pipeline(tmp_path: Path, **kwargs: Any) -> tuple[Pipeline, IncidentDesk, Intake, Clock, Platform]:
    """:func:`make_desk`, with the pipeline's own desk (``pipeline.incidents``) being that desk, for the web app."""
    pipe, desk, intake, clock, platform = make_desk(tmp_path, **kwargs)
    pipe.__dict__["incidents"] = desk  # a cached_property: the test desk, with its rules and clock
    return pipe, desk, intake, clock, platform
