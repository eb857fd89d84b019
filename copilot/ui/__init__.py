"""The web app (Gradio): inbox and reply for agents, the review queue, community, knowledge and insights.

``handlers`` holds what each screen does as plain functions; ``app`` maps them to Gradio components.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline


def build_app(pipeline: Pipeline, **kwargs: Any) -> Any:
    """The Gradio Blocks of the app (imports Gradio only when called)."""
    from copilot.ui.app import build_app as build

    return build(pipeline, **kwargs)
