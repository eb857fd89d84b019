"""The Incidents screen: the incidents and, for one, its affected cases (who was left out and why), a few
example messages, its timeline, the other live incidents to merge into it (the alike first), its numbers;
the holding reply and the follow-up, one text per language, approved once for every affected case.

Agents read; reviewers and admins act. An approval queues approved items, which the publisher sends like any
approved reply: nothing is posted from here. The header's banner (``header.banner``) opens this screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gradio as gr

from copilot.incidents.records import Incident, IncidentEvent, Member, QueuedReport
from copilot.ui import incident_handlers as ih
from copilot.ui import render as r
from copilot.ui.callbacks import Context, Updates, failure, guarded, username
from copilot.ui.screens.header import Header
from copilot.ui.views import IncidentDetail

MAX_LANGS = 5  # text boxes per phase; more languages than this are named, to draft or write via the API
HEADERS = ["id", "title", "status", "affected", "left out", "first seen", "last seen"]
WIDTHS: list[str | int] = ["5%", "43%", "10%", "9%", "9%", "12%", "12%"]
MEMBER_HEADERS = ["case", "channel", "author", "lang", "message", "gets", "reply item", "follow-up item"]
MEMBER_WIDTHS: list[str | int] = ["6%", "8%", "10%", "5%", "35%", "20%", "8%", "8%"]
PHASE_NAMES = {"reply": "Holding reply", "followup": "Follow-up"}
STATUS_CHOICES = [("Open and resolved", "live"), ("All", "all"), *[(s, s) for s in ih.FILTERS[2:]]]


@dataclass(frozen=True, eq=False)
class PhaseBox:
    """The texts of one phase (holding reply or follow-up) and what a reviewer does with them."""

    phase: str
    column: gr.Column
    state: gr.HTML  # approved by whom, or not yet
    langs: gr.State  # the language of each shown box, in order
    boxes: tuple[gr.Textbox, ...]
    draft: gr.Button
    approve: gr.Button
    report: gr.HTML


@dataclass(frozen=True, eq=False)
class IncidentsScreen:
    tab: gr.Tab
    current: gr.State
    show: gr.Dropdown
    refresh: gr.Button
    table: gr.Dataframe
    pick: gr.Dropdown
    message: gr.HTML
    head: gr.HTML
    insights: gr.HTML
    examples: gr.HTML
    members: gr.Dataframe
    timeline: gr.Markdown
    related: gr.Dropdown
    merge: gr.Button
    reply: PhaseBox
    followup: PhaseBox
    resolve: gr.Button
    dismiss: gr.Button

    @property
    def lists(self) -> list[Any]:
        return [self.table, self.pick]

    @property
    def detail_view(self) -> list[Any]:
        """The components :func:`shown` updates."""
        out: list[Any] = [self.current, self.head, self.insights, self.examples, self.members, self.timeline,
                          self.related, self.merge, self.resolve, self.dismiss]
        for p in (self.reply, self.followup):
            out += [p.column, p.state, p.langs, *p.boxes, p.draft, p.approve, p.report]
        return out


def _phase(phase: str) -> PhaseBox:
    name = PHASE_NAMES[phase]
    with gr.Column(visible=False) as column:
        gr.Markdown(f"#### {name}")
        state = gr.HTML(elem_id=f"{phase}-state")
        langs = gr.State([])
        boxes = tuple(gr.Textbox(label=name, lines=3, visible=False, elem_id=f"{phase}-text-{n}")
                      for n in range(MAX_LANGS))
        with gr.Row():
            draft = gr.Button("Draft again", visible=False, elem_id=f"{phase}-draft-btn")
            approve = gr.Button("Approve for all", variant="primary", visible=False, elem_id=f"{phase}-approve-btn")
        report = gr.HTML(elem_id=f"{phase}-report")
    return PhaseBox(phase, column, state, langs, boxes, draft, approve, report)


def build(ctx: Context, header: Header, tabs: gr.Tabs) -> IncidentsScreen:
    with gr.Tab("Incidents", id="incidents", elem_id="tab-incidents") as tab:
        gr.Markdown("Many customers reporting one problem at once. One approval answers every affected case "
                    "that fits; the others (a crisis, a refund, personal data, a second problem) are left out "
                    "with the reason and answered one by one. Approved replies go out with the publisher.")
        current = gr.State(None)
        with gr.Row(equal_height=True):
            show = gr.Dropdown(label="Show", choices=STATUS_CHOICES, value="live", elem_id="incidents-filter")
            refresh = gr.Button("Refresh", size="sm", elem_id="incidents-refresh", scale=0)
        table = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, elem_id="incidents-table",
                             label="Incidents", column_widths=WIDTHS)
        pick = gr.Dropdown(label="Pick an incident", choices=[], elem_id="incident-pick", allow_custom_value=True)
        message = gr.HTML(elem_id="incident-msg")
        head = gr.HTML(elem_id="incident-head")
        insights = gr.HTML(elem_id="incident-insights")
        with gr.Row():
            with gr.Column(scale=3):
                reply = _phase("reply")
                followup = _phase("followup")
                with gr.Row():
                    resolve = gr.Button("Mark resolved", visible=False, elem_id="resolve-btn")
                    dismiss = gr.Button("Dismiss", variant="stop", visible=False, elem_id="dismiss-btn")
            with gr.Column(scale=2):
                gr.Markdown("#### Example messages")
                examples = gr.HTML(elem_id="incident-examples")
                related = gr.Dropdown(label="Other live incidents (the most alike first)", choices=[],
                                      elem_id="related-pick")
                merge = gr.Button("Merge into this incident", visible=False, elem_id="merge-btn")
        gr.Markdown("#### Affected cases")
        members = gr.Dataframe(headers=MEMBER_HEADERS, interactive=False, wrap=True, elem_id="incident-members",
                               column_widths=MEMBER_WIDTHS)
        with gr.Accordion("Timeline", open=False):
            timeline = gr.Markdown(elem_id="incident-timeline")
    s = IncidentsScreen(tab, current, show, refresh, table, pick, message, head, insights, examples, members,
                        timeline, related, merge, reply, followup, resolve, dismiss)
    _wire_lists(ctx, s, header, tabs)
    _wire_actions(ctx, s, header)
    return s


# Updates -----------------------------------------------------------------------------------------------


def banner(ctx: Context, header: Header, user: str) -> Updates:
    """The header's banner: the most affected live incident, or hidden."""
    text = ih.banner(ctx.pipeline, user)
    return {header.banner: gr.Button(value=text or "", visible=text is not None)}


