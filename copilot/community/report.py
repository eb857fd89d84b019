"""The insights report for marketing and PR: what came in, how we answered, who loves us, what we lack.

Every figure is computed from the queue database (cases, items, the promoter registry) and the gap log
over one period, then rendered as Markdown and as a self-contained HTML page with matplotlib charts.
In the HTML each figure sits in an element with ``data-metric`` (its key in ``Report.data``) and
``data-value`` (its exact value), so a reader, or a test, can check it against the database.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np

from copilot.community.inputs import load_entries, now_utc, parse_since
from copilot.community.store import CommunityStore, Promoter
from copilot.errors import UserError
from copilot.queue.records import APPROVED_STATUSES

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

TEMPLATES = Path(__file__).parent / "templates"
APPROVED = APPROVED_STATUSES
WAITING = ("pending", "escalated")
TOP_N = 8


@dataclass(frozen=True)
class Report:
    """One period's report: the figures, the Markdown and HTML renderings, and the charts as PNG bytes."""

    since: datetime
    until: datetime
    data: dict[str, Any]
    markdown: str
    html: str
    figures: dict[str, bytes] = field(default_factory=dict)

    def write(self, out_dir: Path) -> dict[str, Path]:
        """Write ``report.md`` (charts beside it in ``charts/``), ``report.html`` and ``report.json``."""
        out_dir = Path(out_dir)
        charts = out_dir / "charts"
        charts.mkdir(parents=True, exist_ok=True)
        for name, png in self.figures.items():
            (charts / f"{name}.png").write_bytes(png)
        paths = {"markdown": out_dir / "report.md", "html": out_dir / "report.html", "json": out_dir / "report.json"}
        paths["markdown"].write_text(self.markdown, encoding="utf-8")
        paths["html"].write_text(self.html, encoding="utf-8")
        paths["json"].write_text(json.dumps(self.data, indent=2, default=str), encoding="utf-8")
        return paths


def build_report(pipeline: Pipeline, since: str | datetime | dt.timedelta = "7d", until: datetime | None = None,
                 *, charts: bool = True) -> Report:
    """The report for ``[since, until)`` (``until`` defaults to now); ``since`` as in ``parse_since``."""
    end = until or now_utc()
    start = parse_since(since, end) if not isinstance(since, datetime) else since
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    if start >= end:
        raise UserError(f"the period is empty: {start:%Y-%m-%d %H:%M} is not before {end:%Y-%m-%d %H:%M}")
    data = collect(pipeline, start, end)
    figures: dict[str, bytes] = {}
    if charts:
        from copilot.community.charts import render_charts

        figures = render_charts(data)
    env = _environment()
    context = {"d": data, "brand": pipeline.settings.brand_name}
    markdown = env.get_template("report.md.j2").render(**context, chart=lambda n: f"charts/{n}.png")
    images = {n: "data:image/png;base64," + base64.b64encode(png).decode("ascii") for n, png in figures.items()}
    html = env.get_template("report.html.j2").render(**context, images=images)
    return Report(start, end, data, markdown, html, figures)


def default_out_dir(pipeline: Pipeline, report: Report) -> Path:
    """``<data_dir>/reports/<since>_<until>``."""
    return pipeline.settings.data_dir / "reports" / f"{report.since:%Y%m%d-%H%M}_{report.until:%Y%m%d-%H%M}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(["html.j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{v * 100:.1f}%"
    return env


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


# Figures -------------------------------------------------------------------------------------------


def collect(pipeline: Pipeline, since: datetime, until: datetime) -> dict[str, Any]:
    """Every figure of the report for a period, as plain JSON-able data."""
    queue = pipeline.queue
    community = CommunityStore.beside(queue)
    cases = queue.cases_received(since=since, until=until)
    replies = queue.posted_replies([case.id for case in cases])
    items = queue.items_drafted(since=since, until=until)
    members = community.promoters(promoters_only=False, limit=None)
    detected = community.detected_between(since, until)
    applied = community.count_applied_between(since, until)
    return {
        "period": {"since": since.isoformat(), "until": until.isoformat(),
                   "days": round((until - since).total_seconds() / 86400, 2)},
        "cases": _cases(cases),
        "volume": _volume(cases),
        "sentiment": _sentiment(cases, since, until),
        "top_issues": _top_issues(pipeline, cases, items),
        "response": _response(cases, replies, items),
        "acceptance": _acceptance(items),
        "promoters": _promoters(members, detected, items),
        "gaps": _gaps(pipeline, since, until, items, applied),
    }


