"""The Gradio app: maps the handlers in ``copilot.ui.handlers`` to components. Gradio types stay here.

Every callback takes the logged-in user from ``gr.Request`` and passes it to a handler, which checks the
role on the server. Every error becomes a readable message in the page (and a toast); an unexpected one
is logged with its traceback on the server and shown only by its type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr

from copilot.community.report import default_out_dir
from copilot.config import CHANNELS
from copilot.errors import ConflictError, UserError
from copilot.guardrails import parse_reply
from copilot.queue.records import ITEM_KINDS, ROLES
from copilot.ui import community_handlers as ch
from copilot.ui import handlers as h
from copilot.ui import render as r
from copilot.ui.auth import LOGIN_MESSAGE, LoginGuard
from copilot.ui.common import SKIP, call, failure, streamed, username
from copilot.ui.community import build_community_tab
from copilot.ui.samples import SAMPLES
from copilot.ui.warmup import Warmup

if TYPE_CHECKING:
    from copilot.pipeline import Pipeline

TITLE = "Reply copilot"
# Fonts the browser already has: the default theme would fetch web fonts from outside.
THEME = gr.themes.Default(font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                          font_mono=["ui-monospace", "Consolas", "monospace"])


def build_app(pipeline: Pipeline, *, warmup: Warmup | None = None) -> gr.Blocks:
    """The whole app for one pipeline. ``warmup`` (started by the caller) loads the heavy parts."""
    def wait_for(steps: tuple[str, ...]) -> Iterator[str]:
        """Yield progress messages while the warm-up steps that a handler needs are still running."""
        if warmup is None:
            return
        while pending := warmup.pending(steps):
            yield "Getting ready: " + ", ".join(pending) + "…"
            warmup.wait_all(steps, timeout=0.5)
        warmup.wait_all(steps)  # raises the error of a failed step

    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_width=True) as demo:
        with gr.Row(equal_height=True):
            account_md = gr.Markdown(elem_id="account")
            warm_md = gr.Markdown(elem_id="warmup")
            gr.Button("Log out", link="/logout", size="sm", scale=0, elem_id="logout")
        with gr.Tabs(elem_id="tabs") as tabs:
            # Inbox --------------------------------------------------------------------------------
            with gr.Tab("Inbox", id="inbox", elem_id="tab-inbox") as tab_inbox:
                gr.Markdown("Open cases: crises first, then possible crises, then by priority and how long they "
                            "have waited. Messages triaged as spam are under the Spam filter.")
                with gr.Row(equal_height=True):
                    inbox_filter = gr.Dropdown(label="Show", choices=[("Cases", "cases"), ("Spam", "spam"),
                                                                      ("Everything", "all")],
                                               value="cases", elem_id="inbox-filter", scale=1)
                    inbox_refresh = gr.Button("Refresh", size="sm", elem_id="inbox-refresh", scale=0)
                inbox_table = gr.Dataframe(headers=r.INBOX_HEADERS, interactive=False, wrap=True,
                                           elem_id="inbox-table", label="Inbox",
                                           column_widths=["10%", "6%", "6%", "9%", "8%", "10%", "35%", "7%", "9%"])
                with gr.Row():
                    case_pick = gr.Dropdown(label="Pick a case", choices=[], elem_id="case-pick", scale=4,
                                            allow_custom_value=True)
                    case_open = gr.Button("Open in Reply", elem_id="case-open", scale=1)
                inbox_msg = gr.HTML(elem_id="inbox-msg")
                gr.Markdown("#### Your recent drafts")
                mine_table = gr.Dataframe(headers=r.MINE_HEADERS, interactive=False, wrap=True, elem_id="mine-table")

            # Reply --------------------------------------------------------------------------------
            with gr.Tab("Reply", id="reply", elem_id="tab-reply") as tab_reply:
                draft_state = gr.State(None)
                inbound_state = gr.State(None)
                with gr.Row():
                    with gr.Column(scale=3):
                        sample = gr.Dropdown(label="Or pick a sample message", elem_id="sample",
                                             choices=[(s["label"], n) for n, s in enumerate(SAMPLES)], value=None)
                        message = gr.Textbox(label="Inbound message", lines=4, elem_id="message",
                                             placeholder="Paste the customer's message here")
                        with gr.Row():
                            channel = gr.Dropdown(label="Channel", choices=list(CHANNELS), value="twitter",
                                                  elem_id="channel")
                            author = gr.Textbox(label="Author", placeholder="@handle (optional)", elem_id="author")
                        draft_btn = gr.Button("Draft reply", variant="primary", elem_id="draft-btn")
                        triage_html = gr.HTML(elem_id="triage")
                        reply_box = gr.Textbox(label="Draft (edit freely before submitting)", lines=6,
                                               interactive=True, elem_id="reply-text")
                        draft_status = gr.HTML(elem_id="draft-status")
                        with gr.Row(equal_height=True):
                            shorter = gr.Button("Shorter", size="sm", elem_id="rw-shorter")
                            warmer = gr.Button("Warmer", size="sm", elem_id="rw-warmer")
                            formal = gr.Button("More formal", size="sm", elem_id="rw-formal")
                            translate = gr.Button("Translate to", size="sm", elem_id="rw-translate")
                            language = gr.Textbox(show_label=False, placeholder="e.g. Spanish", elem_id="rw-language",
                                                  container=False, min_width=120)
                        submit_btn = gr.Button("Submit for approval", variant="primary", elem_id="submit-btn")
                        reply_msg = gr.HTML(elem_id="reply-msg")
                    with gr.Column(scale=2):
                        gr.Markdown("#### Knowledge behind the draft")
                        sources_html = gr.HTML(elem_id="sources")

            # Review -------------------------------------------------------------------------------
            # Hidden until the page knows the user may review (Gradio can show a tab later, not hide it).
            with gr.Tab("Review", id="review", elem_id="tab-review", visible=False) as tab_review:
                version_state = gr.State(None)
                with gr.Row():
                    status_filter = gr.Dropdown(label="Show", choices=list(h.REVIEW_FILTERS),
                                                value="pending,escalated", elem_id="review-filter")
                    kind_filter = gr.Dropdown(label="Kind", choices=["all", *ITEM_KINDS], value="all",
                                              elem_id="review-kind")
                    review_refresh = gr.Button("Refresh", size="sm", elem_id="review-refresh")
                review_table = gr.Dataframe(headers=r.REVIEW_HEADERS, interactive=False, wrap=True,
                                            elem_id="review-table", label="Review queue",
                                            column_widths=r.REVIEW_WIDTHS)
                with gr.Row():
                    item_pick = gr.Dropdown(label="Pick an item", choices=[], elem_id="item-pick", scale=4,
                                            allow_custom_value=True)
                    item_load = gr.Button("Load", elem_id="item-load", scale=1)
                detail_html = gr.HTML(elem_id="item-detail")
                with gr.Row():
                    with gr.Column(scale=3):
                        item_text = gr.Textbox(label="Reply text (edit to edit-and-approve)", lines=5,
                                               interactive=True, elem_id="item-text")
                        gr.Markdown("**Changes from the draft**")
                        diff_html = gr.HTML(elem_id="item-diff")
                        with gr.Row():
                            approve_btn = gr.Button("Approve", variant="primary", elem_id="approve-btn")
                            save_btn = gr.Button("Save edit", elem_id="save-btn")
                            reopen_btn = gr.Button("Reopen", elem_id="reopen-btn")
                        with gr.Row():
                            reason = gr.Textbox(show_label=False, placeholder="Reason for rejecting",
                                                elem_id="reject-reason", scale=3)
                            reject_btn = gr.Button("Reject", variant="stop", elem_id="reject-btn", scale=1)
                        review_msg = gr.HTML(elem_id="review-msg")
                    with gr.Column(scale=2):
                        gr.Markdown("#### Sources")
                        item_sources = gr.HTML(elem_id="item-sources")
                with gr.Accordion("Audit trail", open=False):
                    audit_md = gr.Markdown(elem_id="item-audit")
                gr.Markdown("### Publish and outbox")
                publish_btn = gr.Button("Publish approved", variant="primary", elem_id="publish-btn")
                publish_msg = gr.HTML(elem_id="publish-msg")
                outbox_table = gr.Dataframe(headers=r.OUTBOX_HEADERS, interactive=False, wrap=True,
                                            elem_id="outbox-table", label="Outbox",
                                            column_widths=["5%", "7%", "8%", "9%", "41%", "11%", "8%", "11%"])

            # Community ----------------------------------------------------------------------------
            with gr.Tab("Community", id="community", elem_id="tab-community") as tab_community:
                community_review, community_refresh, community_outputs = build_community_tab(pipeline, wait_for)

            # Knowledge ----------------------------------------------------------------------------
            with gr.Tab("Knowledge", id="knowledge", elem_id="tab-knowledge") as tab_knowledge:
                with gr.Row():
                    query = gr.Textbox(label="Search the knowledge base", elem_id="kb-query", scale=4)
                    k = gr.Slider(1, 20, value=8, step=1, label="Results", scale=1)
                    search_btn = gr.Button("Search", variant="primary", elem_id="kb-search", scale=1)
                results = gr.Dataframe(headers=r.PASSAGE_HEADERS, interactive=False, elem_id="kb-results")
                entry_pick = gr.Dropdown(label="View an entry", choices=[], elem_id="kb-entry-pick",
                                         allow_custom_value=True)
                entry_md = gr.Markdown(elem_id="kb-entry")
                kb_msg = gr.HTML(elem_id="kb-msg")
                gr.Markdown("#### Knowledge gaps (questions with no good answer)")
                gaps_table = gr.Dataframe(headers=r.GAP_HEADERS, interactive=False, wrap=True, elem_id="kb-gaps")
                gr.Markdown("#### FAQ proposals")
                proposals = gr.Markdown(elem_id="kb-proposals")
                with gr.Row():
                    gaps_refresh = gr.Button("Refresh gaps and proposals", size="sm", elem_id="kb-gaps-refresh")
                    reindex_btn = gr.Button("Re-index the knowledge base", elem_id="kb-reindex")
                reindex_msg = gr.HTML(elem_id="kb-reindex-msg")

            # Insights -----------------------------------------------------------------------------
            with gr.Tab("Insights", id="insights", elem_id="tab-insights") as tab_insights:
                with gr.Row():
                    period = gr.Dropdown(label="Period", choices=list(ch.PERIODS), value="7d", elem_id="insights-period")
                    insights_refresh = gr.Button("Refresh", size="sm", elem_id="insights-refresh")
                report_view = gr.HTML(elem_id="insights-report")
                issues_md = gr.Markdown(elem_id="insights-issues")
                report_file = gr.File(label="The full report (HTML)", elem_id="insights-file", interactive=False)
                insights_msg = gr.HTML(elem_id="insights-msg")

            # Account and users --------------------------------------------------------------------
            with gr.Tab("Account", id="account", elem_id="tab-account"):
                gr.Markdown("#### Change your password")
                with gr.Row():
                    pw_current = gr.Textbox(label="Current password", type="password", elem_id="pw-current")
                    pw_new = gr.Textbox(label="New password", type="password", elem_id="pw-new")
                    pw_again = gr.Textbox(label="New password again", type="password", elem_id="pw-again")
                pw_btn = gr.Button("Change password", elem_id="pw-btn")
                pw_msg = gr.HTML(elem_id="pw-msg")
                with gr.Group(visible=False) as admin_group:
                    gr.Markdown("#### Users (admins only)")
                    users_table = gr.Dataframe(headers=r.USER_HEADERS, interactive=False, elem_id="users-table")
                    with gr.Row():
                        new_name = gr.Textbox(label="Name", elem_id="user-name")
                        new_role = gr.Dropdown(label="Role", choices=list(ROLES), value="agent", elem_id="user-role")
                        new_pw = gr.Textbox(label="Password", type="password", elem_id="user-password")
                    with gr.Row():
                        add_btn = gr.Button("Add user", elem_id="user-add")
                        reset_btn = gr.Button("Set this user's password", elem_id="user-reset")
                    users_msg = gr.HTML(elem_id="users-msg")

        # ---- callbacks -------------------------------------------------------------------------------

        screen_tabs = {"inbox": tab_inbox, "reply": tab_reply, "review": tab_review, "community": tab_community,
                       "knowledge": tab_knowledge, "insights": tab_insights}

        def inbox_outputs(user: str, show: str = "cases") -> tuple[Any, Any, Any]:
            rows = h.inbox(pipeline, user, show=show or "cases")
            mine = h.my_items(pipeline, user)
            return (r.inbox_rows(rows), gr.Dropdown(choices=r.case_choices(rows), value=None), r.mine_rows(mine))

        def on_load(request: gr.Request) -> Any:
            n = 4 + len(screen_tabs) + 5

            def run(user: str) -> Any:
                acct = h.account(pipeline, user)
                # Only ever show: every tab a role may miss starts hidden.
                visible = [gr.Tab(visible=True) if name in acct.screens else SKIP() for name in screen_tabs]
                start = "review" if "review" in acct.screens else "inbox"
                return (r.account_md(acct), warmup.summary() if warmup else "", gr.Tabs(selected=start),
                        gr.Group(visible="users" in acct.screens), *visible, *inbox_outputs(user),
                        gr.Button(visible="reindex" in acct.screens), "")
            return call(request, n, n - 1, run)

        demo.load(on_load, None, [account_md, warm_md, tabs, admin_group, *screen_tabs.values(), inbox_table,
                                  case_pick, mine_table, reindex_btn, inbox_msg])

        if warmup is not None:
            timer = gr.Timer(1.5)

            def on_tick() -> Any:
                summary = warmup.summary()
                done = not warmup.pending()
                return summary, gr.Timer(active=not done)
            timer.tick(on_tick, None, [warm_md, timer], show_progress="hidden")

        # Inbox
        def on_inbox_refresh(show: str, request: gr.Request) -> Any:
            return call(request, 4, 3, lambda user: (*inbox_outputs(user, show), ""))
        for trigger in (inbox_refresh.click, inbox_filter.change):
            trigger(on_inbox_refresh, inbox_filter, [inbox_table, case_pick, mine_table, inbox_msg])

        def on_case_open(case_id: int | None, request: gr.Request) -> Any:
            def run(user: str) -> Any:
                view = h.open_case(pipeline, user, case_id)
                c = view.case
                inbound_id = c.inbound_id or h.new_inbound_id()
                return (gr.Tabs(selected="reply"), c.text, c.channel, c.author or "", inbound_id, None, "",
                        r.triage_html(c.triage), "", "", "")
            return call(request, 11, 10, run)
        case_open.click(on_case_open, case_pick, [tabs, message, channel, author, inbound_state, draft_state,
                                                  reply_box, triage_html, draft_status, sources_html, inbox_msg])

        # Reply
        def on_sample(index: int | None) -> Any:
            if index is None:
                return SKIP(), SKIP(), SKIP(), SKIP()
            s = SAMPLES[int(index)]
            return s["text"], s["channel"], s["author"], None
        sample.change(on_sample, sample, [message, channel, author, inbound_state])
        # A new message is a new case: forget the id of the one picked before.
        message.input(lambda: None, None, inbound_state)

        def on_draft(text: str, chan: str, who: str, inbound_id: str | None, request: gr.Request) -> Iterator[Any]:
            outputs = 7  # triage, reply box, draft status, sources, draft state, inbound id, message
            try:
                user = username(request)
                h.require(pipeline, user, "reply")
                h.inbound_from(text, chan, who, inbound_id)  # fail fast on empty input, before waiting
                for note in wait_for(("index", "triage", "chat")):
                    yield SKIP(), SKIP(), r.note_md(note), SKIP(), SKIP(), SKIP(), ""
                yield "", "", r.note_md("Drafting…"), "", None, SKIP(), ""
                for partial, result in streamed(lambda on_token: h.draft_reply(
                        pipeline, user, text, chan, who, inbound_id=inbound_id, on_token=on_token)):
                    if result is None:
                        yield SKIP(), parse_reply(partial).text, SKIP(), SKIP(), SKIP(), SKIP(), SKIP()
                        continue
                    d = result.draft
                    yield (r.triage_html(d.triage), d.text, r.draft_status_html(d, spam_case=result.spam_case_id),
                           r.sources_html(result.sources),
                           d, result.inbound_id, "")
            except Exception as exc:  # noqa: BLE001 - the UI's boundary
                yield failure(exc, outputs, outputs - 1)
        # While a draft or a rewrite streams, nothing else may act on the reply box: the buttons are locked
        # first (without waiting in the queue) and unlocked when the work ends, whatever its outcome.
        reply_buttons = [draft_btn, shorter, warmer, formal, translate, submit_btn]

        def lock() -> tuple[Any, ...]:
            return tuple(gr.Button(interactive=False) for _ in reply_buttons)

        def unlock() -> tuple[Any, ...]:
            return tuple(gr.Button(interactive=True) for _ in reply_buttons)

        draft_btn.click(lock, None, reply_buttons, queue=False).then(
            on_draft, [message, channel, author, inbound_state],
            [triage_html, reply_box, draft_status, sources_html, draft_state, inbound_state, reply_msg],
            api_name="draft").then(unlock, None, reply_buttons, queue=False)

        def rewriter(action: str) -> Callable[..., Iterator[Any]]:
            def on_rewrite(text: str, chan: str, lang: str, request: gr.Request) -> Iterator[Any]:
                try:
                    user = username(request)
                    h.require(pipeline, user, "reply")
                    if not (text or "").strip():
                        raise UserError("there is no draft to rewrite yet")
                    for note in wait_for(("chat",)):
                        yield SKIP(), r.note_md(note)
                    yield SKIP(), r.note_md(f"Rewriting ({action})…")
                    for _partial, result in streamed(lambda on_token: h.rewrite_reply(
                            pipeline, user, text, action, chan, lang, on_token=on_token)):
                        if result is not None:
                            yield result, r.ok_md(f"Rewritten: {action}. Check it before submitting.")
                except Exception as exc:  # noqa: BLE001 - the UI's boundary
                    yield failure(exc, 2, 1)
            return on_rewrite
        for button, action in ((shorter, "shorter"), (warmer, "warmer"), (formal, "formal"),
                               (translate, "translate")):
            button.click(lock, None, reply_buttons, queue=False).then(
                rewriter(action), [reply_box, channel, language], [reply_box, reply_msg]).then(
                unlock, None, reply_buttons, queue=False)

        def on_submit(draft: Any, text: str, show: str, request: gr.Request) -> Any:
            def run(user: str) -> Any:
                item = h.submit_reply(pipeline, user, draft, text)
                note = " It is escalated: a trained person takes it from here." if item.status == "escalated" else ""
                return (None, r.ok_md(f"Submitted as item #{item.id} ({item.status}), waiting for a reviewer.{note}"),
                        *inbox_outputs(user, show))
            return call(request, 5, 1, run)
        submit_btn.click(on_submit, [draft_state, reply_box, inbox_filter],
                         [draft_state, reply_msg, inbox_table, case_pick, mine_table], api_name="submit")

        # Review
        def review_outputs(user: str, status: str, kind: str, current: Any = None) -> tuple[Any, Any]:
            items = h.review_list(pipeline, user, status, kind)
            shown = items if current is None or current.id in {i.id for i in items} else [current, *items]
            return r.review_rows(items), gr.Dropdown(choices=r.item_choices(shown))

        def detail_outputs(user: str, item_id: int | None) -> tuple[Any, ...]:
            d = h.review_detail(pipeline, user, item_id)
            return (r.detail_html(d), d.item.text, r.diff_html(d.diff), r.sources_html(d.sources),
                    r.audit_md(d.audit), d.item.version)

        detail_out = [detail_html, item_text, diff_html, item_sources, audit_md, version_state]

        def on_review_refresh(status: str, kind: str, request: gr.Request) -> Any:
            return call(request, 3, 2, lambda user: (*review_outputs(user, status, kind), ""))
        for trigger in (review_refresh.click, status_filter.change, kind_filter.change):
            trigger(on_review_refresh, [status_filter, kind_filter], [review_table, item_pick, review_msg])

        def on_item_load(item_id: int | None, request: gr.Request) -> Any:
            return call(request, 7, 6, lambda user: (*detail_outputs(user, item_id), ""))
        item_load.click(on_item_load, item_pick, [*detail_out, review_msg])
        item_pick.change(on_item_load, item_pick, [*detail_out, review_msg])

        def review_action(verb: str, act: Callable[..., Any]) -> Callable[..., Any]:
            def on_action(item_id: int | None, version: int | None, text: str, why: str, status: str, kind: str,
                          request: gr.Request) -> Any:
                n = len(action_out)

                def run(user: str) -> Any:
                    try:
                        item = act(user, item_id, version, text, why)
                    except ConflictError as exc:
                        # Show the item as it is now, and say plainly that nothing was applied.
                        fresh = detail_outputs(user, item_id)
                        current = pipeline.queue.get(int(item_id)) if item_id is not None else None
                        return (*fresh, *review_outputs(user, status, kind, current),
                                r.error_md(f"Conflict: {exc}. It is reloaded below as it is now: check it, then retry."))
                    fresh = detail_outputs(user, item.id)
                    return (*fresh, *review_outputs(user, status, kind, item),
                            r.ok_md(f"Item #{item.id} {verb}: now {item.status} (version {item.version})."))
                return call(request, n, n - 1, run)
            return on_action

        action_in = [item_pick, version_state, item_text, reason, status_filter, kind_filter]
        action_out = [*detail_out, review_table, item_pick, review_msg]
        approve_btn.click(review_action("approved", lambda u, i, v, t, _w: h.approve(pipeline, u, i, v, t)),
                          action_in, action_out, api_name="approve")
        save_btn.click(review_action("saved", lambda u, i, v, t, _w: h.save_edit(pipeline, u, i, v, t)),
                       action_in, action_out)
        reject_btn.click(review_action("rejected", lambda u, i, v, _t, w: h.reject(pipeline, u, i, v, w)),
                         action_in, action_out, api_name="reject")
        reopen_btn.click(review_action("reopened", lambda u, i, v, _t, _w: h.reopen(pipeline, u, i, v)),
                         action_in, action_out)

        def on_publish(status: str, kind: str, request: gr.Request) -> Any:
            def run(user: str) -> Any:
                report = h.publish(pipeline, user)
                return (r.publish_md(report), r.outbox_rows(h.outbox(pipeline, user)),
                        *review_outputs(user, status, kind))
            return call(request, 4, 0, run)
        publish_btn.click(on_publish, [status_filter, kind_filter], [publish_msg, outbox_table, review_table,
                                                                     item_pick], api_name="publish")

        def on_review_tab(status: str, kind: str, request: gr.Request) -> Any:
            def run(user: str) -> Any:
                if "review" not in h.account(pipeline, user).screens:
                    return SKIP(), SKIP(), SKIP(), ""
                return (*review_outputs(user, status, kind), r.outbox_rows(h.outbox(pipeline, user)), "")
            return call(request, 4, 3, run)
        tab_review.select(on_review_tab, [status_filter, kind_filter],
                          [review_table, item_pick, outbox_table, review_msg])

        # Knowledge
        def on_search(q: str, top: int, request: gr.Request) -> Any:
            def run(user: str) -> Any:
                passages = h.search_knowledge(pipeline, user, q, int(top))
                ids = [p.id for p in passages]
                return r.passage_rows(passages), gr.Dropdown(choices=ids, value=ids[0] if ids else None), ""
            return call(request, 3, 2, run)
        search_btn.click(on_search, [query, k], [results, entry_pick, kb_msg])
        query.submit(on_search, [query, k], [results, entry_pick, kb_msg])

        def on_entry(entry_id: str | None, request: gr.Request) -> Any:
            if not entry_id:
                return SKIP(), SKIP()
            return call(request, 2, 1, lambda user: (r.entry_md(h.view_entry(pipeline, user, entry_id)), ""))
        entry_pick.change(on_entry, entry_pick, [entry_md, kb_msg])

        def on_gaps(request: gr.Request) -> Any:
            return call(request, 3, 2, lambda user: (r.gap_rows(h.knowledge_gaps(pipeline, user)),
                                                     r.proposal_md(h.faq_proposals(pipeline, user)), ""))
        gaps_refresh.click(on_gaps, None, [gaps_table, proposals, kb_msg])
        tab_knowledge.select(on_gaps, None, [gaps_table, proposals, kb_msg])

        def on_reindex(request: gr.Request, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            def run(user: str) -> Any:
                h.require(pipeline, user, "reindex")
                progress(0, desc="Reading the knowledge base")
                if warmup is not None:
                    warmup.wait("index")  # the start-up indexing must finish first

                def step(done: int, total: int) -> None:
                    progress((done, total), desc="Embedding", unit="chunks")
                return r.ingest_md(h.reindex(pipeline, user, step))
            return call(request, 1, 0, run)
        reindex_btn.click(on_reindex, None, reindex_msg)

        # Insights
        def on_insights(since: str, request: gr.Request) -> Any:
            def run(user: str) -> Any:
                report = ch.insights_report(pipeline, user, since)
                paths = report.write(default_out_dir(pipeline, report))
                return (r.report_html(r.report_metrics(report.data), report.figures), r.top_issues_md(report.data),
                        str(paths["html"]), "")
            return call(request, 4, 3, run)
        insights_outputs = [report_view, issues_md, report_file, insights_msg]
        insights_refresh.click(on_insights, period, insights_outputs)
        period.change(on_insights, period, insights_outputs)
        tab_insights.select(on_insights, period, insights_outputs)

        # Community (its own callbacks are in copilot.ui.community)
        tab_community.select(community_refresh, None, community_outputs)
        community_review.click(lambda: gr.Tabs(selected="review"), None, tabs).then(
            on_review_refresh, [status_filter, kind_filter], [review_table, item_pick, review_msg])

        # Account and users
        def on_password(current: str, new: str, again: str, request: gr.Request) -> Any:
            def run(user: str) -> Any:
                h.change_password(pipeline, user, current, new, again)
                return "", "", "", r.ok_md("Password changed."), r.account_md(h.account(pipeline, user))
            return call(request, 5, 3, run)
        pw_btn.click(on_password, [pw_current, pw_new, pw_again], [pw_current, pw_new, pw_again, pw_msg, account_md])

        def users_outputs(user: str) -> Any:
            return r.user_rows(h.list_users(pipeline, user))

        def on_add_user(name: str, role: str, password: str, request: gr.Request) -> Any:
            def run(user: str) -> Any:
                added = h.add_user(pipeline, user, name, role, password)
                return users_outputs(user), "", "", r.ok_md(f"Added {added.name} ({added.role}).")
            return call(request, 4, 3, run)
        add_btn.click(on_add_user, [new_name, new_role, new_pw], [users_table, new_name, new_pw, users_msg])

        def on_reset(name: str, password: str, request: gr.Request) -> Any:
            def run(user: str) -> Any:
                h.reset_password(pipeline, user, name, password)
                return "", r.ok_md(f"Password of {name} set.")
            return call(request, 2, 1, run)
        reset_btn.click(on_reset, [new_name, new_pw], [new_pw, users_msg])

        def on_users(request: gr.Request) -> Any:
            def run(user: str) -> Any:
                if "users" not in h.account(pipeline, user).screens:
                    return SKIP(), ""
                return users_outputs(user), ""
            return call(request, 2, 1, run)
        demo.load(on_users, None, [users_table, users_msg])

    return demo


def launch(pipeline: Pipeline, *, host: str = "127.0.0.1", port: int = 7860, warmup: Warmup | None = None,
           block: bool = True, quiet: bool = False) -> gr.Blocks:
    """Start the app with logins checked against the queue's users; return the running Blocks."""
    demo = build_app(pipeline, warmup=warmup)
    demo.queue(default_concurrency_limit=4)
    demo.launch(
        auth=LoginGuard(pipeline.queue), auth_message=LOGIN_MESSAGE, server_name=host, server_port=port,
        prevent_thread_lock=not block, share=False, ssr_mode=False, mcp_server=False, show_error=False,
        quiet=quiet, footer_links=["settings"], run_history=False, theme=THEME, css=r.CSS,
        allowed_paths=[str(pipeline.settings.data_dir / "reports")],  # the insights report's download
    )
    return demo