def listed(ctx: Context, s: IncidentsScreen, user: str, show: str | None, current: Incident | None = None
           ) -> Updates:
    """The incidents under the filter; the one just acted on stays pickable even when it left the filter."""
    found = ih.incidents(ctx.pipeline, user, show)
    pickable = found if current is None or current.id in {x.id for x in found} else [current, *found]
    return {s.table: [_row(x) for x in found],
            s.pick: gr.Dropdown(choices=[(f"#{x.id} {x.title} ({x.status})", x.id) for x in pickable])}


def shown(ctx: Context, s: IncidentsScreen, user: str, incident_id: Any) -> Updates:
    """One incident as the user sees it (actions only for reviewers and admins)."""
    d = ih.incident_detail(ctx.pipeline, user, incident_id)
    x = d.incident
    live = x.status not in ("dismissed", "merged")
    out: Updates = {
        s.current: x.id, s.head: head_html(x), s.insights: insights_html(d.insights),
        s.examples: examples_html(d.examples), s.members: [_member_row(m) for m in d.members],
        s.timeline: timeline_md(d.timeline),
        s.related: gr.Dropdown(choices=_related_choices(d), value=None),
        s.merge: gr.Button(visible=d.can_act and live and bool(d.related or d.others)),
        s.resolve: gr.Button(visible=d.can_act and x.status == "open"),
        s.dismiss: gr.Button(visible=d.can_act and x.status == "open" and not x.approved("reply")),
    }
    for p in (s.reply, s.followup):
        out.update(_phase_updates(p, d))
    return out


