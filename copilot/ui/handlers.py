"""What each screen of the web app does, as plain functions: ``(pipeline, user, inputs) -> plain data``.

The Gradio layer (``copilot.ui.screens``) only maps these to components. Every handler checks the acting
user's role (``copilot.ui.access``) on the server, and the queue checks it again for every change, so a
hidden button is never the only thing between an agent and an approval. Errors are :class:`CopilotError`
subclasses with a one-line message the page can show as it is.
"""

from __future__ import annotations

import difflib
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from copilot.config import CHANNELS
from copilot.errors import PermissionDenied, UserError
from copilot.queue.records import ITEM_KINDS, ITEM_STATUSES, PublishReport, ReviewItem, User
from copilot.types import Draft, Entry, Inbound, Passage
from copilot.ui.access import require, role_of
from copilot.ui.auth import forget_initial_password
from copilot.ui.views import (
    CaseView,
    DiffPart,
    DraftResult,
    Gap,
    InboxRow,
    ReviewDetail,
    Source,
    seconds_since,
)

if TYPE_CHECKING:
    from copilot.index import IngestReport
    from copilot.pipeline import Pipeline

TokenCallback = Callable[[str], None]
Progress = Callable[[int, int], None]

REWRITE_ACTIONS = ("shorter", "warmer", "formal", "translate")
REVIEW_FILTERS = ("pending,escalated", "approved", "rejected", "posted", "failed", "all")
# The inbox: ordinary cases (the default), only the messages set aside as spam, or both.
INBOX_FILTERS = ("cases", "spam", "all")
LEVEL_ORDER = {"crisis": 0, "possible": 1}
EXCERPT_CHARS = 320

log = logging.getLogger(__name__)


# Reply: triage, draft, rewrite, submit --------------------------------------------------------------------


def inbound_from(text: str, channel: str, author: str | None, inbound_id: str | None) -> Inbound:
    text = (text or "").strip()
    if not text:
        raise UserError("paste the customer's message first")
    if channel not in CHANNELS:
        raise UserError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")
    author = (author or "").strip() or None
    return Inbound(text=text, channel=channel, author=author, id=inbound_id or new_inbound_id())


def new_inbound_id() -> str:
    """An id for a message pasted into the app, so drafting it again joins the same case."""
    return f"ui-{uuid.uuid4().hex[:12]}"


def draft_reply(
    pipeline: Pipeline, user: str | None, text: str, channel: str, author: str | None = None, *,
    inbound_id: str | None = None, on_token: TokenCallback | None = None,
) -> DraftResult:
    """Triage the message and draft a grounded reply (not queued yet); tokens go to ``on_token``."""
    require(pipeline, user, "reply")
    inbound = inbound_from(text, channel, author, inbound_id)
    if pipeline.index.count() == 0:
        raise UserError("the knowledge base is not indexed yet: re-index it on the Knowledge screen")
    draft = pipeline.drafter.draft(inbound, on_token=on_token, history=pipeline.queue.history_for(inbound))
    spam_case = None
    if draft.status == "skipped":  # kept as a case, so a real customer mislabelled as spam can be found
        assert user is not None
        spam_case = pipeline.queue.record_spam(draft, by=user).id
    return DraftResult(draft, tuple(sources_of(pipeline, draft.retrieved_ids, draft.cited_ids)), str(inbound.id),
                       spam_case)


def rewrite_reply(
    pipeline: Pipeline, user: str | None, text: str, action: str, channel: str, language: str | None = None,
    *, on_token: TokenCallback | None = None,
) -> str:
    """The draft made shorter, warmer, more formal, or translated (facts kept)."""
    require(pipeline, user, "reply")
    if action not in REWRITE_ACTIONS:
        raise UserError(f"unknown rewrite {action!r}; choose one of {', '.join(REWRITE_ACTIONS)}")
    if not (text or "").strip():
        raise UserError("there is no draft to rewrite yet")
    return str(pipeline.drafter.rewrite(text, action, channel=channel, language=language, on_token=on_token))


def submit_reply(pipeline: Pipeline, user: str | None, draft: Draft | None, text: str) -> ReviewItem:
    """Send a draft, with the agent's edits, for approval; the edit is kept as its own audited change.

    A message triaged as spam has no draft; a reply the agent wrote for it (a real customer after all) goes
    in as a pending item that needs attention, for a reviewer to approve like any other.
    """
    require(pipeline, user, "reply")
    assert user is not None
    if draft is None:
        raise UserError("draft a reply first")
    text = (text or "").strip()
    if draft.status == "skipped":
        if not text:
            raise UserError("this message looks like spam: no reply is recommended. If it is a real customer, "
                            "write the reply yourself and submit it for approval")
        draft = replace(draft, text=text, status="pending", needs_attention=True,
                        flags=(*draft.flags, f"triaged as spam; the reply was written by {user}"))
    if not text:
        raise UserError("the reply is empty: write or draft one before submitting")
    item = pipeline.queue.submit(draft, by=user)
    if text != item.text.strip():
        item = pipeline.actions.edit(item.id, text, by=user, version=item.version)
    return item


