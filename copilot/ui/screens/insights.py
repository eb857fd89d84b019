"""The Insights screen: the report of a period (volume, sentiment, response times, acceptance, promoters,
gaps) as metric cards and charts, its top issues, and the full report to download."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from copilot.community.report import default_out_dir
from copilot.ui import community_handlers as ch
from copilot.ui import render as r
from copilot.ui.callbacks import Context, Updates, guarded


@dataclass(frozen=True, eq=False)
class InsightsScreen:
    tab: gr.Tab
    period: gr.Dropdown
    refresh: gr.Button
    report: gr.HTML
    issues: gr.Markdown
    file: gr.File
    message: gr.HTML


def build(ctx: Context) -> InsightsScreen:
    with gr.Tab("Insights", id="insights", elem_id="tab-insights") as tab:
        with gr.Row():
            period = gr.Dropdown(label="Period", choices=list(ch.PERIODS), value="7d", elem_id="insights-period")
            refresh = gr.Button("Refresh", size="sm", elem_id="insights-refresh")
        report = gr.HTML(elem_id="insights-report")
        issues = gr.Markdown(elem_id="insights-issues")
        file = gr.File(label="The full report (HTML)", elem_id="insights-file", interactive=False)
        message = gr.HTML(elem_id="insights-msg")
    s = InsightsScreen(tab, period, refresh, report, issues, file, message)

    def on_insights(since: str, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            built = ch.insights_report(ctx.pipeline, user, since)
            paths = built.write(default_out_dir(ctx.pipeline, built))
            return {report: r.report_html(r.report_metrics(built.data), built.figures),
                    issues: r.top_issues_md(built.data), file: str(paths["html"]), message: ""}
        return guarded(request, message, run)
    for trigger in (refresh.click, period.change, tab.select):
        trigger(on_insights, period, [report, issues, file, message])
    return s