def _phase_updates(p: PhaseBox, d: IncidentDetail) -> Updates:
    x = d.incident
    langs = d.languages[p.phase]
    texts = x.texts(p.phase)
    approved = x.approved(p.phase)
    shown_langs = list(langs[:MAX_LANGS])
    missing = [lang for lang in shown_langs if lang not in texts or not approved]
    out: Updates = {p.column: gr.Column(visible=bool(langs)), p.langs: shown_langs, p.report: "",
                    p.state: phase_state_html(x, p.phase, langs[MAX_LANGS:], adding=bool(missing))}
    for n, box in enumerate(p.boxes):
        if n >= len(shown_langs):
            out[box] = gr.Textbox(value="", visible=False)
            continue
        lang = shown_langs[n]
        locked = approved and lang in texts  # approved texts stay as they were sent; a missing one may be added
        out[box] = gr.Textbox(value=texts.get(lang, ""), label=f"{PHASE_NAMES[p.phase]} ({lang})", visible=True,
                              interactive=d.can_act and not locked,
                              placeholder=f"No {lang} text yet: write one, or Draft again")
    can = d.can_act and x.status not in ("dismissed", "merged") and (p.phase == "reply" or x.status != "open")
    out[p.draft] = gr.Button(visible=can and not approved)
    # Once approved, an approval again only adds a language still missing (late arrivals get it by themselves).
    label = f"Approve for all {x.members}" if not approved else "Approve the added languages for their cases"
    out[p.approve] = gr.Button(value=label, visible=can and bool(missing))
    return out


# Rendering ---------------------------------------------------------------------------------------------


def _related_choices(d: IncidentDetail) -> list[tuple[str, int]]:
    """The incidents to merge into this one: the alike first (with the similarity), then the other live ones."""
    def label(x: Incident, alike: str) -> str:
        return f"#{x.id} {x.title} ({x.status}, {x.affected} affected, {alike})"
    return [*((label(o, f"similarity {sim:.2f}"), o.id) for o, sim in d.related),
            *((label(o, "not found alike"), o.id) for o in d.others)]


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "-"


def _row(x: Incident) -> list[Any]:
    return [x.id, x.title, x.status, x.affected, x.left_out, _when(x.first_seen), _when(x.last_seen)]


def _member_row(m: Member) -> list[Any]:
    gets = "the incident's replies" if m.left_out is None else f"own reply: {m.left_out}"
    return [m.case_id, m.channel, m.author or "-", m.language, r.preview(m.text, 120), gets,
            f"#{m.reply_item_id}" if m.reply_item_id else "", f"#{m.followup_item_id}" if m.followup_item_id else ""]


def head_html(x: Incident) -> str:
    badges = "".join(f'<span class="badge">{r.esc(k)}</span>' for k in x.keywords)
    status = f'<span class="badge incident-{r.esc(x.status)}">{r.esc(x.status)}</span>'
    counts = (f"<p><b>{x.affected}</b> affected: {x.members} get the incident's replies, {x.left_out} left out "
              f"(answered one by one). First seen {_when(x.first_seen)}, last seen {_when(x.last_seen)}.</p>")
    lines = [f'<h3 id="incident-title">Incident #{x.id}: {r.esc(x.title)} {status}</h3>', counts,
             f"<p>Keywords: {badges or '-'}</p>"]
    if x.announcement_id:
        lines.append(f"<p>Announcement: <code>{r.esc(x.announcement_id)}</code></p>")
    if x.resolved_at:
        lines.append(f"<p>Resolved by {r.esc(x.resolved_by)} at {_when(x.resolved_at)}.</p>")
    if x.merged_into:
        lines.append(f"<p>Merged into incident #{x.merged_into}.</p>")
    return "".join(lines)


