"""The insights report's charts: matplotlib figures (Agg, no global pyplot state) rendered to PNG bytes."""

from __future__ import annotations

import io
import itertools
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

PALETTE = {"complaint": "#d1495b", "question": "#00798c", "praise": "#66a182", "feedback": "#edae49",
           "conversation": "#8d96a3", "crisis": "#2e4057", "spam": "#cccccc"}
STATUS_COLOURS = {"approved": "#66a182", "rejected": "#d1495b", "waiting": "#edae49"}
SIZE = (7.5, 3.4)
DPI = 110


def render_charts(data: dict[str, Any]) -> dict[str, bytes]:
    """Every chart of a report's data, by name, as PNG."""
    return {name: _png(figure) for name, figure in build_figures(data).items()}


def build_figures(data: dict[str, Any]) -> dict[str, Figure]:
    """Every chart of a report's data, by name."""
    return {"volume": _volume(data["volume"]), "sentiment": _sentiment(data["sentiment"]),
            "response": _response(data["response"]), "acceptance": _acceptance(data["acceptance"])}


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _figure(title: str) -> tuple[Figure, Any]:
    figure = Figure(figsize=SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _counts(axes: Any, label: str = "cases") -> None:
    """A count axis: whole numbers only (a few cases would otherwise get ticks at 0.5, 1.5, ...)."""
    axes.set_ylabel(label)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))


def _empty(axes: Any) -> None:
    axes.text(0.5, 0.5, "no data in this period", ha="center", va="center", transform=axes.transAxes,
              color="#777777")
    axes.set_xticks([])
    axes.set_yticks([])


def _volume(volume: dict[str, Any]) -> Figure:
    figure, axes = _figure("Volume by channel and kind")
    grid = volume["by_channel_kind"]
    if not grid:
        _empty(axes)
        return figure
    channels = sorted(grid, key=lambda ch: -sum(grid[ch].values()))
    kinds = list(volume["by_kind"])
    bottom = [0] * len(channels)
    for kind in kinds:
        values = [grid[ch].get(kind, 0) for ch in channels]
        axes.bar(channels, values, bottom=bottom, label=kind, color=PALETTE.get(kind, "#999999"))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for x, total in enumerate(bottom):
        axes.annotate(str(total), (x, total), ha="center", va="bottom", fontsize=8)
    _counts(axes)
    axes.legend(fontsize=8, frameon=False, ncols=min(4, len(kinds)))
    return figure


def _sentiment(sentiment: dict[str, Any]) -> Figure:
    figure, axes = _figure("Daily volume and mean sentiment")
    daily = sentiment["daily"]
    if not any(d["cases"] for d in daily):
        _empty(axes)
        return figure
    days = [d["date"][5:] for d in daily]
    axes.bar(days, [d["negative"] for d in daily], color="#d1495b", label="negative")
    axes.bar(days, [d["neutral"] for d in daily], bottom=[d["negative"] for d in daily], color="#c9cdd2",
             label="neutral")
    axes.bar(days, [d["positive"] for d in daily], bottom=[d["negative"] + d["neutral"] for d in daily],
             color="#66a182", label="positive")
    _counts(axes)
    line = axes.twinx()
    points = [(x, d["mean"]) for x, d in enumerate(daily) if d["mean"] is not None]
    line.plot([p[0] for p in points], [p[1] for p in points], color="#2e4057", marker="o", markersize=3,
              label="mean sentiment")
    line.axhline(0, color="#2e4057", linewidth=0.5, linestyle=":")
    line.set_ylim(-1, 1)
    line.set_ylabel("mean sentiment (-1..1)")
    step = max(1, len(days) // 10)
    axes.set_xticks(range(0, len(days), step), [days[i] for i in range(0, len(days), step)], fontsize=8)
    axes.legend(fontsize=8, frameon=False, loc="upper left", ncols=3)
    return figure


def _response(response: dict[str, Any]) -> Figure:
    figure, axes = _figure("Time to first posted reply (minutes)")
    minutes = response["first_response_minutes"]
    if not minutes:
        _empty(axes)
        return figure
    edges = [0, 5, 15, 30, 60, 120, 240, 480, 1440, float("inf")]
    labels = ["<5", "5-15", "15-30", "30-60", "1-2h", "2-4h", "4-8h", "8-24h", ">24h"]
    counts = [sum(1 for m in minutes if lo <= m < hi) for lo, hi in itertools.pairwise(edges)]
    axes.bar(labels, counts, color="#00798c")
    for x, n in enumerate(counts):
        if n:
            axes.annotate(str(n), (x, n), ha="center", va="bottom", fontsize=8)
    _counts(axes)
    median = response["first_response_minutes_median"]
    axes.text(0.99, 0.95, f"median {median:.0f} min", transform=axes.transAxes, ha="right", va="top", fontsize=9)
    return figure


def _acceptance(acceptance: dict[str, Any]) -> Figure:
    figure, axes = _figure("Drafts by kind: share approved, rejected, waiting")
    by_kind = acceptance["by_kind"]
    if not by_kind:
        _empty(axes)
        return figure
    kinds = list(by_kind)
    left = [0.0] * len(kinds)
    for status in ("approved", "rejected", "waiting"):
        shares = [by_kind[k][status] / max(1, by_kind[k]["drafted"]) for k in kinds]
        axes.barh(kinds, shares, left=left, color=STATUS_COLOURS[status], label=status)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    for y, kind in enumerate(kinds):
        figures = by_kind[kind]
        rate, distance = figures["acceptance_rate"], figures["edit_distance_mean"]
        note = f"n={figures['drafted']}, " + (f"{rate * 100:.0f}% accepted" if rate is not None else "undecided")
        if distance is not None:
            note += f", mean edit {distance:.0f} chars"
        axes.annotate(note, (1.0, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    axes.set_xlim(0, 1.75)
    axes.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
    axes.legend(fontsize=8, frameon=False, loc="lower right")
    return figure
