"""The Gradio app: the screens of ``copilot.ui.screens`` put together, and the server that serves them.

Every callback takes the logged-in user from ``gr.Request`` and passes it to a handler, which checks the
role on the server. Every error becomes a readable message in the page (and a short toast); an unexpected
one is logged with its traceback on the server and shown only by its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import gradio as gr

from copilot.ui import render as r
from copilot.ui.access import account
from copilot.ui.auth import LOGIN_MESSAGE, LoginGuard
from copilot.ui.callbacks import Context, Updates, guarded
from copilot.ui.screens import account as account_screen
from copilot.ui.screens import community, header, inbox, incidents, insights, knowledge, reply, review
from copilot.ui.warmup import Warmup

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

TITLE = "Reply copilot"
# Fonts the browser already has: the default theme would fetch web fonts from outside.
THEME = gr.themes.Default(font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                          font_mono=["ui-monospace", "Consolas", "monospace"])


@dataclass(frozen=True, eq=False)
class Screens:
    """The app's Blocks and every screen in it, by name."""

    demo: gr.Blocks
    tabs: gr.Tabs
    header: header.Header
    inbox: inbox.InboxScreen
    reply: reply.ReplyScreen
    review: review.ReviewScreen
    community: community.CommunityScreen
    knowledge: knowledge.KnowledgeScreen
    insights: insights.InsightsScreen
    account: account_screen.AccountScreen
    incidents: incidents.IncidentsScreen

    @property
    def role_tabs(self) -> dict[str, gr.Tab]:
        """The tabs a role may miss, by the screen name the access rules use (each starts hidden or shown)."""
        return {"inbox": self.inbox.tab, "reply": self.reply.tab, "review": self.review.tab,
                "community": self.community.tab, "knowledge": self.knowledge.tab, "insights": self.insights.tab}


def build_screens(pipeline: Pipeline, *, warmup: Warmup | None = None) -> Screens:
    """Every screen of the app for one pipeline, wired. ``warmup`` (started by the caller) loads the heavy parts."""
    ctx = Context(pipeline, warmup)
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as demo:
        top = header.build(ctx)
        with gr.Tabs(elem_id="tabs") as tabs:
            inbox_ = inbox.build(ctx)
            reply_ = reply.build(ctx, inbox_, tabs)
            review_ = review.build(ctx)
            incidents_ = incidents.build(ctx, top, tabs)
            community_ = community.build(ctx, review_, tabs)
            knowledge_ = knowledge.build(ctx, top)
            insights_ = insights.build(ctx)
            account_ = account_screen.build(ctx, top)
        screens = Screens(demo, tabs, top, inbox_, reply_, review_, community_, knowledge_, insights_, account_,
                          incidents_)
        _wire_login(ctx, screens)
        _wire_banner(ctx, screens)
    return screens


def build_app(pipeline: Pipeline, *, warmup: Warmup | None = None) -> gr.Blocks:
    """The whole app for one pipeline. ``warmup`` (started by the caller) loads the heavy parts."""
    return build_screens(pipeline, warmup=warmup).demo


def on_login(ctx: Context, s: Screens, user: str) -> Updates:
    """What the page shows a user who just opened it: their tabs (only ever shown: a tab a role may miss
    starts hidden), the start tab, the inbox, and for an admin the checklist and the users."""
    acct = account(ctx.pipeline, user)
    shown = {tab: gr.Tab(visible=True) for name, tab in s.role_tabs.items() if name in acct.screens}
    start = "review" if "review" in acct.screens else "inbox"
    return {**header.on_login(ctx, s.header, user), s.tabs: gr.Tabs(selected=start), **shown,
            **inbox.listed(ctx, s.inbox, user), s.knowledge.reindex: gr.Button(visible="reindex" in acct.screens),
            **account_screen.on_login(ctx, s.account, user), **incidents.banner(ctx, s.header, user),
            s.inbox.message: ""}


def _wire_login(ctx: Context, s: Screens) -> None:
    def on_load(request: gr.Request) -> Updates:
        return guarded(request, s.inbox.message, lambda user: on_login(ctx, s, user))
    s.demo.load(on_load, None, [s.header.account, s.header.warmup, s.header.first_steps, s.tabs,
                                *s.role_tabs.values(), *s.inbox.lists, s.knowledge.reindex, s.account.admin,
                                s.account.users, s.header.banner, s.inbox.message])


def _wire_banner(ctx: Context, s: Screens) -> None:
    """The incident banner again on the other screens' refresh paths (the Incidents screen refreshes it too)."""
    def on_refresh(request: gr.Request) -> Updates:
        return guarded(request, s.inbox.message, lambda user: incidents.banner(ctx, s.header, user))
    triggers = [s.inbox.refresh.click, s.review.refresh.click, s.community.refresh.click,
                *(tab.select for tab in (s.inbox.tab, s.reply.tab, s.review.tab, s.community.tab, s.insights.tab))]
    for trigger in triggers:
        trigger(on_refresh, None, [s.header.banner, s.inbox.message], show_progress="hidden")


def launch(pipeline: Pipeline, *, host: str = "127.0.0.1", port: int = 7860, warmup: Warmup | None = None,
           block: bool = True, quiet: bool = False) -> gr.Blocks:
    """Start the app with logins checked against the queue's users; return the running Blocks."""
    demo = build_app(pipeline, warmup=warmup)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        auth=LoginGuard(pipeline.queue), auth_message=LOGIN_MESSAGE, server_name=host, server_port=port,
        prevent_thread_lock=not block, share=False, ssr_mode=False, mcp_server=False, show_error=False,
        quiet=quiet, footer_links=["settings"], run_history=False, theme=THEME, css=r.CSS, js=r.TOAST_JS,
        allowed_paths=[str(pipeline.settings.data_dir / "reports")],  # the insights report's download
    )
    return demo
