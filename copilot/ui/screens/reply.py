"""The Reply screen: triage a message, stream a grounded draft beside the knowledge behind it, rewrite it,
submit it for approval. It also opens a case picked in the Inbox, and a submit refreshes the Inbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from copilot.config import CHANNELS
from copilot.errors import UserError
from copilot.guardrails import parse_reply
from copilot.ui import handlers as h
from copilot.ui import render as r
from copilot.ui.access import require
from copilot.ui.callbacks import Context, Updates, failure, guarded, streamed, username
from copilot.ui.samples import SAMPLES
from copilot.ui.screens import inbox as inbox_screen
from copilot.ui.screens.inbox import InboxScreen

REWRITES = (("shorter", "Shorter", "rw-shorter"), ("warmer", "Warmer", "rw-warmer"),
            ("formal", "More formal", "rw-formal"), ("translate", "Translate to", "rw-translate"))


@dataclass(frozen=True, eq=False)
class ReplyScreen:
    tab: gr.Tab
    draft: gr.State  # the Draft behind the reply box (None until drafted)
    inbound_id: gr.State  # the case's inbound id, so drafting again joins the same case
    sample: gr.Dropdown
    message: gr.Textbox
    channel: gr.Dropdown
    author: gr.Textbox
    draft_btn: gr.Button
    triage: gr.HTML
    reply: gr.Textbox
    status: gr.HTML
    rewrites: dict[str, gr.Button]
    language: gr.Textbox
    submit: gr.Button
    note: gr.HTML
    sources: gr.HTML
    thread: gr.HTML  # the conversation of a case opened from the Inbox

    @property
    def buttons(self) -> list[gr.Button]:
        """What acts on the reply box: locked while a draft or a rewrite streams into it."""
        return [self.draft_btn, *self.rewrites.values(), self.submit]


def build(ctx: Context, inbox: InboxScreen, tabs: gr.Tabs) -> ReplyScreen:
    with gr.Tab("Reply", id="reply", elem_id="tab-reply") as tab:
        draft_state = gr.State(None)
        inbound_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                sample = gr.Dropdown(label="Or pick a sample message", elem_id="sample",
                                     choices=[(s["label"], n) for n, s in enumerate(SAMPLES)], value=None)
                thread = gr.HTML(elem_id="reply-thread")
                message = gr.Textbox(label="Inbound message", lines=4, elem_id="message",
                                     placeholder="Paste the customer's message here")
                with gr.Row():
                    channel = gr.Dropdown(label="Channel", choices=list(CHANNELS), value="twitter",
                                          elem_id="channel")
                    author = gr.Textbox(label="Author", placeholder="@handle (optional)", elem_id="author")
                draft_btn = gr.Button("Draft reply", variant="primary", elem_id="draft-btn")
                triage = gr.HTML(elem_id="triage")
                reply = gr.Textbox(label="Draft (edit freely before submitting)", lines=6, interactive=True,
                                   elem_id="reply-text")
                status = gr.HTML(elem_id="draft-status")
                with gr.Row(equal_height=True):
                    rewrites = {action: gr.Button(label, size="sm", elem_id=elem) for action, label, elem in REWRITES}
                    language = gr.Textbox(show_label=False, placeholder="e.g. Spanish", elem_id="rw-language",
                                          container=False, min_width=120)
                submit = gr.Button("Submit for approval", variant="primary", elem_id="submit-btn")
                note = gr.HTML(elem_id="reply-msg")
            with gr.Column(scale=2):
                gr.Markdown("#### Knowledge behind the draft")
                sources = gr.HTML(elem_id="sources")
    screen = ReplyScreen(tab, draft_state, inbound_state, sample, message, channel, author, draft_btn, triage,
                         reply, status, rewrites, language, submit, note, sources, thread)
    _wire_form(ctx, screen)
    _wire_draft(ctx, screen)
    _wire_submit(ctx, screen, inbox)
    _wire_case_open(ctx, screen, inbox, tabs)
    return screen


def _wire_form(ctx: Context, s: ReplyScreen) -> None:
    def on_sample(index: int | None) -> Updates:
        if index is None:
            return {}
        sample = SAMPLES[int(index)]
        return {s.message: sample["text"], s.channel: sample["channel"], s.author: sample["author"],
                s.inbound_id: None, s.thread: ""}
    s.sample.change(on_sample, s.sample, [s.message, s.channel, s.author, s.inbound_id, s.thread])
    # A new message is a new case: forget the id (and the conversation) of the one picked before.
    s.message.input(lambda: (None, ""), None, [s.inbound_id, s.thread])


def _locked(s: ReplyScreen, locked: bool) -> Callable[[], Updates]:
    def set_lock() -> Updates:
        return {button: gr.Button(interactive=not locked) for button in s.buttons}
    return set_lock


def _wire_draft(ctx: Context, s: ReplyScreen) -> None:
    pipeline = ctx.pipeline

    def on_draft(text: str, chan: str, who: str, inbound_id: str | None, request: gr.Request) -> Iterator[Updates]:
        try:
            user = username(request)
            require(pipeline, user, "reply")
            h.inbound_from(text, chan, who, inbound_id)  # fail fast on empty input, before waiting
            for waiting in ctx.wait_for(("index", "triage", "chat")):
                yield {s.status: r.note_md(waiting), s.note: ""}
            yield {s.triage: "", s.reply: "", s.status: r.note_md("Drafting…"), s.sources: "", s.draft: None,
                   s.note: ""}
            for partial, result in streamed(lambda on_token: h.draft_reply(
                    pipeline, user, text, chan, who, inbound_id=inbound_id, on_token=on_token)):
                if result is None:
                    yield {s.reply: parse_reply(partial).text}
                    continue
                d = result.draft
                yield {s.triage: r.triage_html(d.triage), s.reply: d.text,
                       s.status: r.draft_status_html(d, spam_case=result.spam_case_id),
                       s.sources: r.sources_html(result.sources), s.draft: d, s.inbound_id: result.inbound_id,
                       s.note: ""}
        except Exception as exc:  # noqa: BLE001 - the UI's boundary
            yield failure(exc, s.note)

    # While a draft or a rewrite streams, nothing else may act on the reply box: the buttons are locked
    # first (without waiting in the queue) and unlocked when the work ends, whatever its outcome.
    lock, unlock = _locked(s, True), _locked(s, False)
    s.draft_btn.click(lock, None, s.buttons, queue=False).then(
        on_draft, [s.message, s.channel, s.author, s.inbound_id],
        [s.triage, s.reply, s.status, s.sources, s.draft, s.inbound_id, s.note],
        api_name="draft").then(unlock, None, s.buttons, queue=False)

    def rewriter(action: str) -> Callable[..., Iterator[Updates]]:
        def on_rewrite(text: str, chan: str, lang: str, request: gr.Request) -> Iterator[Updates]:
            try:
                user = username(request)
                require(pipeline, user, "reply")
                if not (text or "").strip():
                    raise UserError("there is no draft to rewrite yet")
                for waiting in ctx.wait_for(("chat",)):
                    yield {s.note: r.note_md(waiting)}
                yield {s.note: r.note_md(f"Rewriting ({action})…")}
                for _partial, result in streamed(lambda on_token: h.rewrite_reply(
                        pipeline, user, text, action, chan, lang, on_token=on_token)):
                    if result is not None:
                        yield {s.reply: result, s.note: r.ok_md(f"Rewritten: {action}. Check it before submitting.")}
            except Exception as exc:  # noqa: BLE001 - the UI's boundary
                yield failure(exc, s.note)
        return on_rewrite

    for action, button in s.rewrites.items():
        button.click(lock, None, s.buttons, queue=False).then(
            rewriter(action), [s.reply, s.channel, s.language], [s.reply, s.note]).then(
            unlock, None, s.buttons, queue=False)


def _wire_submit(ctx: Context, s: ReplyScreen, inbox: InboxScreen) -> None:
    def on_submit(draft: Any, text: str, show: str, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            item = h.submit_reply(ctx.pipeline, user, draft, text)
            escalated = " It is escalated: a trained person takes it from here." if item.status == "escalated" else ""
            return {s.draft: None,
                    s.note: r.ok_md(f"Submitted as item #{item.id} ({item.status}), waiting for a reviewer.{escalated}"),
                    **inbox_screen.listed(ctx, inbox, user, show)}
        return guarded(request, s.note, run)
    s.submit.click(on_submit, [s.draft, s.reply, inbox.show], [s.draft, s.note, *inbox.lists], api_name="submit")


def _wire_case_open(ctx: Context, s: ReplyScreen, inbox: InboxScreen, tabs: gr.Tabs) -> None:
    def on_case_open(case_id: int | None, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            view = h.open_case(ctx.pipeline, user, case_id)
            case = view.case
            thread = r.thread_html(view.thread, customer=case.author) if len(view.thread) > 1 else ""
            return {tabs: gr.Tabs(selected="reply"), s.thread: thread, s.message: case.text, s.channel: case.channel,
                    s.author: case.author or "", s.inbound_id: case.inbound_id or h.new_inbound_id(),
                    s.draft: None, s.reply: "", s.triage: r.triage_html(case.triage), s.status: "",
                    s.sources: "", inbox.message: ""}
        return guarded(request, inbox.message, run)
    inbox.case_open.click(on_case_open, inbox.case_pick,
                          [tabs, s.thread, s.message, s.channel, s.author, s.inbound_id, s.draft, s.reply, s.triage,
                           s.status, s.sources, inbox.message])