def sources_of(pipeline: Pipeline, retrieved: tuple[str, ...] | list[str], cited: tuple[str, ...] | list[str]
               ) -> list[Source]:
    """The entries behind a draft: cited ones first, then the rest that were retrieved."""
    order = list(dict.fromkeys([*cited, *retrieved]))
    out = []
    for entry_id in order:
        entry = pipeline.drafter.book.entry(entry_id)
        if entry is None:
            out.append(Source(entry_id, "(no longer in the knowledge base)", "?", True, entry_id in cited, ""))
            continue
        out.append(_source(entry, cited=entry_id in cited))
    return out


def _source(entry: Entry, *, cited: bool, score: float | None = None) -> Source:
    body = " ".join(entry.body.split())
    excerpt = body[:EXCERPT_CHARS] + ("…" if len(body) > EXCERPT_CHARS else "")
    return Source(entry.id, entry.title, entry.kind, entry.official, cited, excerpt, entry.url, score)


# Inbox -------------------------------------------------------------------------------------------------


def inbox(pipeline: Pipeline, user: str | None, *, show: str = "cases", limit: int = 200) -> list[InboxRow]:
    """Unresolved cases: crises first, then possible crises, then by priority, then the longest waiting.

    ``show`` is ``cases`` (everything but spam: the default), ``spam`` (only messages triaged as spam with
    no reply drafted, to rescue a real customer) or ``all``.
    """
    require(pipeline, user, "inbox")
    if show not in INBOX_FILTERS:
        raise UserError(f"unknown inbox filter {show!r}; choose one of {', '.join(INBOX_FILTERS)}")
    queue = pipeline.queue
    now = datetime.now(UTC)
    latest: dict[int, ReviewItem] = {}
    for reply in queue.list_items(status=None, kind="reply", limit=10_000):
        if reply.case_id is not None and (reply.case_id not in latest or reply.id > latest[reply.case_id].id):
            latest[reply.case_id] = reply
    rows = []
    for case in queue.list_cases(limit=10_000):
        if case.status == "resolved":
            continue
        item = latest.get(case.id)
        spam = item is None and case.triage.get("kind") == "spam"
        if (show == "cases" and spam) or (show == "spam" and not spam):
            continue
        # The most serious of what the case was opened with and its latest draft.
        marked = [x for x in (case, item) if x is not None and x.crisis_level]
        marked.sort(key=lambda x: LEVEL_ORDER[str(x.crisis_level)])
        level = marked[0].crisis_level if marked else None
        if item is not None and item.status == "escalated":
            level = "crisis"
        crisis = level == "crisis"
        reason = next((x.crisis_reason for x in marked if x.crisis_reason), None)
        span = next((x.crisis_span for x in marked if x.crisis_span), None)
        rows.append(InboxRow(
            case_id=case.id, status=case.status, item_id=item.id if item else None,
            item_status=item.status if item else None, crisis=crisis, priority=1 if crisis else case.priority,
            channel=case.channel, author=case.author, text=case.text,
            waiting_s=seconds_since(case.received_at, now), owner=case.owner,
            kind=str(case.triage.get("kind")) if case.triage.get("kind") else None,
            crisis_level=level, crisis_reason=reason, crisis_span=span, spam=spam,
        ))
    rows.sort(key=lambda r: (LEVEL_ORDER.get(r.crisis_level or "", 2), r.priority, -r.waiting_s, r.case_id))
    return rows[:limit]


def open_case(pipeline: Pipeline, user: str | None, case_id: int | None) -> CaseView:
    """A case and its items, to draft it again in the reply form."""
    require(pipeline, user, "inbox")
    if case_id is None:
        raise UserError("pick a case from the inbox first")
    queue = pipeline.queue
    case = queue.get_case(int(case_id))
    items = tuple(i for i in queue.list_items(status=None, kind="reply", limit=10_000) if i.case_id == case.id)
    return CaseView(case, items, tuple(queue.thread(case.id)))


