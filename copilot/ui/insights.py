"""The insights screen's numbers, computed from queue items: volume, response and review times, acceptance
and how much reviewers edit the drafts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import mean, median

from copilot.queue.records import ReviewItem

ACCEPTED = ("approved", "posting", "posted", "failed")


@dataclass(frozen=True)
class Insights:
    """What the queue shows about the team's work; counts are dicts ordered from most to least."""

    total: int
    by_message_kind: dict[str, int] = field(default_factory=dict)
    by_channel: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_item_kind: dict[str, int] = field(default_factory=dict)
    by_day: dict[str, int] = field(default_factory=dict)  # drafts per day, oldest first
    crises: int = 0
    accepted: int = 0
    rejected: int = 0
    posted: int = 0
    acceptance_rate: float | None = None  # accepted / (accepted + rejected)
    unedited_rate: float | None = None  # accepted without any change to the draft
    edit_distance_mean: float | None = None
    edit_distance_median: float | None = None
    response_s_p50: float | None = None  # inbound message to posted reply
    response_s_p90: float | None = None
    review_s_p50: float | None = None  # draft to approval
    review_s_p90: float | None = None
    knowledge_gaps: int = 0

    def headline(self) -> dict[str, str]:
        """The numbers worth a glance, formatted."""
        return {
            "messages handled": str(self.total),
            "crises escalated": str(self.crises),
            "posted": str(self.posted),
            "acceptance rate": _pct(self.acceptance_rate),
            "accepted unedited": _pct(self.unedited_rate),
            "mean edit distance": "-" if self.edit_distance_mean is None else f"{self.edit_distance_mean:.0f} chars",
            "response time p50": _duration(self.response_s_p50),
            "response time p90": _duration(self.response_s_p90),
            "review time p50": _duration(self.review_s_p50),
            "knowledge gaps": str(self.knowledge_gaps),
        }


def compute_insights(items: Iterable[ReviewItem], *, knowledge_gaps: int = 0) -> Insights:
    """The insights of a set of queue items."""
    items = list(items)
    accepted = [i for i in items if i.status in ACCEPTED]
    rejected = [i for i in items if i.status == "rejected"]
    distances = [i.edit_distance for i in accepted if i.edit_distance is not None]
    responses = sorted(t for i in items if (t := i.response_time_s) is not None)
    reviews = sorted(t for i in items if (t := i.review_time_s) is not None)
    decided = len(accepted) + len(rejected)
    days = Counter(i.drafted_at.date().isoformat() for i in items if i.drafted_at is not None)
    return Insights(
        total=len(items),
        by_message_kind=_ranked(str(i.triage.get("kind") or "unknown") for i in items if i.kind == "reply"),
        by_channel=_ranked(i.channel for i in items),
        by_status=_ranked(i.status for i in items),
        by_item_kind=_ranked(i.kind for i in items),
        by_day=dict(sorted(days.items())),
        crises=sum(1 for i in items if i.triage.get("crisis")),
        accepted=len(accepted),
        rejected=len(rejected),
        posted=sum(1 for i in items if i.status == "posted"),
        acceptance_rate=len(accepted) / decided if decided else None,
        unedited_rate=(sum(1 for d in distances if d == 0) / len(distances)) if distances else None,
        edit_distance_mean=mean(distances) if distances else None,
        edit_distance_median=median(distances) if distances else None,
        response_s_p50=_quantile(responses, 0.5),
        response_s_p90=_quantile(responses, 0.9),
        review_s_p50=_quantile(reviews, 0.5),
        review_s_p90=_quantile(reviews, 0.9),
        knowledge_gaps=knowledge_gaps,
    )


def _ranked(values: Iterable[str]) -> dict[str, int]:
    return dict(Counter(values).most_common())


def _quantile(sorted_values: list[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted values."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1))))
    return sorted_values[rank]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
