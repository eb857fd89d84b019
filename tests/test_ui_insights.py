"""The Insights screen's charts: a count axis has whole-number ticks, however few the cases."""

from __future__ import annotations

from typing import Any

import pytest

from copilot.community.charts import build_figures, render_charts

# A quiet week: one or two of everything, where matplotlib's own ticks would fall at 0.25, 0.5, ...
DATA: dict[str, Any] = {
    "volume": {"by_channel_kind": {"twitter": {"complaint": 1, "question": 1}, "forum": {"question": 1}},
               "by_kind": {"complaint": 1, "question": 2}},
    "sentiment": {"daily": [
        {"date": "2026-03-01", "cases": 1, "mean": -0.5, "negative": 1, "neutral": 0, "positive": 0},
        {"date": "2026-03-02", "cases": 2, "mean": 0.2, "negative": 0, "neutral": 1, "positive": 1},
        {"date": "2026-03-03", "cases": 0, "mean": None, "negative": 0, "neutral": 0, "positive": 0}]},
    "response": {"first_response_minutes": [3.0, 20.0, 21.0], "first_response_minutes_median": 20.0},
    "acceptance": {"by_kind": {"reply": {"drafted": 3, "approved": 2, "rejected": 1, "waiting": 0,
                                         "acceptance_rate": 0.67, "edit_distance_mean": 12.0}}},
}


@pytest.mark.parametrize("chart", ["volume", "sentiment", "response"])
def test_count_axes_have_whole_number_ticks(chart: str) -> None:
    figure = build_figures(DATA)[chart]
    figure.canvas.draw()
    counts = figure.axes[0]  # the sentiment chart's second axis (mean sentiment, -1..1) is not a count
    assert counts.get_ylabel() == "cases"
    ticks = [t for t in counts.get_yticks() if counts.get_ylim()[0] <= t <= counts.get_ylim()[1]]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_the_charts_still_render_as_png() -> None:
    pngs = render_charts(DATA)
    assert set(pngs) == {"volume", "sentiment", "response", "acceptance"}
    assert all(png.startswith(b"\x89PNG") for png in pngs.values())
