"""The one factory that wires the stages; the CLI, the web app and the evaluations get their parts from it.

Each stage's constructor takes the parts it uses (the drafter: chat model, retriever, triager, prompts,
knowledge book, phrase book, gap log, tone examples). :class:`Pipeline` builds each part once, lazily, so a
command that only triages never loads the chat model, and a test injects a fake for any backend.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from copilot.actions import Actions
from copilot.community.examples import ToneExamples
from copilot.compose import PhraseBook, load_phrase_book
from copilot.config import Settings
from copilot.connectors.base import Connector
from copilot.connectors.registry import build_connectors
from copilot.draft import Drafter
from copilot.gaps import GapLog
from copilot.incidents.desk import IncidentDesk
from copilot.index import Index, IngestReport, Progress, ingest
from copilot.intake import Intake
from copilot.knowledge_book import KnowledgeBook
from copilot.prompts import Prompts, load_prompts
from copilot.queue.store import ReviewQueue, open_queue
from copilot.retrieve import Fusion, Retriever
from copilot.types import TriageStage


class Pipeline:
    """Lazily built parts sharing one settings object; injected parts replace the defaults."""

    def __init__(self, settings: Settings, *, chat: BaseChatModel | None = None,
                 embedder: Embeddings | None = None, queue: ReviewQueue | None = None,
                 triager: TriageStage | None = None) -> None:
        self.settings = settings
        settings.ensure_dirs()
        self._given_chat = chat
        self._given_embedder = embedder
        self._given_queue = queue
        self._given_triager = triager

    @cached_property
    def embedder(self) -> Embeddings:
        if self._given_embedder is not None:
            return self._given_embedder
        from copilot.models.factory import build_embedder

        return build_embedder(self.settings)

    @property
    def embedder_name(self) -> str:
        return str(getattr(self.embedder, "name", None) or getattr(self.embedder, "model", None)
                   or type(self.embedder).__name__)

    @cached_property
    def chat(self) -> BaseChatModel:
        if self._given_chat is not None:
            return self._given_chat
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
    def triager(self) -> TriageStage:
        if self._given_triager is not None:
            return self._given_triager
        from copilot.triage.triager import build_triager

        return build_triager(self.settings, self.embedder)

    @cached_property
    def queue(self) -> ReviewQueue:
        if self._given_queue is not None:
            return self._given_queue
        return open_queue(self.settings)

    @cached_property
    def prompts(self) -> Prompts:
        return load_prompts(str(self.settings.prompts_dir) if self.settings.prompts_dir else None)

    @cached_property
    def book(self) -> KnowledgeBook:
        """The knowledge base's special entries (brand voice, crisis policy), reloaded when files change."""
        return KnowledgeBook(self.settings.kb_dir)

    @cached_property
    def phrases(self) -> PhraseBook:
        return load_phrase_book(str(self.settings.reply_phrases) if self.settings.reply_phrases else None)

    @cached_property
    def gaps(self) -> GapLog:
        """The knowledge-gap log the drafter writes and the Knowledge screen, proposals and report read."""
        return GapLog(self.settings.data_dir)

    @cached_property
    def tone_examples(self) -> ToneExamples:
        """Approved replies as tone examples for the drafter."""
        return ToneExamples(self.index, self.embedder, self.queue)

    @cached_property
    def actions(self) -> Actions:
        """What people do to queued items (approve, edit, reject, reopen, assign, apply, publish)."""
        return Actions(self.settings, self.queue, reindex=self.ingest)

    @cached_property
    def connectors(self) -> dict[str, Connector]:
        """The platforms configured in the settings (Chatwoot, Discourse, email), by name."""
        return build_connectors(self.settings)

    @cached_property
    def intake(self) -> Intake:
        """Platform messages into the queue: webhooks and the mailbox, once each, with their drafts."""
        return Intake(self.queue, self.drafter, self.connectors, incidents=self.incidents, triager=self.triager)

    @cached_property
    def incidents(self) -> IncidentDesk:
        """Surges of messages about one problem: detection, one approved reply for all, the follow-up."""
        return IncidentDesk(self.queue, lambda: self.embedder, book=self.book, phrases=self.phrases,
                            draft_one=lambda inbound, history=(): self.drafter.draft(inbound, history=history),
                            translate=lambda text, language, source: self.drafter.translator.facts(
                                text, language, source))

    @cached_property
    def drafter(self) -> Drafter:
        return Drafter(self.settings, chat=self.chat, retriever=self.retriever, triager=self.triager,
                       prompts=self.prompts, book=self.book, phrases=self.phrases, gaps=self.gaps,
                       tone_examples=self.tone_examples)

    def ingest(self, kb_dir: Path | None = None, progress: Progress | None = None) -> IngestReport:
        """Build or update the index from the knowledge base."""
        return ingest(self.settings, self.index, kb_dir, progress=progress)


def build_pipeline(settings: Settings, *, chat: BaseChatModel | None = None, embedder: Embeddings | None = None,
                   queue: ReviewQueue | None = None, triager: TriageStage | None = None) -> Pipeline:
    """The pipeline for these settings, with optional injected backends (tests, evals, the UI)."""
    return Pipeline(settings, chat=chat, embedder=embedder, queue=queue, triager=triager)
