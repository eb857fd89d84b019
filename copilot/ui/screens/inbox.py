"""The Inbox screen: open cases, crises first, the spam set aside under its filter, and the agent's own
recent drafts. Opening a case in the reply form is wired by the Reply screen."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from copilot.ui import handlers as h
from copilot.ui import render as r
from copilot.ui.callbacks import Context, Updates, guarded

INBOX_WIDTHS: list[str | int] = ["10%", "6%", "6%", "9%", "8%", "10%", "35%", "7%", "9%"]


@dataclass(frozen=True, eq=False)
class InboxScreen:
    tab: gr.Tab
    show: gr.Dropdown
    refresh: gr.Button
    table: gr.Dataframe
    case_pick: gr.Dropdown
    case_open: gr.Button
    message: gr.HTML
    mine: gr.Dataframe

    @property
    def lists(self) -> list[gr.components.Component]:
        """The components :func:`listed` updates."""
        return [self.table, self.case_pick, self.mine]


def build(ctx: Context) -> InboxScreen:
    with gr.Tab("Inbox", id="inbox", elem_id="tab-inbox") as tab:
        gr.Markdown("Open cases: crises first, then possible crises, then by priority and how long they "
                    "have waited. Messages triaged as spam are under the Spam filter.")
        with gr.Row(equal_height=True):
            show = gr.Dropdown(label="Show", choices=[("Cases", "cases"), ("Spam", "spam"), ("Everything", "all")],
                               value="cases", elem_id="inbox-filter", scale=1)
            refresh = gr.Button("Refresh", size="sm", elem_id="inbox-refresh", scale=0)
        table = gr.Dataframe(headers=r.INBOX_HEADERS, interactive=False, wrap=True, elem_id="inbox-table",
                             label="Inbox", column_widths=INBOX_WIDTHS)
        with gr.Row():
            case_pick = gr.Dropdown(label="Pick a case", choices=[], elem_id="case-pick", scale=4,
                                    allow_custom_value=True)
            case_open = gr.Button("Open in Reply", elem_id="case-open", scale=1)
        message = gr.HTML(elem_id="inbox-msg")
        gr.Markdown("#### Your recent drafts")
        mine = gr.Dataframe(headers=r.MINE_HEADERS, interactive=False, wrap=True, elem_id="mine-table")
    screen = InboxScreen(tab, show, refresh, table, case_pick, case_open, message, mine)

    def on_refresh(show_: str, request: gr.Request) -> Updates:
        return guarded(request, message, lambda user: {**listed(ctx, screen, user, show_), message: ""})
    for trigger in (refresh.click, show.change):
        trigger(on_refresh, show, [*screen.lists, message])
    return screen


def listed(ctx: Context, screen: InboxScreen, user: str, show: str | None = "cases") -> Updates:
    """The inbox's cases (under the ``show`` filter) and the user's own drafts, as the page shows them."""
    rows = h.inbox(ctx.pipeline, user, show=show or "cases")
    return {screen.table: r.inbox_rows(rows), screen.case_pick: gr.Dropdown(choices=r.case_choices(rows), value=None),
            screen.mine: r.mine_rows(h.my_items(ctx.pipeline, user))}
