"""What a person does to a queued message, the same from every entry point: the CLI, the web app and the HTTP API.

Each action checks what it is given, makes the change through the queue (which checks the user's role and the
version they saw again, in the same transaction) and does what follows from it. Approving an FAQ proposal
validates the entry first, then writes it into the knowledge base and re-indexes, wherever the approval came
from. Entry points only translate their input (arguments, form fields, JSON) into these calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from copilot.community.apply import ApplyReport, apply_proposals, validate_entry_text
from copilot.config import Settings
from copilot.connectors.registry import build_routing_publisher
from copilot.errors import UserError
from copilot.index import IngestReport
from copilot.queue.publish import Publisher
from copilot.queue.records import PublishReport, ReviewItem
from copilot.queue.store import ReviewQueue


@dataclass(frozen=True)
class Actions:
    """Approve, edit, reject, reopen, assign, apply FAQ proposals and publish, for one queue and knowledge base.

    ``reindex`` rebuilds the index after an FAQ proposal is written (only then, so an ordinary approval never
    loads the embedding model); ``publisher`` builds the publisher for one publishing run: the configured one,
    with each configured connector answering the conversations of its platform.
    """

    settings: Settings
    queue: ReviewQueue
    reindex: Callable[[], IngestReport]
    publisher: Callable[[Settings], Publisher] = build_routing_publisher

    @property
    def kb_dir(self) -> Path:
        return self.settings.kb_dir

    def approve(self, item_id: int, *, by: str, version: int, text: str | None = None) -> ReviewItem:
        """Approve the version the reviewer saw, with their final edit when ``text`` differs from it.

        An FAQ proposal is validated before the approval (so an invalid one stays pending), then written
        into the knowledge base and re-indexed; a failure to write is raised after the approval is kept.
        """
        item = self.queue.get(item_id)
        if text is not None:
            text = text.strip()
            if not text:
                raise UserError(f"the reply is empty: nothing to approve in item {item_id}")
            if text == item.text.strip():
                text = None
        if item.kind != "faq_proposal":
            return self.queue.approve(item_id, by=by, version=version, text=text)
        self.approve_proposal(item_id, by=by, version=version, text=text)
        return self.queue.get(item_id)

    def approve_proposal(self, item_id: int, *, by: str, version: int, text: str | None = None) -> ApplyReport:
        """Approve an FAQ proposal and write it into the knowledge base at once: what was written, the re-index.

        The entry is validated before the approval, so an invalid or unanswered proposal stays pending.
        """
        item = self.queue.get(item_id)
        if item.kind != "faq_proposal":
            raise UserError(f"item {item_id} is a {item.kind}, not an FAQ proposal")
        validate_entry_text(text if text is not None else item.text, self.kb_dir)
        self.queue.approve(item_id, by=by, version=version, text=text)
        report = self.apply_proposals(by=by, item_ids=[item_id])
        if report.errors:
            raise UserError("; ".join(error for _, error in report.errors))
        return report

    def edit(self, item_id: int, text: str, *, by: str, version: int) -> ReviewItem:
        """Save a new text for a pending or escalated item without approving it (the queue refuses an empty one)."""
        return self.queue.edit(item_id, text, by=by, version=version)

    def reject(self, item_id: int, *, by: str, version: int, reason: str) -> ReviewItem:
        """Reject with a reason; the agent who drafted it sees the reason."""
        if not (reason or "").strip():
            raise UserError("a rejection needs a reason: the agent who drafted it sees it")
        return self.queue.reject(item_id, by=by, version=version, reason=reason)

    def reopen(self, item_id: int, *, by: str, version: int) -> ReviewItem:
        """Bring a rejected item back to pending."""
        return self.queue.reopen(item_id, by=by, version=version)

    def assign(self, item_id: int, assignee: str, *, by: str) -> ReviewItem:
        """Give an item and its case an owner (agents may only take items themselves)."""
        return self.queue.assign(item_id, assignee, by=by)

    def apply_proposals(self, *, by: str, item_ids: list[int] | None = None, reindex: bool = True
                        ) -> ApplyReport:
        """Write approved FAQ proposals not yet in the knowledge base (once each), then re-index once."""
        return apply_proposals(self.queue, self.kb_dir, by=by, item_ids=item_ids,
                               reindex=self.reindex if reindex else None)

    def publish(self, *, by: str, lease_s: float | None = None) -> PublishReport:
        """Post every approved, unposted item (and retry failed ones) exactly once, through the configured publisher."""
        self.queue.require(by, "publish")
        publisher = self.publisher(self.settings)
        try:
            return self.queue.publish_approved(publisher, by=by, lease_s=lease_s)
        finally:
            publisher.close()
