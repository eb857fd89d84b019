"""The one factory that wires concrete backends; the CLI, the UI and the evals all go through it."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from copilot.config import Settings
from copilot.index import Index, IngestReport, ingest
from copilot.retrieve import Fusion, Retriever


class Pipeline:
    """Lazily built stages sharing one settings object; injected parts replace the defaults."""

    def __init__(self, settings: Settings, *, chat: BaseChatModel | None = None,
                 embedder: Embeddings | None = None, queue: Any = None, triager: Any = None) -> None:
        self.settings = settings
        settings.ensure_dirs()
        self._chat = chat
        self._embedder = embedder
        self._queue = queue
        self._triager = triager

    @cached_property
    def embedder(self) -> Embeddings:
        if self._embedder is not None:
            return self._embedder
        from copilot.models.factory import build_embedder

        return build_embedder(self.settings)

    @property
    def embedder_name(self) -> str:
        return str(getattr(self.embedder, "name", None) or getattr(self.embedder, "model", None)
                   or type(self.embedder).__name__)

    @cached_property
    def chat(self) -> BaseChatModel:
        if self._chat is not None:
            return self._chat
        from copilot.models.factory import build_chat

        return build_chat(self.settings)

    @cached_property
    def index(self) -> Index:
        return Index(self.settings, self.embedder, embedder_name=self.embedder_name)

    @cached_property
    def retriever(self) -> Retriever:
        fusion = Fusion(dense_weight=self.settings.dense_weight, lexical_weight=self.settings.lexical_weight)
        return Retriever(self.index, self.embedder, top_k=self.settings.top_k,
                         score_floor=self.settings.score_floor, fusion=fusion)

    @cached_property
    def triager(self) -> Any:
        if self._triager is not None:
            return self._triager
        from copilot.triage.triager import build_triager

        return build_triager(self.settings, self.embedder)

    @cached_property
    def queue(self) -> Any:
        if self._queue is not None:
            return self._queue
        from copilot.queue.store import open_queue

        return open_queue(self.settings)

    @cached_property
    def drafter(self) -> Any:
        from copilot.draft import Drafter

        return Drafter(self, tone_examples=self.tone_examples)

    @cached_property
    def tone_examples(self) -> Any:
        """Approved replies as tone examples for the drafter (``copilot.community.examples``)."""
        from copilot.community.examples import build_tone_examples

        return build_tone_examples(self)

    def ingest(self, kb_dir: Path | None = None, progress: Any = None) -> IngestReport:
        """Build or update the index from the knowledge base."""
        return ingest(self.settings, self.index, kb_dir, progress=progress)


def build_pipeline(settings: Settings, *, chat: BaseChatModel | None = None, embedder: Embeddings | None = None,
                   queue: Any = None, triager: Any = None) -> Pipeline:
    """The pipeline for these settings, with optional injected backends (tests, evals, the UI)."""
    return Pipeline(settings, chat=chat, embedder=embedder, queue=queue, triager=triager)
