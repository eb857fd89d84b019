"""The Review screen (reviewers and admins): the queue, one item with its sources, its edit as a live diff and
its audit trail; approve, edit, reject, reopen; publish the approved and see the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from copilot.errors import ConflictError
from copilot.queue.records import ITEM_KINDS, ReviewItem
from copilot.ui import handlers as h
from copilot.ui import render as r
from copilot.ui.access import account
from copilot.ui.callbacks import Context, Updates, guarded

OUTBOX_WIDTHS: list[str | int] = ["5%", "7%", "8%", "9%", "41%", "11%", "8%", "11%"]


@dataclass(frozen=True, eq=False)
class ReviewScreen:
    tab: gr.Tab
    version: gr.State  # the version of the item the reviewer saw: an action on an older one is a conflict
    original: gr.State  # the item's text as drafted, for the live diff of the reviewer's edit
    show: gr.Dropdown
    kind: gr.Dropdown
    refresh: gr.Button
    table: gr.Dataframe
    item_pick: gr.Dropdown
    item_load: gr.Button
    detail: gr.HTML
    text: gr.Textbox
    diff: gr.HTML
    approve: gr.Button
    save: gr.Button
    reopen: gr.Button
    reason: gr.Textbox
    reject: gr.Button
    message: gr.HTML
    sources: gr.HTML
    audit: gr.Markdown
    publish: gr.Button
    published: gr.HTML
    outbox: gr.Dataframe

    @property
    def item_view(self) -> list[Any]:
        """The components :func:`item_shown` updates."""
        return [self.detail, self.text, self.diff, self.sources, self.audit, self.version, self.original]

    @property
    def lists(self) -> list[Any]:
        """The components :func:`listed` updates."""
        return [self.table, self.item_pick]


def build(ctx: Context) -> ReviewScreen:
    # Hidden until the page knows the user may review (Gradio can show a tab later, not hide it).
    with gr.Tab("Review", id="review", elem_id="tab-review", visible=False) as tab:
        version = gr.State(None)
        original = gr.State(None)
        with gr.Row():
            show = gr.Dropdown(label="Show", choices=list(h.REVIEW_FILTERS), value="pending,escalated",
                               elem_id="review-filter")
            kind = gr.Dropdown(label="Kind", choices=["all", *ITEM_KINDS], value="all", elem_id="review-kind")
            refresh = gr.Button("Refresh", size="sm", elem_id="review-refresh")
        table = gr.Dataframe(headers=r.REVIEW_HEADERS, interactive=False, wrap=True, elem_id="review-table",
                             label="Review queue", column_widths=r.REVIEW_WIDTHS)
        with gr.Row():
            item_pick = gr.Dropdown(label="Pick an item", choices=[], elem_id="item-pick", scale=4,
                                    allow_custom_value=True)
            item_load = gr.Button("Load", elem_id="item-load", scale=1)
        detail = gr.HTML(elem_id="item-detail")
        with gr.Row():
            with gr.Column(scale=3):
                text = gr.Textbox(label="Reply text (edit to edit-and-approve)", lines=5, interactive=True,
                                  elem_id="item-text")
                gr.Markdown("**Changes from the draft**")
                diff = gr.HTML(elem_id="item-diff")
                with gr.Row():
                    approve = gr.Button("Approve", variant="primary", elem_id="approve-btn")
                    save = gr.Button("Save edit", elem_id="save-btn")
                    reopen = gr.Button("Reopen", elem_id="reopen-btn")
                with gr.Row():
                    reason = gr.Textbox(show_label=False, placeholder="Reason for rejecting",
                                        elem_id="reject-reason", scale=3)
                    reject = gr.Button("Reject", variant="stop", elem_id="reject-btn", scale=1)
                message = gr.HTML(elem_id="review-msg")
            with gr.Column(scale=2):
                gr.Markdown("#### Sources")
                sources = gr.HTML(elem_id="item-sources")
        with gr.Accordion("Audit trail", open=False):
            audit = gr.Markdown(elem_id="item-audit")
        gr.Markdown("### Publish and outbox")
        publish = gr.Button("Publish approved", variant="primary", elem_id="publish-btn")
        published = gr.HTML(elem_id="publish-msg")
        outbox = gr.Dataframe(headers=r.OUTBOX_HEADERS, interactive=False, wrap=True, elem_id="outbox-table",
                              label="Outbox", column_widths=OUTBOX_WIDTHS)
    screen = ReviewScreen(tab, version, original, show, kind, refresh, table, item_pick, item_load, detail, text,
                          diff, approve, save, reopen, reason, reject, message, sources, audit, publish, published,
                          outbox)
    _wire_queue(ctx, screen)
    _wire_actions(ctx, screen)
    _wire_publish(ctx, screen)
    return screen


def listed(ctx: Context, s: ReviewScreen, user: str, show: str, kind: str,
           current: ReviewItem | None = None) -> Updates:
    """The queue under the filters; the item just acted on stays pickable even when it left the filter."""
    items = h.review_list(ctx.pipeline, user, show, kind)
    shown = items if current is None or current.id in {i.id for i in items} else [current, *items]
    return {s.table: r.review_rows(items), s.item_pick: gr.Dropdown(choices=r.item_choices(shown))}


def item_shown(ctx: Context, s: ReviewScreen, user: str, item_id: int | None) -> Updates:
    """One item as the reviewer sees it."""
    d = h.review_detail(ctx.pipeline, user, item_id)
    return {s.detail: r.detail_html(d), s.text: d.item.text, s.diff: r.diff_html(d.diff),
            s.sources: r.sources_html(d.sources), s.audit: r.audit_md(d.audit), s.version: d.item.version,
            s.original: d.item.original_text}


def live_diff(original: str | None, text: str | None) -> str:
    """The changes from the draft as the reviewer types (before anything is saved)."""
    return r.diff_html(h.diff_words(original or "", text or ""))


def refreshed(ctx: Context, s: ReviewScreen) -> Callable[..., Updates]:
    """The callback that lists the queue again under the filters (inputs: the two filters)."""
    def on_refresh(show: str, kind: str, request: gr.Request) -> Updates:
        return guarded(request, s.message, lambda user: {**listed(ctx, s, user, show, kind), s.message: ""})
    return on_refresh


def _wire_queue(ctx: Context, s: ReviewScreen) -> None:
    on_refresh = refreshed(ctx, s)
    for trigger in (s.refresh.click, s.show.change, s.kind.change):
        trigger(on_refresh, [s.show, s.kind], [*s.lists, s.message])

    def on_item_load(item_id: int | None, request: gr.Request) -> Updates:
        return guarded(request, s.message, lambda user: {**item_shown(ctx, s, user, item_id), s.message: ""})
    s.item_load.click(on_item_load, s.item_pick, [*s.item_view, s.message])
    s.item_pick.change(on_item_load, s.item_pick, [*s.item_view, s.message])
    # On every change of the text, typed or pasted (.input missed a whole-text replacement in Chromium).
    s.text.change(live_diff, [s.original, s.text], s.diff, show_progress="hidden", trigger_mode="always_last")

    def on_tab(show: str, kind: str, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            if "review" not in account(ctx.pipeline, user).screens:
                return {s.message: ""}
            return {**listed(ctx, s, user, show, kind), s.outbox: r.outbox_rows(h.outbox(ctx.pipeline, user)),
                    s.message: ""}
        return guarded(request, s.message, run)
    s.tab.select(on_tab, [s.show, s.kind], [*s.lists, s.outbox, s.message])


def _wire_actions(ctx: Context, s: ReviewScreen) -> None:
    pipeline = ctx.pipeline

    def review_action(verb: str, act: Callable[..., ReviewItem]) -> Callable[..., Updates]:
        def on_action(item_id: int | None, version: int | None, text: str, why: str, show: str, kind: str,
                      request: gr.Request) -> Updates:
            def run(user: str) -> Updates:
                try:
                    item = act(user, item_id, version, text, why)
                except ConflictError as exc:
                    # Show the item as it is now, and say plainly that nothing was applied.
                    current = pipeline.queue.get(int(item_id)) if item_id is not None else None
                    return {**item_shown(ctx, s, user, item_id), **listed(ctx, s, user, show, kind, current),
                            s.message: r.error_md(f"Conflict: {exc}. It is reloaded below as it is now: check it, "
                                                  "then retry.")}
                return {**item_shown(ctx, s, user, item.id), **listed(ctx, s, user, show, kind, item),
                        s.message: r.ok_md(f"Item #{item.id} {verb}: now {item.status} (version {item.version}).")}
            return guarded(request, s.message, run)
        return on_action

    # The API's inputs: item, text, reason, the two filters (the version is page state).
    inputs = [s.item_pick, s.version, s.text, s.reason, s.show, s.kind]
    outputs = [*s.item_view, *s.lists, s.message]
    s.approve.click(review_action("approved", lambda u, i, v, t, _w: h.approve(pipeline, u, i, v, t)),
                    inputs, outputs, api_name="approve")
    s.save.click(review_action("saved", lambda u, i, v, t, _w: h.save_edit(pipeline, u, i, v, t)), inputs, outputs)
    s.reject.click(review_action("rejected", lambda u, i, v, _t, w: h.reject(pipeline, u, i, v, w)),
                   inputs, outputs, api_name="reject")
    s.reopen.click(review_action("reopened", lambda u, i, v, _t, _w: h.reopen(pipeline, u, i, v)), inputs, outputs)


def _wire_publish(ctx: Context, s: ReviewScreen) -> None:
    def on_publish(show: str, kind: str, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            report = h.publish(ctx.pipeline, user)
            return {s.published: r.publish_md(report), s.outbox: r.outbox_rows(h.outbox(ctx.pipeline, user)),
                    **listed(ctx, s, user, show, kind)}
        return guarded(request, s.published, run)
    s.publish.click(on_publish, [s.show, s.kind], [s.published, s.outbox, *s.lists], api_name="publish")
