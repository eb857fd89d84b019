"""Shared parts of the evaluation tests: a triager that reads labels from the cases, a chat model that fails
on cue, and small case files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fakes import FakeChat
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from copilot.evaluation.dataset import load_support_cases
from copilot.types import Inbound, Triage

REPO = Path(__file__).resolve().parent.parent
SUPPORT = REPO / "evals" / "datasets" / "support.jsonl"
KNOWLEDGE = REPO / "knowledge"
EXPLODE = "EXPLODE"


class LabelTriager:
    """Triage by lookup: the labels a case file gives each message (the real triager has its own tests).

    ``wrong`` maps a message to a sentiment to report instead, so triage metrics have a known error.
    """

    def __init__(self, cases_path: Path, wrong: dict[str, str] | None = None) -> None:
        self.labels = {c.message: c.expected for c in load_support_cases(cases_path)}
        self.wrong = wrong or {}

    def triage(self, inbound: Inbound) -> Triage:
        e = self.labels[inbound.text]
        sentiment = self.wrong.get(inbound.text, e.sentiment)
        score = {"negative": -0.6, "neutral": 0.0, "positive": 0.6}[sentiment]
        return Triage(
            kind=e.kind,
            sentiment=sentiment,
            sentiment_score=score,
            priority=2,
            priority_score=50.0,
            crisis=e.crisis,
            crisis_reason="self-harm" if e.crisis else None,
            private_info=e.private_info,
            private_reason="test" if e.private_info else None,
        )

    def triage_batch(self, inbounds: list[Inbound]) -> list[Triage]:
        return [self.triage(m) for m in inbounds]


class ExplodingChat(FakeChat):
    """FakeChat that fails when the customer message contains ``EXPLODE`` (a provider outage mid-run)."""

    def _check(self, messages: list[BaseMessage]) -> None:
        if any(EXPLODE in str(m.content) for m in messages):
            raise RuntimeError("connection reset by peer")

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._check(messages)
        return super()._generate(messages, stop, run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self._check(messages)
        yield from super()._stream(messages, stop, run_manager, **kwargs)


def support_rows(*ids: str) -> list[dict[str, Any]]:
    """Cases of the shipped support set, as JSON objects."""
    rows = {
        r["id"]: r for r in (json.loads(line) for line in SUPPORT.read_text().splitlines() if line.strip())
    }
    return [dict(rows[i]) for i in ids]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def case(**fields: Any) -> dict[str, Any]:
    """A valid support case with overridable fields."""
    base = {
        "id": "c-1",
        "message": "my bulb flickers when dimmed",
        "channel": "twitter",
        "author": "@sam",
        "expected_ids": ["kb-fix-bulb-flicker-dimmer"],
        "reference": "Sorry! Turn the dimmer to 100%.",
        "expected": {"kind": "complaint", "sentiment": "negative", "crisis": False, "private_info": False},
        "must_include": ["dimmer"],
        "must_not_include": [],
        "tags": ["flicker"],
    }
    base.update(fields)
    return base
