"""The page header, above the tabs: who is logged in, the warm-up's progress, Log out, the banner of a live
incident (it opens the Incidents screen, which wires it), and for an admin the set-up checklist."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from copilot.ui import render as r
from copilot.ui.access import account
from copilot.ui.callbacks import Context, Updates
from copilot.ui.first_steps import first_steps


@dataclass(frozen=True, eq=False)
class Header:
    account: gr.Markdown
    warmup: gr.Markdown
    logout: gr.Button
    first_steps: gr.HTML
    banner: gr.Button  # "Incident: <title> — N affected, <status>", hidden while there is none


def build(ctx: Context) -> Header:
    with gr.Row(equal_height=True):
        account_md = gr.Markdown(elem_id="account")
        warm_md = gr.Markdown(elem_id="warmup")
        logout = gr.Button("Log out", link="/logout", size="sm", scale=0, elem_id="logout")
    banner = gr.Button("", variant="stop", visible=False, elem_id="incident-banner")
    steps = gr.HTML(elem_id="first-steps", visible=False)
    header = Header(account_md, warm_md, logout, steps, banner)
    warmup = ctx.warmup
    if warmup is not None:
        timer = gr.Timer(1.5)

        def on_tick() -> Updates:
            return {warm_md: warmup.summary(), timer: gr.Timer(active=bool(warmup.pending()))}
        timer.tick(on_tick, None, [warm_md, timer], show_progress="hidden")
    return header


def on_login(ctx: Context, header: Header, user: str) -> Updates:
    """The header for a user who just opened the page: the checklist only for an admin with steps left."""
    acct = account(ctx.pipeline, user)
    out: Updates = {header.account: r.account_md(acct),
                    header.warmup: ctx.warmup.summary() if ctx.warmup else ""}
    if "users" in acct.screens:
        steps = first_steps(ctx.pipeline, user, indexing=_indexing(ctx))
        out[header.first_steps] = gr.HTML(r.first_steps_html(steps), visible=not all(s.done for s in steps))
    return out


def steps_update(ctx: Context, header: Header, user: str) -> Updates:
    """The checklist after an admin did something on it (it stays in view, ticked, until the next login)."""
    if "users" not in account(ctx.pipeline, user).screens:
        return {}
    return {header.first_steps: r.first_steps_html(first_steps(ctx.pipeline, user, indexing=_indexing(ctx)))}


def _indexing(ctx: Context) -> bool:
    return ctx.warmup is not None and bool(ctx.warmup.pending(("index",)))