def _hours(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 3600


def _minutes(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 60


def _stats(values: list[float], prefix: str) -> dict[str, float | None]:
    if not values:
        return {f"{prefix}_median": None, f"{prefix}_p90": None, f"{prefix}_mean": None}
    return {f"{prefix}_median": round(float(statistics.median(values)), 3),
            f"{prefix}_p90": round(float(np.percentile(values, 90)), 3),
            f"{prefix}_mean": round(float(statistics.fmean(values)), 3)}


def _cases(cases: Sequence[Any]) -> dict[str, Any]:
    statuses = Counter(row.status for row in cases)
    resolve = [_hours(row.resolved_at - row.received_at) for row in cases if row.resolved_at is not None]
    total = len(cases)
    return {"total": total, "resolved": statuses["resolved"], "waiting": statuses["waiting"],
            "open": statuses["open"], "resolution_rate": round(statuses["resolved"] / total, 4) if total else None,
            **_stats(resolve, "resolve_hours")}


def _volume(cases: Sequence[Any]) -> dict[str, Any]:
    by_kind: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    grid: dict[str, Counter[str]] = defaultdict(Counter)
    for row in cases:
        kind = str((row.triage or {}).get("kind") or "unknown")
        by_kind[kind] += 1
        by_channel[row.channel] += 1
        grid[row.channel][kind] += 1
    return {"by_kind": dict(by_kind.most_common()), "by_channel": dict(by_channel.most_common()),
            "by_channel_kind": {ch: dict(k) for ch, k in sorted(grid.items())}}


def _sentiment(cases: Sequence[Any], since: datetime, until: datetime) -> dict[str, Any]:
    days: dict[str, list[Any]] = defaultdict(list)
    scores = []
    labels: Counter[str] = Counter()
    for row in cases:
        triage = row.triage or {}
        days[row.received_at.date().isoformat()].append(triage)
        if triage.get("sentiment_score") is not None:
            scores.append(float(triage["sentiment_score"]))
        labels[str(triage.get("sentiment") or "unknown")] += 1
    daily = []
    day = since.date()
    while day < until.date() or (day == until.date() and until.time() != dt.time(0)):
        rows = days.get(day.isoformat(), [])
        values = [float(r["sentiment_score"]) for r in rows if r.get("sentiment_score") is not None]
        counts = Counter(str(r.get("sentiment") or "unknown") for r in rows)
        daily.append({"date": day.isoformat(), "cases": len(rows),
                      "mean": round(float(statistics.fmean(values)), 4) if values else None,
                      "negative": counts["negative"], "neutral": counts["neutral"], "positive": counts["positive"]})
        day += dt.timedelta(days=1)
    total = len(cases)
    return {"mean": round(float(statistics.fmean(scores)), 4) if scores else None,
            "negative_share": round(labels["negative"] / total, 4) if total else None,
            "positive_share": round(labels["positive"] / total, 4) if total else None,
            "daily": daily}


def _top_issues(pipeline: Pipeline, cases: Sequence[Any], items: Sequence[Any]) -> list[dict[str, Any]]:
    """The knowledge entries cited most by reply drafts in the period, with how negative those cases were."""
    kb_dir = pipeline.settings.kb_dir
    titles = {e.id: e.title for e in load_entries(kb_dir)}
    counts: Counter[str] = Counter()
    negative: Counter[str] = Counter()
    for row in items:
        if row.kind != "reply":
            continue
        draft = row.draft or {}
        sentiment = (draft.get("triage") or {}).get("sentiment")
        for entry_id in dict.fromkeys(draft.get("cited_ids") or ()):
            counts[entry_id] += 1
            negative[entry_id] += sentiment == "negative"
    return [{"id": entry_id, "title": titles.get(entry_id, entry_id), "count": n,
             "negative_share": round(negative[entry_id] / n, 4)} for entry_id, n in counts.most_common(TOP_N)]


def _response(cases: Sequence[Any], replies: Sequence[Any], items: Sequence[Any]) -> dict[str, Any]:
    first: dict[int, datetime] = {}
    for row in replies:
        if row.case_id not in first or row.posted_at < first[row.case_id]:
            first[row.case_id] = row.posted_at
    received = {row.id: row.received_at for row in cases}
    response = [_minutes(first[cid] - received[cid]) for cid in first if cid in received]
    review = [_minutes(row.approved_at - row.drafted_at) for row in items
              if row.kind == "reply" and row.approved_at is not None]
    within = sum(1 for m in response if m <= 60)
    return {"answered_cases": len(response), **_stats(response, "first_response_minutes"),
            **_stats(review, "review_minutes"),
            "within_1h_share": round(within / len(response), 4) if response else None,
            "first_response_minutes": sorted(round(m, 2) for m in response)}


def _acceptance(items: Sequence[Any]) -> dict[str, Any]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in items:
        groups[row.kind].append(row)
    by_kind = {kind: _accept(rows) for kind, rows in sorted(groups.items())}
    return {"by_kind": by_kind, "overall": _accept(items)}


def _accept(rows: Sequence[Any]) -> dict[str, Any]:
    approved = [r for r in rows if r.status in APPROVED]
    rejected = sum(1 for r in rows if r.status == "rejected")
    waiting = sum(1 for r in rows if r.status in WAITING)
    distances = [r.edit_distance for r in approved if r.edit_distance is not None]
    ratios = [r.edit_distance / max(1, len(r.original_text)) for r in approved if r.edit_distance is not None]
    decided = len(approved) + rejected
    return {"drafted": len(rows), "approved": len(approved), "rejected": rejected, "waiting": waiting,
            "acceptance_rate": round(len(approved) / decided, 4) if decided else None,
            "unedited_share": round(sum(1 for d in distances if d == 0) / len(distances), 4) if distances else None,
            "edit_distance_mean": round(float(statistics.fmean(distances)), 3) if distances else None,
            "edit_distance_median": float(statistics.median(distances)) if distances else None,
            "edit_ratio_mean": round(float(statistics.fmean(ratios)), 4) if ratios else None}


def _promoters(members: Sequence[Promoter], detected: Sequence[str], items: Sequence[Any]) -> dict[str, Any]:
    active = [m for m in members if m.is_promoter]
    top = sorted(active, key=lambda m: (-m.score, m.handle))[:TOP_N]
    outreach = [r for r in items if r.kind == "outreach"]
    return {"total": len(active), "new": len(set(detected)),
            "opted_out": sum(1 for m in members if m.opted_out),
            "top": [{"handle": m.handle, "score": m.score, "positive": m.positive, "helpful": m.helpful,
                     "recommendations": m.recommendations, "interests": list(m.interests)[:3],
                     "opted_out": m.opted_out} for m in top],
            "outreach": {"drafted": len(outreach), "approved": sum(1 for r in outreach if r.status in APPROVED),
                         "posted": sum(1 for r in outreach if r.status == "posted")}}


def _gaps(pipeline: Pipeline, since: datetime, until: datetime, items: Sequence[Any], applied: int) -> dict[str, Any]:
    from copilot.community.proposals import logged_gaps

    logged, warnings = logged_gaps(pipeline.gaps, since, until)
    flagged = sum(1 for r in items if r.kind == "reply" and (r.draft or {}).get("knowledge_gap"))
    proposals = [r for r in items if r.kind == "faq_proposal"]
    recent = list(dict.fromkeys(q.text for q in sorted(logged, key=lambda q: q.at or since, reverse=True)))
    return {"logged": len(logged), "drafts_flagged": flagged,
            "proposals": {"drafted": len(proposals), "waiting": sum(1 for r in proposals if r.status in WAITING),
                          "approved": sum(1 for r in proposals if r.status in APPROVED), "applied": applied},
            "recent": recent[:TOP_N], "warnings": warnings}
