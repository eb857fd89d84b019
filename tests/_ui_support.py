"""Shared set-up of the web-app tests: a pipeline on fakes over the sample knowledge base, and its users."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fakes import FakeChat, HashEmbeddings

from copilot.config import load_settings
from copilot.pipeline import Pipeline, build_pipeline
from copilot.types import Inbound, Triage
from copilot.ui.auth import FirstRun, ensure_admin

REPO_ROOT = Path(__file__).resolve().parent.parent
KB = REPO_ROOT / "knowledge"

COMPLAINT = "@LumioHelp my new bulbs flicker every time I dim them from the wall switch. Paid good money for this"
CRISIS = "The Lumio plug in my son's room started smoking and there are scorch marks on the wall. I'm terrified."
# What the fake model answers: a grounded reply that passes the guardrails for the complaint above.
REPLY = ("REPLY: Sorry about the flicker, that must be really annoying. Turn the wall dimmer all the way up and "
         "leave it there, then dim in the app or by voice instead.\nSOURCES: kb-fix-bulb-flicker-dimmer")

REWRITE = "REPLY: Sorry! Set the wall dimmer to full and dim in the app.\nSOURCES: none"

AGENT, AGENT_PW = "alice", "alice-password-1"
REVIEWER, REVIEWER_PW = "rita", "rita-password-1"

_CRISIS_WORDS = re.compile(r"smok|fire|scorch|suicid|kill myself|end it all", re.IGNORECASE)
_COMPLAINT_WORDS = re.compile(r"flicker|offline|broken|charged twice|fix it|not working|annoy", re.IGNORECASE)


class RuleTriager:
    """A deterministic triager for UI tests (the real one is tested on its own): keywords decide, unless a
    test set the labels of a message's exact text in ``overrides``."""

    def __init__(self) -> None:
        self.overrides: dict[str, Triage] = {}

    def triage(self, inbound: Inbound) -> Triage:
        text = inbound.text
        if text in self.overrides:
            return self.overrides[text]
        if _CRISIS_WORDS.search(text):
            return Triage(kind="crisis", sentiment="negative", sentiment_score=-0.8, priority=1,
                          priority_score=96.0, crisis=True, crisis_reason="safety: fire or smoke", confidence=0.9)
        if _COMPLAINT_WORDS.search(text):
            return Triage(kind="complaint", sentiment="negative", sentiment_score=-0.5, priority=2,
                          priority_score=62.0, confidence=0.8)
        if "?" in text:
            return Triage(kind="question", sentiment="neutral", sentiment_score=0.0, priority=3,
                          priority_score=30.0, confidence=0.7)
        return Triage(kind="praise", sentiment="positive", sentiment_score=0.7, priority=4, priority_score=15.0,
                      confidence=0.6)

    def triage_batch(self, inbounds: Sequence[Inbound]) -> list[Triage]:
        return [self.triage(i) for i in inbounds]


@dataclass
class UiWorld:
    pipeline: Pipeline
    chat: FakeChat
    admin: FirstRun

    @property
    def triager(self) -> RuleTriager:
        return self.pipeline.triager  # type: ignore[return-value]


def make_world(data_dir: Path, *, replies: list[str] | None = None, demo_cases: int = 0, kb: Path = KB,
               indexed: bool = True, team: bool = True) -> UiWorld:
    """A pipeline over the sample knowledge base (indexed) with a first-run admin, an agent and a reviewer;
    with ``demo_cases``, a month of simulated history (the community demo) first. ``indexed=False`` and
    ``team=False`` leave it as a new install is: nothing indexed, the first-run admin alone."""
    settings = load_settings(data_dir=data_dir, kb_dir=kb)
    chat = FakeChat(replies=replies or [REPLY])
    pipeline = build_pipeline(settings, chat=chat, embedder=HashEmbeddings(), triager=RuleTriager())
    if indexed:
        pipeline.ingest()
    if demo_cases:
        from copilot.community.demo import seed_demo

        seed_demo(pipeline, cases=demo_cases, days=30)  # only into a queue without users
    admin = ensure_admin(pipeline.queue, settings)
    assert admin is not None
    if team:
        pipeline.queue.add_user(AGENT, "agent", password=AGENT_PW, by=admin.name)
        pipeline.queue.add_user(REVIEWER, "reviewer", password=REVIEWER_PW, by=admin.name)
    return UiWorld(pipeline, chat, admin)
