"""The Community screen (Gradio): discussion starters, promoters and outreach, FAQ proposals.

Everything drafted here goes to the review queue as ``starter``, ``outreach`` or ``faq_proposal`` items and
is approved, edited or rejected on the Review screen like a reply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr

from copilot.config import CHANNELS
from copilot.ui import community_handlers as ch
from copilot.ui import render as r
from copilot.ui.common import call, failure, username

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

FORMATS = ("question", "poll", "challenge", "event", "ama")
OUTREACH = ("thanks", "beta", "guest_post", "ama", "advocate")


def build_community_tab(pipeline: Pipeline, wait_for: Callable[[tuple[str, ...]], Iterator[str]]
                        ) -> tuple[gr.Button, Callable[..., Any], list[Any]]:
    """The tab's components and callbacks (inside the caller's ``gr.Tab``); returns its "review them" button
    and its refresh callback with that callback's outputs, for the caller to wire across tabs."""
    gr.Markdown("Drafts for the community go to the review queue like replies: nothing is posted until a reviewer "
                "approves it.")
    with gr.Accordion("Discussion starters", open=True):
        with gr.Row():
            topic = gr.Textbox(label="Topic (optional)", placeholder="default: events, recent conversations, "
                               "knowledge themes", elem_id="starter-topic", scale=3)
            fmt = gr.Dropdown(label="Format", choices=[("a mix", ""), *[(f, f) for f in FORMATS]], value="",
                              elem_id="starter-format")
            channel = gr.Dropdown(label="Channel", choices=list(CHANNELS), value="forum", elem_id="starter-channel")
            n = gr.Slider(1, 10, value=3, step=1, label="How many", elem_id="starter-n")
        starters_btn = gr.Button("Draft starters", variant="primary", elem_id="starters-btn")
        starters_msg = gr.HTML(elem_id="starters-msg")
    with gr.Accordion("Promoters and outreach", open=True):
        with gr.Row():
            scan_btn = gr.Button("Scan conversations for promoters", size="sm", elem_id="promoters-scan")
            list_btn = gr.Button("Refresh the registry", size="sm", elem_id="promoters-refresh")
        promoters_table = gr.Dataframe(headers=r.PROMOTER_HEADERS, interactive=False, wrap=True,
                                       elem_id="promoters-table", label="Promoters",
                                       column_widths=["14%", "6%", "20%", "26%", "8%", "9%", "9%", "8%"])
        with gr.Row():
            handle = gr.Dropdown(label="Member", choices=[], allow_custom_value=True, elem_id="outreach-handle",
                                 scale=2)
            kind = gr.Dropdown(label="Invitation", choices=[("chosen from their history", ""),
                                                             *[(k, k) for k in OUTREACH]], value="",
                               elem_id="outreach-kind")
            outreach_btn = gr.Button("Draft outreach", variant="primary", elem_id="outreach-btn")
        with gr.Row():
            reason = gr.Textbox(show_label=False, placeholder="Why they opted out (optional)", scale=3,
                                elem_id="optout-reason")
            optout_btn = gr.Button("Record opt-out", variant="stop", elem_id="optout-btn")
        promoters_msg = gr.HTML(elem_id="promoters-msg")
    with gr.Accordion("FAQ proposals from knowledge gaps", open=False):
        proposals_btn = gr.Button("Draft FAQ proposals", elem_id="proposals-btn")
        proposals_msg = gr.HTML(elem_id="proposals-msg")
    gr.Markdown("#### Community items in the queue")
    with gr.Row():
        refresh = gr.Button("Refresh", size="sm", elem_id="community-refresh")
        review = gr.Button("Review them", size="sm", elem_id="community-review", visible=False)
    table = gr.Dataframe(headers=r.REVIEW_HEADERS, interactive=False, wrap=True, elem_id="community-table",
                         label="Community items", column_widths=r.REVIEW_WIDTHS)
    message = gr.HTML(elem_id="community-msg")

    def items(user: str) -> Any:
        return r.review_rows(ch.community_items(pipeline, user))

    def members(user: str, scan: bool = False) -> tuple[Any, Any]:
        found = ch.promoters(pipeline, user, scan=scan)
        return r.promoter_rows(found), gr.Dropdown(choices=[f"@{m.handle}" for m in found if m.contactable])

    def drafting(work: Callable[[str], Any], what: str) -> Callable[..., Iterator[Any]]:
        """A generator callback: wait for the model, say it is drafting, then show the outcome and the table."""
        def run(*args: Any) -> Iterator[Any]:
            *inputs, request = args
            try:
                user = username(request)
                for note in wait_for(("index", "chat")):
                    yield r.note_md(note), gr.skip()
                yield r.note_md(f"Drafting {what}…"), gr.skip()
                drafted = work(user, *inputs)
                yield r.drafted_md(what, drafted.items, drafted.notes), items(user)
            except Exception as exc:  # noqa: BLE001 - the UI's boundary: every error becomes a message
                yield failure(exc, 2, 0)
        return run

    def on_starters(topic_: str, fmt_: str, channel_: str, n_: float, request: gr.Request) -> Iterator[Any]:
        yield from drafting(lambda user: ch.draft_starters(pipeline, user, topic_, int(n_), fmt_, channel_),
                            "discussion starters")(request)
    starters_btn.click(on_starters, [topic, fmt, channel, n], [starters_msg, table])

    def on_proposals(request: gr.Request) -> Iterator[Any]:
        yield from drafting(lambda user: ch.draft_faq_proposals(pipeline, user), "FAQ proposals")(request)
    proposals_btn.click(on_proposals, None, [proposals_msg, table])

    def on_members(request: gr.Request) -> Any:
        return call(request, 3, 2, lambda user: (*members(user), ""))

    def on_scan(request: gr.Request) -> Any:
        return call(request, 3, 2, lambda user: (*members(user, scan=True), r.ok_md("Scanned the conversations.")))
    list_btn.click(on_members, None, [promoters_table, handle, promoters_msg])
    scan_btn.click(on_scan, None, [promoters_table, handle, promoters_msg])

    def on_outreach(who: str, kind_: str, request: gr.Request) -> Iterator[Any]:
        try:
            user = username(request)
            for note in wait_for(("index", "chat")):
                yield r.note_md(note), gr.skip()
            yield r.note_md(f"Drafting outreach to {who}…"), gr.skip()
            item = ch.draft_outreach(pipeline, user, (who or "").lstrip("@"), kind_)
            yield r.ok_md(f"Drafted outreach #{item.id} to {who}: it waits for a reviewer."), items(user)
        except Exception as exc:  # noqa: BLE001 - the UI's boundary
            yield failure(exc, 2, 0)
    outreach_btn.click(on_outreach, [handle, kind], [promoters_msg, table])

    def on_opt_out(who: str, why: str, request: gr.Request) -> Any:
        def run(user: str) -> Any:
            result = ch.opt_out(pipeline, user, (who or "").lstrip("@"), why)
            note = f"Recorded: @{result.promoter.handle} must not be contacted."
            if result.withdrawn:
                note += f" Withdrew waiting outreach {', '.join(f'#{i}' for i in result.withdrawn)}."
            if result.approved or result.needs_reviewer:
                waiting = (*result.approved, *result.needs_reviewer)
                note += f" A reviewer must stop {', '.join(f'#{i}' for i in waiting)}."
            return (*members(user), r.ok_md(note), items(user))
        return call(request, 4, 2, run)
    optout_btn.click(on_opt_out, [handle, reason], [promoters_table, handle, promoters_msg, table])

    def on_refresh(request: gr.Request) -> Any:
        def run(user: str) -> Any:
            from copilot.ui.handlers import account

            leads = "review" in account(pipeline, user).screens
            return items(user), gr.Button(visible=True) if leads else gr.skip(), ""
        return call(request, 3, 2, run)
    refresh.click(on_refresh, None, [table, review, message])
    return review, on_refresh, [table, review, message]