def phase_state_html(x: Incident, phase: str, more: Sequence[str], *, adding: bool = False) -> str:
    by, at = ((x.reply_approved_by, x.reply_approved_at) if phase == "reply"
              else (x.followup_approved_by, x.followup_approved_at))
    text = (f'<span class="badge status-approved">approved by {r.esc(by)} at {_when(at)}</span>' if at
            else "Not approved yet.")
    if at and adding:
        text += " A language written below is queued for its cases when approved."
    if more:
        text += f" Also needed in {r.esc(', '.join(more))} (not shown here)."
    return f"<p>{text}</p>"


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def insights_html(data: dict[str, Any]) -> str:
    first = data.get("first_response_minutes") or {}
    share = data.get("answered_share")
    metrics = {"affected": _num(data.get("affected")), "left out": _num(data.get("left_out")),
               "answered": "-" if share is None else f"{share * 100:.0f}% ({data.get('answered', 0)})",
               "first response, median": _num(first.get("median"), " min"),
               "first response, p90": _num(first.get("p90"), " min"),
               "sentiment before the first reply": _num(data.get("sentiment_before")),
               "sentiment after": _num(data.get("sentiment_after"))}
    cards = "".join(f'<div class="metric"><div class="value">{r.esc(v)}</div><div class="label">{r.esc(k)}'
                    "</div></div>" for k, v in metrics.items())
    volume: dict[str, int] = data.get("volume") or {}
    top = max(volume.values(), default=0) or 1
    bars = "".join(f'<div class="vol-row"><span class="vol-at">{r.esc(at)}</span><span class="vol-bar" '
                   f'style="width:{max(2, round(60 * n / top))}%"></span><span>{n}</span></div>'
                   for at, n in sorted(volume.items()))
    every = data.get("bucket_minutes")
    return (f'<div class="metrics">{cards}</div><div class="volume"><b>Messages per {every} min</b>'
            f"{bars or ' none yet'}</div>")


def examples_html(members: Sequence[Member]) -> str:
    if not members:
        return "<p>No messages.</p>"
    return "".join(f'<blockquote class="inbound"><b>{r.esc(m.author or m.channel)}</b> ({r.esc(m.channel)}, '
                   f"{r.esc(m.language)}): {r.esc(r.preview(m.text, 280))}</blockquote>" for m in members)


def timeline_md(events: Sequence[IncidentEvent]) -> str:
    def detail(e: IncidentEvent) -> str:
        parts = [f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in e.detail.items()
                 if v not in (None, "", [])]
        return f" ({r.esc('; '.join(parts))})" if parts else ""
    return "\n".join(f"- {_when(e.at)} · **{r.esc(e.action)}** by {r.esc(e.actor)}{detail(e)}"
                     for e in events) or "Nothing yet."


def report_html(report: QueuedReport) -> str:
    name = PHASE_NAMES[report.phase].lower()
    text = (f"Approved the {name}: queued {len(report.queued)} approved "
            f"{'reply' if len(report.queued) == 1 else 'replies'}, one per case")
    if report.already:
        text += f"; {report.already} had it already"
    if report.superseded:
        text += f"; {len(report.superseded)} cases' own pending drafts were set aside"
    text += ". The publisher sends them like every approved reply."
    out = r.ok_md(text)
    if report.left_out:
        rows = "".join(f"<li>case {c}: {r.esc(why)}</li>" for c, why in report.left_out)
        out += (f'<div class="copilot-note">Left out ({len(report.left_out)}), to answer one by one from the '
                f"Inbox:<ul>{rows}</ul></div>")
    return out


# Wiring ------------------------------------------------------------------------------------------------


def _wire_lists(ctx: Context, s: IncidentsScreen, header: Header, tabs: gr.Tabs) -> None:
    def on_refresh(show: str, request: gr.Request) -> Updates:
        return guarded(request, s.message, lambda user: {**listed(ctx, s, user, show),
                                                         **banner(ctx, header, user), s.message: ""})
    outputs = [*s.lists, header.banner, s.message]
    for trigger in (s.refresh.click, s.show.change, s.tab.select):
        trigger(on_refresh, s.show, outputs)
    header.banner.click(lambda: gr.Tabs(selected="incidents"), None, tabs).then(on_refresh, s.show, outputs)

    def on_pick(incident_id: Any, request: gr.Request) -> Updates:
        if incident_id is None or incident_id == "":
            return {}
        return guarded(request, s.message, lambda user: {**shown(ctx, s, user, incident_id), s.message: ""})
    s.pick.change(on_pick, s.pick, [*s.detail_view, s.message])

    def on_select(evt: gr.SelectData) -> Any:
        row = evt.row_value or []
        return gr.Dropdown(value=int(row[0])) if row and str(row[0]).isdigit() else gr.Dropdown()
    s.table.select(on_select, None, s.pick)


