"""The Account screen: change your own password; for admins, the users (add one, set a password). Each
of these ticks the admin's set-up checklist in the header."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from copilot.queue.records import ROLES
from copilot.ui import handlers as h
from copilot.ui import render as r
from copilot.ui.access import account
from copilot.ui.callbacks import Context, Updates, guarded
from copilot.ui.screens import header as header_part
from copilot.ui.screens.header import Header


@dataclass(frozen=True, eq=False)
class AccountScreen:
    tab: gr.Tab
    current: gr.Textbox
    new: gr.Textbox
    again: gr.Textbox
    change: gr.Button
    changed: gr.HTML
    admin: gr.Group  # the users, shown to admins only
    users: gr.Dataframe
    name: gr.Textbox
    role: gr.Dropdown
    password: gr.Textbox
    add: gr.Button
    reset: gr.Button
    users_note: gr.HTML


def build(ctx: Context, header: Header) -> AccountScreen:
    with gr.Tab("Account", id="account", elem_id="tab-account") as tab:
        gr.Markdown("#### Change your password")
        with gr.Row():
            current = gr.Textbox(label="Current password", type="password", elem_id="pw-current")
            new = gr.Textbox(label="New password", type="password", elem_id="pw-new")
            again = gr.Textbox(label="New password again", type="password", elem_id="pw-again")
        change = gr.Button("Change password", elem_id="pw-btn")
        changed = gr.HTML(elem_id="pw-msg")
        with gr.Group(visible=False) as admin:
            gr.Markdown("#### Users (admins only)")
            users = gr.Dataframe(headers=r.USER_HEADERS, interactive=False, elem_id="users-table")
            with gr.Row():
                name = gr.Textbox(label="Name", elem_id="user-name")
                role = gr.Dropdown(label="Role", choices=list(ROLES), value="agent", elem_id="user-role")
                password = gr.Textbox(label="Password", type="password", elem_id="user-password")
            with gr.Row():
                add = gr.Button("Add user", elem_id="user-add")
                reset = gr.Button("Set this user's password", elem_id="user-reset")
            users_note = gr.HTML(elem_id="users-msg")
    s = AccountScreen(tab, current, new, again, change, changed, admin, users, name, role, password, add, reset,
                      users_note)
    pipeline = ctx.pipeline

    def on_password(current_: str, new_: str, again_: str, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            h.change_password(pipeline, user, current_, new_, again_)
            return {current: "", new: "", again: "", changed: r.ok_md("Password changed."),
                    header.account: r.account_md(account(pipeline, user)),
                    **header_part.steps_update(ctx, header, user)}
        return guarded(request, changed, run)
    change.click(on_password, [current, new, again], [current, new, again, changed, header.account,
                                                      header.first_steps])

    def on_add(name_: str, role_: str, password_: str, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            added = h.add_user(pipeline, user, name_, role_, password_)
            return {users: r.user_rows(h.list_users(pipeline, user)), name: "", password: "",
                    users_note: r.ok_md(f"Added {added.name} ({added.role})."),
                    **header_part.steps_update(ctx, header, user)}
        return guarded(request, users_note, run)
    add.click(on_add, [name, role, password], [users, name, password, users_note, header.first_steps])

    def on_reset(name_: str, password_: str, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            h.reset_password(pipeline, user, name_, password_)
            return {password: "", users_note: r.ok_md(f"Password of {name_} set."),
                    **header_part.steps_update(ctx, header, user)}
        return guarded(request, users_note, run)
    reset.click(on_reset, [name, password], [password, users_note, header.first_steps])
    return s


def on_login(ctx: Context, s: AccountScreen, user: str) -> Updates:
    """The users, for an admin who just opened the page."""
    if "users" not in account(ctx.pipeline, user).screens:
        return {}
    return {s.admin: gr.Group(visible=True), s.users: r.user_rows(h.list_users(ctx.pipeline, user))}
