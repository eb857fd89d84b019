"""The Community screen: discussion starters and promoter outreach, reviewed like replies.

The drafting of community content lives in ``copilot.community``; until it offers its entry points this
screen says so, and lists the community items already in the queue (reviewed on the Review screen).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gradio as gr

from copilot.ui import handlers as h
from copilot.ui import render as r

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

UNAVAILABLE = ("Community drafting (discussion starters and promoter outreach) is not available in this build "
               "yet. Community items already in the queue are listed below; review them on the Review screen "
               "with the Kind filter.")


def build_community_tab(pipeline: Pipeline, call: Callable[..., Any]) -> None:
    """The Community tab's components and callbacks (inside the caller's ``gr.Tab``)."""
    gr.HTML(r.note_md(UNAVAILABLE), elem_id="community-unavailable")
    refresh = gr.Button("Refresh", size="sm", elem_id="community-refresh")
    table = gr.Dataframe(headers=r.REVIEW_HEADERS, interactive=False, wrap=True, elem_id="community-table",
                         label="Community items in the queue")
    message = gr.HTML(elem_id="community-msg")

    def on_refresh(request: gr.Request) -> Any:
        return call(request, 2, 1, lambda user: (r.review_rows(h.community_items(pipeline, user)), ""))
    refresh.click(on_refresh, None, [table, message])
