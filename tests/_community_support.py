"""Shared parts of the community tests: a prompt-aware fake chat model, pipelines on a copied index, history."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fakes import HashEmbeddings
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from copilot.config import Settings
from copilot.pipeline import Pipeline, build_pipeline
from copilot.types import Draft, Inbound, Triage

REPO = Path(__file__).resolve().parent.parent
KNOWLEDGE = REPO / "knowledge"
TODAY = datetime(2026, 11, 28, tzinfo=UTC).date()


class PromptChat(BaseChatModel):
    """A chat model whose answer is a function of the conversation (so a test can answer what is asked)."""

    respond: Callable[[list[BaseMessage]], str]
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "prompt-chat"

    def _answer(self, messages: list[BaseMessage]) -> str:
        self.seen.append(list(messages))
        return self.respond(list(messages))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self._answer(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for piece in re.findall(r"\S+\s*|\s+", self._answer(messages)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def user_prompt(messages: list[BaseMessage]) -> str:
    """The first user turn (the task), whatever retries followed."""
    return str(messages[1].content)


def good_starter(messages: list[BaseMessage]) -> str:
    """A valid post for whatever format and topic the prompt asks for."""
    prompt = user_prompt(messages)
    fmt = re.search(r"Write an? (\w+) post", prompt).group(1)
    topic = re.search(r"^Topic: (.+)$", prompt, re.MULTILINE).group(1).rstrip("?")
    facts = re.search(r"<facts>(.*?)</facts>", prompt, re.DOTALL)
    event = re.match(r"(.+?) on (\d+ \w+) \(", facts.group(1)) if facts else None
    if fmt in ("event", "ama") and event:
        post = f"Join us for {event.group(1)} on {event.group(2)}! What questions would you bring?"
    elif fmt == "poll":
        post = f"How do you feel about {topic}?\n- Love it\n- Still learning\n- Not tried yet"
    elif fmt == "challenge" and event:
        post = f"{facts.group(1).split(': ', 1)[1]} Share yours this week!"
    elif fmt == "challenge":
        post = f"This week, share a photo of your setup for {topic} and show us your ideas!"
    else:
        post = f"What is your favourite tip about {topic}? Tell us below."
    return json.dumps({"post": post})


def labels(kind: str = "question", sentiment: str = "neutral", score: float = 0.0, **extra: Any) -> Triage:
    return Triage(kind=kind, sentiment=sentiment, sentiment_score=score, priority=3, priority_score=40.0, **extra)


class FixedTriager:
    """A triager that returns preset labels (the real one is tested on its own)."""

    def __init__(self, labels: Triage) -> None:
        self.labels = labels

    def triage(self, inbound: Inbound) -> Triage:
        return self.labels

    def triage_batch(self, inbounds: list[Inbound]) -> list[Triage]:
        return [self.labels for _ in inbounds]


def make_pipeline(tmp_path: Path, index_template: Path, *, chat: BaseChatModel | None = None,
                  kb: Path = KNOWLEDGE, triager: Any = None) -> Pipeline:
    """A pipeline on fresh data in ``tmp_path`` with a copy of an already built index of ``kb``."""
    data = tmp_path / "data"
    shutil.copytree(index_template, data / "index")
    settings = Settings(data_dir=data, kb_dir=kb)
    return build_pipeline(settings, chat=chat, embedder=HashEmbeddings(), triager=triager)


def build_index_template(root: Path, kb: Path = KNOWLEDGE) -> Path:
    """Ingest ``kb`` once (hash embeddings) and return the index folder to copy into each test."""
    settings = Settings(data_dir=root, kb_dir=kb)
    build_pipeline(settings, embedder=HashEmbeddings()).ingest()
    return root / "index"


def copy_kb(tmp_path: Path) -> Path:
    """A writable copy of the sample knowledge base."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


_serial = iter(range(1, 1_000_000))


def inbound_case(pipeline: Pipeline, text: str, *, author: str = "@sam", channel: str = "forum",
                 triage: Triage | None = None, reply: str = "Thanks for your message!",
                 when: datetime | None = None, approve: str | None = None, by: str = "rita",
                 **draft_fields: Any) -> Any:
    """An inbound message in the history: a reply draft submitted (and optionally approved with a final text)."""
    n = next(_serial)
    triage = triage or labels()
    inbound = Inbound(text=text, channel=channel, author=author, id=f"msg-{n}")
    draft = Draft(text=reply, channel=channel, inbound=inbound, triage=triage, cited_ids=(), retrieved_ids=(),
                  confidence=0.6, template="t.j2", template_hash="0" * 12, latency_ms=1.0, **draft_fields)
    queue = pipeline.queue
    original = queue.clock
    if when is not None:
        queue.clock = lambda: when
    try:
        item = queue.submit(draft, by="copilot")
        if approve is not None:
            item = queue.approve(item.id, by=by, version=item.version, text=approve)
    finally:
        queue.clock = original
    return item


def days_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=n)
