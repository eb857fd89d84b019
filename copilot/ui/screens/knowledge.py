"""The Knowledge screen: search the knowledge base and read an entry, the knowledge gaps (most asked and
worst covered first) and FAQ proposals, and re-indexing for leads (which ticks the admin's checklist)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from copilot.ui import handlers as h
from copilot.ui import render as r
from copilot.ui.access import require
from copilot.ui.callbacks import Context, Updates, guarded
from copilot.ui.screens import header as header_part
from copilot.ui.screens.header import Header


@dataclass(frozen=True, eq=False)
class KnowledgeScreen:
    tab: gr.Tab
    query: gr.Textbox
    k: gr.Slider
    search: gr.Button
    results: gr.Dataframe
    entry_pick: gr.Dropdown
    entry: gr.Markdown
    message: gr.HTML
    gaps: gr.Dataframe
    proposals: gr.Markdown
    gaps_refresh: gr.Button
    reindex: gr.Button  # shown to those who may re-index
    reindexed: gr.HTML


def build(ctx: Context, header: Header) -> KnowledgeScreen:
    with gr.Tab("Knowledge", id="knowledge", elem_id="tab-knowledge") as tab:
        with gr.Row():
            query = gr.Textbox(label="Search the knowledge base", elem_id="kb-query", scale=4)
            k = gr.Slider(1, 20, value=8, step=1, label="Results", scale=1)
            search = gr.Button("Search", variant="primary", elem_id="kb-search", scale=1)
        results = gr.Dataframe(headers=r.PASSAGE_HEADERS, interactive=False, elem_id="kb-results")
        entry_pick = gr.Dropdown(label="View an entry", choices=[], elem_id="kb-entry-pick", allow_custom_value=True)
        entry = gr.Markdown(elem_id="kb-entry")
        message = gr.HTML(elem_id="kb-msg")
        gr.Markdown("#### Knowledge gaps (questions with no good answer: most asked, then worst covered, first)")
        gaps = gr.Dataframe(headers=r.GAP_HEADERS, interactive=False, wrap=True, elem_id="kb-gaps")
        gr.Markdown("#### FAQ proposals")
        proposals = gr.Markdown(elem_id="kb-proposals")
        with gr.Row():
            gaps_refresh = gr.Button("Refresh gaps and proposals", size="sm", elem_id="kb-gaps-refresh")
            reindex = gr.Button("Re-index the knowledge base", elem_id="kb-reindex")
        reindexed = gr.HTML(elem_id="kb-reindex-msg")
    s = KnowledgeScreen(tab, query, k, search, results, entry_pick, entry, message, gaps, proposals, gaps_refresh,
                        reindex, reindexed)
    pipeline = ctx.pipeline

    def on_search(q: str, top: float, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            passages = h.search_knowledge(pipeline, user, q, int(top))
            ids = [p.id for p in passages]
            return {s.results: r.passage_rows(passages),
                    s.entry_pick: gr.Dropdown(choices=ids, value=ids[0] if ids else None), s.message: ""}
        return guarded(request, s.message, run)
    for trigger in (search.click, query.submit):
        trigger(on_search, [query, k], [results, entry_pick, message])

    def on_entry(entry_id: str | None, request: gr.Request) -> Updates:
        if not entry_id:
            return {}
        return guarded(request, message, lambda user: {
            entry: r.entry_md(h.view_entry(pipeline, user, entry_id)), message: ""})
    entry_pick.change(on_entry, entry_pick, [entry, message])

    def on_gaps(request: gr.Request) -> Updates:
        return guarded(request, message, lambda user: {
            gaps: r.gap_rows(h.knowledge_gaps(pipeline, user)), proposals: r.proposal_md(h.faq_proposals(pipeline, user)),
            message: ""})
    for trigger in (gaps_refresh.click, tab.select):
        trigger(on_gaps, None, [gaps, proposals, message])

    def on_reindex(request: gr.Request, progress: gr.Progress = gr.Progress()) -> Updates:  # noqa: B008
        def run(user: str) -> Updates:
            require(pipeline, user, "reindex")
            progress(0, desc="Reading the knowledge base")
            if ctx.warmup is not None:
                ctx.warmup.wait("index")  # the start-up indexing must finish first

            def step(done: int, total: int) -> None:
                progress((done, total), desc="Embedding", unit="chunks")
            report = h.reindex(pipeline, user, step)
            return {reindexed: r.ingest_md(report), **header_part.steps_update(ctx, header, user)}
        return guarded(request, reindexed, run)
    reindex.click(on_reindex, None, [reindexed, header.first_steps])
    return s
