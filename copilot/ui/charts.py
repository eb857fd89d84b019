"""Matplotlib charts of the insights (rendered on the server, so the page needs nothing from outside)."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot

import matplotlib.pyplot as plt

from copilot.ui.insights import Insights

COLOUR = "#2563eb"


def bar_chart(counts: dict[str, int], title: str, *, horizontal: bool = True) -> Any:
    """A small bar chart of counts; an empty one says so."""
    fig, ax = plt.subplots(figsize=(5.2, 2.8), dpi=100)
    if not counts:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", color="#6b7280")
        ax.set_axis_off()
    elif horizontal:
        labels, values = list(counts)[::-1], list(counts.values())[::-1]
        ax.barh(labels, values, color=COLOUR)
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        ax.bar(list(counts), list(counts.values()), color=COLOUR)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(axis="x", labelrotation=45)
    ax.set_title(title, fontsize=11)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    plt.close(fig)  # the figure lives on in the component; pyplot must not keep it
    return fig


def insight_charts(data: Insights) -> list[Any]:
    """The four charts of the insights screen."""
    return [
        bar_chart(data.by_message_kind, "Messages by kind"),
        bar_chart(data.by_channel, "Messages by channel"),
        bar_chart(data.by_status, "Queue items by status"),
        bar_chart(data.by_day, "Drafts per day", horizontal=False),
    ]
