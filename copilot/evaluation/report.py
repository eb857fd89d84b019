"""``report.html`` of a run: summary tables, matplotlib charts embedded as PNG, and every case, worst first.

The page is self-contained (no scripts, no external files), so it opens from the run folder in any
browser. Customer text and drafts are escaped by Jinja2's autoescape. Each chart is an
``<img data-chart="NAME">``; each headline number sits in an element with ``data-metric``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"
MAX_TAGS = 20


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html.j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda v, d=3: (
        "n/a" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:,.{d}f}")
    )
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{v * 100:.1f}%"
    return env


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _barh(
    labels: Sequence[str], values: Sequence[float], title: str, xlabel: str, limit: float | None = 1.0
) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.32 * len(labels) + 1.2))
    colours = ["#2f855a" if v >= 0.9 else "#d69e2e" if v >= 0.7 else "#c53030" for v in values]
    ax.barh(list(labels), list(values), color=colours)
    ax.invert_yaxis()
    if limit is not None:
        ax.set_xlim(0, limit)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    return _png(fig)


def _hist(series: dict[str, list[float]], title: str, xlabel: str, line: float | None = None) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    for label, values in series.items():
        if values:
            ax.hist(values, bins=20, alpha=0.6, label=f"{label} (n={len(values)})")
    if line is not None:
        ax.axvline(line, color="black", linestyle="--", label=f"floor {line}")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cases")
    ax.legend(fontsize=8)
    return _png(fig)


def support_charts(rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> dict[str, str]:
    """Score pass rates, triage accuracy and F1, latency, and pass rate by tag."""
    charts: dict[str, str] = {}
    scores = [(name, s["pass_rate"]) for name, s in summary["scores"].items() if s["pass_rate"] is not None]
    if scores:
        charts["scores"] = _barh(
            [n for n, _ in scores], [v for _, v in scores], "Pass rate per check", "share of applicable cases"
        )
    triage = summary.get("triage") or {}
    if triage:
        import matplotlib.pyplot as plt
        import numpy as np

        fields = list(triage)
        x = np.arange(len(fields))
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(x - 0.2, [triage[f]["accuracy"] for f in fields], 0.4, label="accuracy", color="#3182ce")
        ax.bar(x + 0.2, [triage[f]["macro_f1"] for f in fields], 0.4, label="macro-F1", color="#805ad5")
        ax.set_xticks(x, fields)
        ax.set_ylim(0, 1)
        ax.set_title("Triage labels")
        ax.legend(fontsize=8)
        charts["triage"] = _png(fig)
    latency = [float(r["latency_ms"]) for r in rows if r.get("latency_ms") is not None]
    first = [float(r["first_token_ms"]) for r in rows if r.get("first_token_ms") is not None]
    if latency:
        charts["latency"] = _hist({"draft complete": latency, "first token": first}, "Draft latency", "ms")
    # Tags seen at least twice, worst first: a single case says little about a slice.
    tags = sorted(
        ((t, v) for t, v in summary.get("by_tag", {}).items() if v["n"] >= 2),
        key=lambda kv: (kv[1]["pass_rate"], -kv[1]["n"], kv[0]),
    )[:MAX_TAGS]
    if tags:
        charts["tags"] = _barh(
            [f"{t} (n={v['n']})" for t, v in tags],
            [v["pass_rate"] for _, v in tags],
            "Pass rate by tag (two or more cases, worst first)",
            "share of cases passing",
        )
    return charts


def retrieval_charts(rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> dict[str, str]:
    """Where the first relevant entry ranked, top scores of answerable vs unanswerable queries, latency."""
    import matplotlib.pyplot as plt

    charts: dict[str, str] = {}
    k = int(summary.get("k") or 5)
    answerable = [r for r in rows if r["relevant_ids"] and not r.get("error")]
    if answerable:
        counts = [sum(1 for r in answerable if r.get("rank") == i) for i in range(1, k + 1)]
        counts.append(sum(1 for r in answerable if not r.get("rank")))
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar([str(i) for i in range(1, k + 1)] + ["miss"], counts, color=["#2f855a"] * k + ["#c53030"])
        ax.set_title("Rank of the first relevant entry")
        ax.set_ylabel("queries")
        charts["ranks"] = _png(fig)

    def top(r: dict[str, Any]) -> float | None:
        return r["retrieved"][0]["score"] if r.get("retrieved") else None

    series = {
        "answerable": [t for r in rows if r["relevant_ids"] and (t := top(r)) is not None],
        "unanswerable": [t for r in rows if not r["relevant_ids"] and (t := top(r)) is not None],
    }
    if any(series.values()):
        charts["scores"] = _hist(series, "Top passage confidence", "score", line=summary.get("score_floor"))
    latency = [float(r["latency_ms"]) for r in rows if r.get("latency_ms") is not None]
    if latency:
        charts["latency"] = _hist({"search": latency}, "Query latency (embedding included)", "ms")
    return charts


def crisis_charts(rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> dict[str, str]:
    """Recall (either level) by category and by language, and the share of each calm group flagged."""
    report = summary.get("crisis") or {}
    charts: dict[str, str] = {}
    by_category = {k: v["recall_any"] for k, v in (report.get("by_category") or {}).items()
                   if v.get("recall_any") is not None}
    if by_category:
        charts["recall_by_category"] = _barh(list(by_category), list(by_category.values()),
                                             "Crises flagged, by category", "recall (crisis or possible)")
    by_language = {k: v["recall_any"] for k, v in (report.get("by_language") or {}).items()
                   if v.get("recall_any") is not None}
    if by_language:
        charts["recall_by_language"] = _barh(list(by_language), list(by_language.values()),
                                             "Crises flagged, by language", "recall (crisis or possible)")
    by_group = {k: v["false_alarm_any"] for k, v in (report.get("by_group") or {}).items()
                if v.get("false_alarm_any") is not None}
    if by_group:
        # lower is better here: the bars are the share of calm messages a person is asked to read
        charts["flagged_by_group"] = _barh(list(by_group), [1 - v for v in by_group.values()],
                                           "Calm messages left alone, by group", "share not flagged")
    return charts


def worst_first(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors first, then failing cases by score, then the rest by score."""
    return sorted(
        rows,
        key=lambda r: (
            r.get("error") is None,
            bool(r.get("passed")),
            r.get("score") or 0.0,
            str(r.get("id")),
        ),
    )


def render_report(
    config: dict[str, Any], rows: Sequence[dict[str, Any]], summary: dict[str, Any], *, charts: bool = True
) -> str:
    """The HTML page of a run."""
    import matplotlib

    matplotlib.use("Agg")
    kind = summary.get("kind", "support")
    images: dict[str, str] = {}
    if charts and rows:
        charts_of = {"support": support_charts, "crisis": crisis_charts}.get(kind, retrieval_charts)
        images = charts_of(rows, summary)
    metrics = sorted((summary.get("metrics") or {}).items())
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            config=config, summary=summary, rows=worst_first(rows), images=images, kind=kind, metrics=metrics
        )
    )


def write_report(
    run_dir: Path, config: dict[str, Any], rows: Sequence[dict[str, Any]], summary: dict[str, Any]
) -> Path:
    """Write ``report.html`` into the run folder."""
    path = Path(run_dir) / "report.html"
    path.write_text(render_report(config, rows, summary), encoding="utf-8")
    return path