def my_items(pipeline: Pipeline, user: str | None, *, limit: int = 20) -> list[ReviewItem]:
    """The user's own recent drafts and where they stand."""
    require(pipeline, user, "reply")
    items = [i for i in pipeline.queue.list_items(status=None, limit=10_000) if i.drafted_by == user]
    items.sort(key=lambda i: i.id, reverse=True)
    return items[:limit]


# Review queue -----------------------------------------------------------------------------------------


def review_list(pipeline: Pipeline, user: str | None, status: str = "pending,escalated",
                kind: str | None = None, *, limit: int = 200) -> list[ReviewItem]:
    """Items to review, escalated first, then by priority and waiting time."""
    require(pipeline, user, "review")
    if status not in REVIEW_FILTERS and status not in ITEM_STATUSES:
        raise UserError(f"unknown filter {status!r}; choose one of {', '.join(REVIEW_FILTERS)}")
    if kind in ("", "all"):
        kind = None
    if kind is not None and kind not in ITEM_KINDS:
        raise UserError(f"unknown kind {kind!r}; kinds: {', '.join(ITEM_KINDS)}")
    return list(pipeline.queue.list_items(status=None if status == "all" else status, kind=kind, limit=limit))


def review_detail(pipeline: Pipeline, user: str | None, item_id: int | None) -> ReviewDetail:
    """One item with its sources, triage, the diff of any edit and its audit trail."""
    require(pipeline, user, "review")
    if item_id is None:
        raise UserError("pick an item from the queue first")
    item = pipeline.queue.get(int(item_id))
    draft = item.draft or {}
    sources = sources_of(pipeline, tuple(draft.get("retrieved_ids") or ()), tuple(draft.get("cited_ids") or ()))
    thread = tuple(pipeline.queue.thread(item.case_id)) if item.case_id is not None else ()
    return ReviewDetail(item=item, sources=tuple(sources), diff=tuple(diff_words(item.original_text, item.text)),
                        audit=tuple(pipeline.queue.audit(item.id)), triage=dict(item.triage), thread=thread)


