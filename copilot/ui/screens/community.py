"""The Community screen: discussion starters, promoters and outreach, FAQ proposals.

Everything drafted here goes to the review queue as ``starter``, ``outreach`` or ``faq_proposal`` items and
is approved, edited or rejected on the Review screen like a reply ("Review them" goes there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from copilot.config import CHANNELS
from copilot.ui import community_handlers as ch
from copilot.ui import render as r
from copilot.ui.access import account
from copilot.ui.callbacks import Context, Updates, failure, guarded, username
from copilot.ui.screens import review as review_screen
from copilot.ui.screens.review import ReviewScreen

FORMATS = ("question", "poll", "challenge", "event", "ama")
OUTREACH = ("thanks", "beta", "guest_post", "ama", "advocate")
PROMOTER_WIDTHS: list[str | int] = ["14%", "6%", "20%", "26%", "8%", "9%", "9%", "8%"]


@dataclass(frozen=True, eq=False)
class CommunityScreen:
    tab: gr.Tab
    topic: gr.Textbox
    format: gr.Dropdown
    channel: gr.Dropdown
    n: gr.Slider
    starters: gr.Button
    starters_note: gr.HTML
    scan: gr.Button
    members_refresh: gr.Button
    members: gr.Dataframe
    handle: gr.Dropdown
    invitation: gr.Dropdown
    outreach: gr.Button
    opt_out_reason: gr.Textbox
    opt_out: gr.Button
    members_note: gr.HTML
    proposals: gr.Button
    proposals_note: gr.HTML
    refresh: gr.Button
    review: gr.Button  # "Review them": shown to those who may review
    table: gr.Dataframe
    message: gr.HTML


def build(ctx: Context, review: ReviewScreen, tabs: gr.Tabs) -> CommunityScreen:
    with gr.Tab("Community", id="community", elem_id="tab-community") as tab:
        gr.Markdown("Drafts for the community go to the review queue like replies: nothing is posted until a "
                    "reviewer approves it.")
        with gr.Accordion("Discussion starters", open=True):
            with gr.Row():
                topic = gr.Textbox(label="Topic (optional)", placeholder="default: events, recent conversations, "
                                   "knowledge themes", elem_id="starter-topic", scale=3)
                fmt = gr.Dropdown(label="Format", choices=[("a mix", ""), *[(f, f) for f in FORMATS]], value="",
                                  elem_id="starter-format")
                channel = gr.Dropdown(label="Channel", choices=list(CHANNELS), value="forum",
                                      elem_id="starter-channel")
                n = gr.Slider(1, 10, value=3, step=1, label="How many", elem_id="starter-n")
            starters = gr.Button("Draft starters", variant="primary", elem_id="starters-btn")
            starters_note = gr.HTML(elem_id="starters-msg")
        with gr.Accordion("Promoters and outreach", open=True):
            with gr.Row():
                scan = gr.Button("Scan conversations for promoters", size="sm", elem_id="promoters-scan")
                members_refresh = gr.Button("Refresh the registry", size="sm", elem_id="promoters-refresh")
            members = gr.Dataframe(headers=r.PROMOTER_HEADERS, interactive=False, wrap=True,
                                   elem_id="promoters-table", label="Promoters", column_widths=PROMOTER_WIDTHS)
            with gr.Row():
                handle = gr.Dropdown(label="Member", choices=[], allow_custom_value=True,
                                     elem_id="outreach-handle", scale=2)
                invitation = gr.Dropdown(label="Invitation", choices=[("chosen from their history", ""),
                                                                      *[(k, k) for k in OUTREACH]], value="",
                                         elem_id="outreach-kind")
                outreach = gr.Button("Draft outreach", variant="primary", elem_id="outreach-btn")
            with gr.Row():
                opt_out_reason = gr.Textbox(show_label=False, placeholder="Why they opted out (optional)", scale=3,
                                            elem_id="optout-reason")
                opt_out = gr.Button("Record opt-out", variant="stop", elem_id="optout-btn")
            members_note = gr.HTML(elem_id="promoters-msg")
        with gr.Accordion("FAQ proposals from knowledge gaps", open=False):
            proposals = gr.Button("Draft FAQ proposals", elem_id="proposals-btn")
            proposals_note = gr.HTML(elem_id="proposals-msg")
        gr.Markdown("#### Community items in the queue")
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm", elem_id="community-refresh")
            review_btn = gr.Button("Review them", size="sm", elem_id="community-review", visible=False)
        table = gr.Dataframe(headers=r.REVIEW_HEADERS, interactive=False, wrap=True, elem_id="community-table",
                             label="Community items", column_widths=r.REVIEW_WIDTHS)
        message = gr.HTML(elem_id="community-msg")
    screen = CommunityScreen(tab, topic, fmt, channel, n, starters, starters_note, scan, members_refresh, members,
                             handle, invitation, outreach, opt_out_reason, opt_out, members_note, proposals,
                             proposals_note, refresh, review_btn, table, message)
    _wire_drafting(ctx, screen)
    _wire_members(ctx, screen)
    _wire_queue(ctx, screen, review, tabs)
    return screen


def _items(ctx: Context, s: CommunityScreen, user: str) -> Updates:
    return {s.table: r.review_rows(ch.community_items(ctx.pipeline, user))}


def _members(ctx: Context, s: CommunityScreen, user: str, scan: bool = False) -> Updates:
    found = ch.promoters(ctx.pipeline, user, scan=scan)
    return {s.members: r.promoter_rows(found),
            s.handle: gr.Dropdown(choices=[f"@{m.handle}" for m in found if m.contactable])}


def _wire_drafting(ctx: Context, s: CommunityScreen) -> None:
    def drafting(note: Any, what: str, work: Callable[[str], ch.Drafted], request: gr.Request
                 ) -> Iterator[Updates]:
        """Wait for the model, say it is drafting, then show the outcome in ``note`` and the table."""
        try:
            user = username(request)
            for waiting in ctx.wait_for(("index", "chat")):
                yield {note: r.note_md(waiting)}
            yield {note: r.note_md(f"Drafting {what}…")}
            drafted = work(user)
            yield {note: r.drafted_md(what, drafted.items, drafted.notes), **_items(ctx, s, user)}
        except Exception as exc:  # noqa: BLE001 - the UI's boundary: every error becomes a message
            yield failure(exc, note)

    def on_starters(topic: str, fmt: str, channel: str, n: float, request: gr.Request) -> Iterator[Updates]:
        yield from drafting(s.starters_note, "discussion starters", lambda user: ch.draft_starters(
            ctx.pipeline, user, topic, int(n), fmt, channel), request)
    s.starters.click(on_starters, [s.topic, s.format, s.channel, s.n], [s.starters_note, s.table])

    def on_proposals(request: gr.Request) -> Iterator[Updates]:
        yield from drafting(s.proposals_note, "FAQ proposals",
                            lambda user: ch.draft_faq_proposals(ctx.pipeline, user), request)
    s.proposals.click(on_proposals, None, [s.proposals_note, s.table])

    def on_outreach(who: str, kind: str, request: gr.Request) -> Iterator[Updates]:
        try:
            user = username(request)
            for waiting in ctx.wait_for(("index", "chat")):
                yield {s.members_note: r.note_md(waiting)}
            yield {s.members_note: r.note_md(f"Drafting outreach to {who}…")}
            item = ch.draft_outreach(ctx.pipeline, user, (who or "").lstrip("@"), kind)
            yield {s.members_note: r.ok_md(f"Drafted outreach #{item.id} to {who}: it waits for a reviewer."),
                   **_items(ctx, s, user)}
        except Exception as exc:  # noqa: BLE001 - the UI's boundary
            yield failure(exc, s.members_note)
    s.outreach.click(on_outreach, [s.handle, s.invitation], [s.members_note, s.table])


def _wire_members(ctx: Context, s: CommunityScreen) -> None:
    def on_members(request: gr.Request) -> Updates:
        return guarded(request, s.members_note, lambda user: {**_members(ctx, s, user), s.members_note: ""})

    def on_scan(request: gr.Request) -> Updates:
        return guarded(request, s.members_note, lambda user: {
            **_members(ctx, s, user, scan=True), s.members_note: r.ok_md("Scanned the conversations.")})
    s.members_refresh.click(on_members, None, [s.members, s.handle, s.members_note])
    s.scan.click(on_scan, None, [s.members, s.handle, s.members_note])

    def on_opt_out(who: str, why: str, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            result = ch.opt_out(ctx.pipeline, user, (who or "").lstrip("@"), why)
            note = f"Recorded: @{result.promoter.handle} must not be contacted."
            if result.withdrawn:
                note += f" Withdrew waiting outreach {', '.join(f'#{i}' for i in result.withdrawn)}."
            if result.approved or result.needs_reviewer:
                waiting = (*result.approved, *result.needs_reviewer)
                note += f" A reviewer must stop {', '.join(f'#{i}' for i in waiting)}."
            return {**_members(ctx, s, user), s.members_note: r.ok_md(note), **_items(ctx, s, user)}
        return guarded(request, s.members_note, run)
    s.opt_out.click(on_opt_out, [s.handle, s.opt_out_reason], [s.members, s.handle, s.members_note, s.table])


def _wire_queue(ctx: Context, s: CommunityScreen, review: ReviewScreen, tabs: gr.Tabs) -> None:
    def on_refresh(request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            leads = "review" in account(ctx.pipeline, user).screens
            return {**_items(ctx, s, user), **({s.review: gr.Button(visible=True)} if leads else {}), s.message: ""}
        return guarded(request, s.message, run)
    for trigger in (s.refresh.click, s.tab.select):
        trigger(on_refresh, None, [s.table, s.review, s.message])
    s.review.click(lambda: gr.Tabs(selected="review"), None, tabs).then(
        review_screen.refreshed(ctx, review), [review.show, review.kind], [*review.lists, review.message])
