"""One server on one port: the API and webhooks (``build_api``) with the Gradio web app mounted at ``/``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr
from fastapi import FastAPI
from starlette.routing import Match, Mount
from starlette.types import Scope

from copilot.api.app import build_api
from copilot.api.context import IntakeLike
from copilot.api.limits import limited

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline
    from copilot.ui.warmup import Warmup


class WebAppMount(Mount):
    """The web app at ``/``, leaving the API's and the webhooks' paths to the API: an unknown API path is the
    API's JSON 404 and a wrong method its 405, never the web app's page."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and limited(scope["path"]):
            return Match.NONE, {}
        return super().matches(scope)


def build_server(pipeline: Pipeline, *, warmup: Warmup | None = None, intake: IntakeLike | None = None
                 ) -> FastAPI:
    """The API with the web app mounted at ``/``; logins to the web app are checked against the queue's users."""
    from copilot.ui import render as r
    from copilot.ui.app import THEME, build_app
    from copilot.ui.auth import LOGIN_MESSAGE, LoginGuard

    app = build_api(pipeline, intake=intake, warmup=warmup)
    demo = build_app(pipeline, warmup=warmup)
    demo.queue(default_concurrency_limit=4)
    gr.mount_gradio_app(
        app, demo, path="/", auth=LoginGuard(pipeline.queue), auth_message=LOGIN_MESSAGE, ssr_mode=False,
        mcp_server=False, show_error=False, footer_links=["settings"], run_history=False, theme=THEME, css=r.CSS,
        js=r.TOAST_JS, allowed_paths=[str(pipeline.settings.data_dir / "reports")],
    )
    mounted = app.router.routes[-1]
    assert isinstance(mounted, Mount) and mounted.path == "", "mount_gradio_app adds the web app's Mount last"
    app.router.routes[-1] = WebAppMount("/", app=mounted.app, name=mounted.name)
    return app
