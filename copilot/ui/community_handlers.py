"""The Community and Insights screens' handlers: plain functions over ``copilot.community``, roles checked here.

Discussion starters, promoter outreach and FAQ proposals are drafted into the review queue and approved on
the Review screen like replies; nothing reaches the community without a person's approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from copilot.errors import UserError
from copilot.queue.records import ReviewItem
from copilot.ui.access import require

if TYPE_CHECKING:
    from copilot.community.registry import Promoter
    from copilot.community.report import Report
    from copilot.pipeline import Pipeline

COMMUNITY_KINDS = ("starter", "outreach", "faq_proposal")
PERIODS = ("1d", "7d", "30d", "90d", "365d")


@dataclass(frozen=True)
class Drafted:
    """What a community drafting run put in the queue, and why it drafted fewer than asked."""

    items: tuple[ReviewItem, ...]
    notes: tuple[str, ...] = ()


def community_items(pipeline: Pipeline, user: str | None, *, limit: int = 100) -> list[ReviewItem]:
    """Discussion starters, promoter outreach and FAQ proposals in the queue, newest first."""
    require(pipeline, user, "community")
    items = [i for i in pipeline.queue.list_items(status=None, limit=10_000) if i.kind in COMMUNITY_KINDS]
    items.sort(key=lambda i: i.id, reverse=True)
    return items[:limit]


def draft_starters(pipeline: Pipeline, user: str | None, topic: str | None, n: int, fmt: str | None,
                   channel: str) -> Drafted:
    """Draft ``n`` varied discussion starters into the review queue."""
    require(pipeline, user, "community")
    assert user is not None
    from copilot.community.starters import draft_starters as draft

    run = draft(pipeline, topic=(topic or "").strip() or None, n=int(n), fmt=fmt or None, channel=channel)
    items = tuple(pipeline.queue.submit(d, by=user) for d in run.drafts)
    notes = [f"dropped a near-duplicate on {r['topic']!r} ({r['format']})" for r in run.rejected]
    if run.shortfall:
        notes.append(f"only {len(items)} of {run.requested}: the topics ran out; give a topic")
    return Drafted(items, tuple(notes))


def promoters(pipeline: Pipeline, user: str | None, *, scan: bool = False, everyone: bool = False
              ) -> list[Promoter]:
    """The promoter registry; with ``scan`` the conversation history is scanned for promoters first."""
    require(pipeline, user, "community")
    assert user is not None
    from copilot.community.promoters import scan_promoters
    from copilot.community.registry import Registry

    if scan:
        scan_promoters(pipeline, by=user)
    return Registry(pipeline.queue).list(promoters_only=not everyone)


def draft_outreach(pipeline: Pipeline, user: str | None, handle: str, kind: str | None = None) -> ReviewItem:
    """A personal message to a promoter, into the review queue (refused for anyone who opted out)."""
    require(pipeline, user, "community")
    assert user is not None
    handle = (handle or "").strip()
    if not handle:
        raise UserError("pick a promoter first")
    from copilot.community.promoters import draft_outreach as draft

    item: ReviewItem = draft(pipeline, handle, kind=kind or None, by=user)
    return item


def opt_out(pipeline: Pipeline, user: str | None, handle: str, reason: str | None = None) -> Any:
    """Record that a member must not be contacted, and withdraw their waiting outreach."""
    require(pipeline, user, "community")
    assert user is not None
    handle = (handle or "").strip()
    if not handle:
        raise UserError("pick a promoter first")
    from copilot.community.promoters import opt_out as record

    return record(pipeline, handle, by=user, reason=(reason or "").strip() or None)


def draft_faq_proposals(pipeline: Pipeline, user: str | None, limit: int = 5) -> Drafted:
    """Draft knowledge-base entries for the largest knowledge gaps into the review queue."""
    require(pipeline, user, "community")
    assert user is not None
    from copilot.community.proposals import draft_proposals

    run = draft_proposals(pipeline, limit=int(limit))
    items = tuple(pipeline.queue.submit(d, by=user) for d in run.drafts)
    notes = [*run.warnings, *(f"skipped {s['question']!r}: {s['reason']}" for s in run.skipped)]
    if not items:
        notes.insert(0, "no proposal: no knowledge gap was asked often enough yet")
    return Drafted(items, tuple(notes))


def insights_report(pipeline: Pipeline, user: str | None, period: str = "7d") -> Report:
    """The insights report (volume, sentiment, response times, acceptance, promoters, gaps) of a period."""
    require(pipeline, user, "insights")
    if period not in PERIODS:
        raise UserError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")
    from copilot.community.report import build_report

    return build_report(pipeline, period)