def _wire_actions(ctx: Context, s: IncidentsScreen, header: Header) -> None:
    pipeline = ctx.pipeline
    outputs = [*s.detail_view, *s.lists, header.banner, s.message]

    def after(user: str, incident_id: Any, show: str) -> Updates:
        current = ih.incident(pipeline, user, incident_id)
        return {**shown(ctx, s, user, incident_id), **listed(ctx, s, user, show, current),
                **banner(ctx, header, user)}

    def working(note: str, work: Callable[[str], Updates], request: gr.Request) -> Iterator[Updates]:
        """Wait for the model if it is still loading, say what runs, then show the outcome."""
        try:
            user = username(request)
            for waiting in ctx.wait_for(("chat",)):
                yield {s.message: r.note_md(waiting)}
            yield {s.message: r.note_md(note)}
            yield work(user)
        except Exception as exc:  # noqa: BLE001 - the UI's boundary: every error becomes a message
            yield failure(exc, s.message)

    for p in (s.reply, s.followup):
        _wire_phase(ctx, s, p, after, working, outputs)

    def on_resolve(incident_id: Any, show: str, request: gr.Request) -> Iterator[Updates]:
        def run(user: str) -> Updates:
            x = ih.resolve(pipeline, user, incident_id)
            return {**after(user, x.id, show), s.message: r.ok_md(
                f"Incident #{x.id} resolved: its follow-up is drafted below. Read it, then approve it for all.")}
        yield from working("Resolving and drafting the follow-up…", run, request)
    s.resolve.click(on_resolve, [s.current, s.show], outputs)

    def on_dismiss(incident_id: Any, show: str, request: gr.Request) -> Iterator[Updates]:
        def run(user: str) -> Updates:
            x, drafted = ih.dismiss(pipeline, user, incident_id)
            note = f"Incident #{x.id} dismissed: nothing is sent for it."
            if drafted:
                note += (f" The {len(drafted)} cases it held had no draft of their own: each is drafted now, "
                         f"to review one by one ({', '.join(f'item #{i}' for i in drafted)}; the Inbox and the "
                         "Review screen list them).")
            return {**after(user, x.id, show), s.message: r.ok_md(note)}
        yield from working("Dismissing and drafting the cases it held, one by one…", run, request)
    s.dismiss.click(on_dismiss, [s.current, s.show], outputs)

    def on_merge(incident_id: Any, source: Any, show: str, request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            x = ih.merge(pipeline, user, incident_id, source)
            return {**after(user, x.id, show), s.message: r.ok_md(
                f"Incident #{ih.incident_id_of(source)} merged into #{x.id}: {x.affected} affected now.")}
        return guarded(request, s.message, run)
    s.merge.click(on_merge, [s.current, s.related, s.show], outputs)


def _wire_phase(ctx: Context, s: IncidentsScreen, p: PhaseBox, after: Callable[[str, Any, str], Updates],
                working: Callable[[str, Callable[[str], Updates], gr.Request], Iterator[Updates]],
                outputs: list[Any]) -> None:
    name = PHASE_NAMES[p.phase].lower()

    def on_draft(incident_id: Any, show: str, request: gr.Request) -> Iterator[Updates]:
        def run(user: str) -> Updates:
            x = ih.draft_again(ctx.pipeline, user, incident_id, p.phase)
            return {**after(user, x.id, show), s.message: r.ok_md(
                f"Drafted the {name} again in {', '.join(sorted(x.texts(p.phase))) or 'no language'}.")}
        yield from working(f"Drafting the {name}…", run, request)
    p.draft.click(on_draft, [s.current, s.show], outputs)

    def on_approve(values: dict[Any, Any], request: gr.Request) -> Updates:
        def run(user: str) -> Updates:
            texts = ih.texts_of(values[p.langs], [values[b] for b in p.boxes])
            report = ih.approve(ctx.pipeline, user, values[s.current], p.phase, texts)
            return {**after(user, report.incident_id, values[s.show]), p.report: report_html(report),
                    s.message: ""}
        return guarded(request, s.message, run)
    p.approve.click(on_approve, {s.current, s.show, p.langs, *p.boxes}, outputs)