def diff_words(before: str, after: str) -> list[DiffPart]:
    """A word-level diff from ``before`` to ``after``."""
    a, b = re.findall(r"\S+|\s+", before or ""), re.findall(r"\S+|\s+", after or "")
    parts: list[DiffPart] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(DiffPart("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            parts.append(DiffPart("delete", "".join(a[i1:i2])))
        if j2 > j1:
            parts.append(DiffPart("insert", "".join(b[j1:j2])))
    return parts


def _item_id(item_id: int | None) -> int:
    if item_id is None:
        raise UserError("pick an item from the queue first")
    return int(item_id)


def _version(version: float | None) -> int:
    if version is None:
        raise UserError("reload the item first")
    return int(version)


def approve(pipeline: Pipeline, user: str | None, item_id: int | None, version: int | None,
            text: str | None = None) -> ReviewItem:
    """Approve the version the reviewer saw, with their final edit when ``text`` differs (see ``Actions``)."""
    require(pipeline, user, "review")
    assert user is not None
    return pipeline.actions.approve(_item_id(item_id), by=user, version=_version(version), text=text)


def save_edit(pipeline: Pipeline, user: str | None, item_id: int | None, version: int | None, text: str
              ) -> ReviewItem:
    """Save a reviewer's edit without approving it."""
    require(pipeline, user, "review")
    assert user is not None
    return pipeline.actions.edit(_item_id(item_id), text, by=user, version=_version(version))


def reject(pipeline: Pipeline, user: str | None, item_id: int | None, version: int | None, reason: str
           ) -> ReviewItem:
    """Reject with a reason."""
    require(pipeline, user, "review")
    assert user is not None
    return pipeline.actions.reject(_item_id(item_id), by=user, version=_version(version), reason=reason)


def reopen(pipeline: Pipeline, user: str | None, item_id: int | None, version: int | None) -> ReviewItem:
    """Bring a rejected item back to pending."""
    require(pipeline, user, "review")
    assert user is not None
    return pipeline.actions.reopen(_item_id(item_id), by=user, version=_version(version))


def publish(pipeline: Pipeline, user: str | None) -> PublishReport:
    """Post every approved item through the configured publisher (exactly once each)."""
    require(pipeline, user, "review")
    assert user is not None
    return pipeline.actions.publish(by=user)


def outbox(pipeline: Pipeline, user: str | None, *, limit: int = 100) -> list[ReviewItem]:
    """What was posted (newest first), and what failed to post."""
    require(pipeline, user, "review")
    items = pipeline.queue.list_items(status=["posted", "failed", "posting"], limit=10_000)
    items.sort(key=lambda i: (i.posted_at is not None, i.posted_at or i.drafted_at), reverse=True)
    return items[:limit]


# Knowledge --------------------------------------------------------------------------------------------


def search_knowledge(pipeline: Pipeline, user: str | None, query: str, k: int = 8) -> list[Passage]:
    """Ranked passages for a query (one per entry)."""
    require(pipeline, user, "knowledge")
    if not (query or "").strip():
        raise UserError("type something to search for")
    if pipeline.index.count() == 0:
        raise UserError("the knowledge base is not indexed yet: re-index it first")
    return list(pipeline.retriever.search(query, k=max(1, min(int(k or 8), 50))).passages)


def view_entry(pipeline: Pipeline, user: str | None, entry_id: str) -> Entry:
    """One knowledge entry, in full."""
    require(pipeline, user, "knowledge")
    entry_id = (entry_id or "").strip()
    if not entry_id:
        raise UserError("pick an entry first")
    entry = pipeline.drafter.book.entry(entry_id)
    if entry is None:
        raise UserError(f"no knowledge entry {entry_id!r}")
    return entry


def knowledge_gaps(pipeline: Pipeline, user: str | None, *, limit: int = 50) -> list[Gap]:
    """Questions the knowledge base could not answer, most asked first (from the drafter's gap log)."""
    require(pipeline, user, "knowledge")
    records, warnings = pipeline.gaps.read()
    for warning in warnings:  # a line the log could not use is reported, never silently dropped
        log.warning("knowledge-gap log: %s", warning)
    grouped: dict[str, dict[str, Any]] = {}
    for record in records:
        seen = grouped.setdefault(record.text.lower(), {"text": record.text, "count": 0, "last_seen": "",
                                                        "channel": "", "best_id": None, "best_score": None})
        seen["count"] += 1
        seen["last_seen"] = max(seen["last_seen"], record.at.isoformat() if record.at else "")
        seen["channel"] = record.channel or seen["channel"]
        seen["best_id"], seen["best_score"] = record.best_id, record.best_score
    gaps = [Gap(**g) for g in grouped.values()]
    gaps.sort(key=lambda g: g.last_seen, reverse=True)
    gaps.sort(key=gap_rank)  # stable: of equal rank, the most recent first
    return gaps[:limit]


def gap_rank(gap: Gap) -> tuple[int, float]:
    """Most asked first; of equally asked ones the worst covered first (the lowest score of the closest
    entry, and no entry at all before any): the top of the list is what the knowledge base most needs."""
    return -gap.count, -1.0 if gap.best_score is None else float(gap.best_score)


def faq_proposals(pipeline: Pipeline, user: str | None) -> list[ReviewItem]:
    """Proposed FAQ entries in the queue (drafted from resolved conversations)."""
    require(pipeline, user, "knowledge")
    return list(pipeline.queue.list_items(status=None, kind="faq_proposal", limit=200))


def reindex(pipeline: Pipeline, user: str | None, progress: Progress | None = None) -> IngestReport:
    """Re-read the knowledge base and update the index (incremental)."""
    require(pipeline, user, "reindex")
    return pipeline.ingest(progress=progress)


# Users and passwords ----------------------------------------------------------------------------------


def list_users(pipeline: Pipeline, user: str | None) -> list[User]:
    require(pipeline, user, "users")
    return list(pipeline.queue.list_users())


def add_user(pipeline: Pipeline, user: str | None, name: str, role: str, password: str) -> User:
    """Add a user with a login password (admins only)."""
    require(pipeline, user, "users")
    from copilot.queue.users import MIN_PASSWORD

    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    return pipeline.queue.add_user((name or "").strip(), role, password=password, by=user)


def change_password(pipeline: Pipeline, user: str | None, current: str, new: str, again: str) -> None:
    """Change your own password; the current one is checked first."""
    role_of(pipeline, user)
    assert user is not None
    if pipeline.queue.verify_password(user, current or "") is None:
        raise PermissionDenied("the current password is wrong")
    if new != again:
        raise UserError("the two new passwords differ")
    if new == current:
        raise UserError("the new password is the same as the current one")
    pipeline.queue.set_password(user, new, by=user)
    forget_initial_password(pipeline.settings, user)


def reset_password(pipeline: Pipeline, user: str | None, name: str, new: str) -> None:
    """Set another user's password (admins only)."""
    require(pipeline, user, "users")
    assert user is not None
    pipeline.queue.set_password((name or "").strip(), new, by=user)
    forget_initial_password(pipeline.settings, (name or "").strip())


