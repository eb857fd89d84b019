"""Views to Markdown, HTML and table rows for the page. Pure functions; every customer or model text is
escaped, since it is data and may hold markup."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from copilot.index import IngestReport
from copilot.queue.records import AuditEvent, PublishReport, ReviewItem, User
from copilot.types import Draft, Entry, Passage, Triage, Turn
from copilot.ui.views import (
    Account,
    DiffPart,
    Gap,
    InboxRow,
    ReviewDetail,
    Source,
    Step,
    seconds_since,
    triage_of,
)

INBOX_HEADERS = ["", "case", "prio", "status", "channel", "author", "message", "waiting", "owner"]
REVIEW_HEADERS = ["", "item", "kind", "status", "prio", "channel", "author", "draft", "waiting", "by", "ver"]
REVIEW_WIDTHS: list[str | int] = ["8%", "5%", "8%", "8%", "5%", "8%", "10%", "33%", "6%", "6%", "3%"]
OUTBOX_HEADERS = ["item", "status", "channel", "author", "text", "posted", "approved by", "external id"]
MINE_HEADERS = ["item", "status", "channel", "draft", "reviewer note"]
PASSAGE_HEADERS = ["id", "title", "kind", "official", "score"]
GAP_HEADERS = ["asked", "question", "channel", "closest entry", "score", "last seen"]
USER_HEADERS = ["name", "role", "can log in", "created"]
PROMOTER_HEADERS = ["member", "score", "channels", "interests", "messages", "consent", "contactable", "last contact"]


def esc(text: object) -> str:
    return html.escape(str(text if text is not None else ""), quote=True)


def preview(text: str, limit: int = 90) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def waited(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def error_md(message: str) -> str:
    return f'<div class="copilot-error" role="alert">⚠ {esc(message)}</div>'


def ok_md(message: str) -> str:
    return f'<div class="copilot-ok">✓ {esc(message)}</div>'


def note_md(message: str) -> str:
    return f'<div class="copilot-note">{esc(message)}</div>'


def account_md(acct: Account) -> str:
    text = f"Logged in as **{esc(acct.name)}** ({esc(acct.role)})"
    if acct.must_change_password:
        text += (' · <span class="copilot-error">you are using the first-run password: change it on the '
                 "Account screen</span>")
    return text


# Triage and drafts -------------------------------------------------------------------------------------


def crisis_label(level: str | None, reason: str | None) -> str:
    """A crisis level as the inbox shows it: "⚠ CRISIS · self-harm", "possible crisis · abuse", or ""."""
    if level == "crisis":
        return "⚠ CRISIS" + (f" · {reason}" if reason else "")
    if level == "possible":
        return "possible crisis" + (f" · {reason}" if reason else "")
    return ""


def triage_html(triage: Triage | dict[str, Any] | None) -> str:
    """Badges for a message's labels; a crisis is marked loud and clear, a possible one with its evidence."""
    if isinstance(triage, dict):
        triage = triage_of(triage)
    if triage is None:
        return ""
    badges = []
    detail = ""
    span = " ".join((triage.crisis_span or "").split())
    if triage.crisis or triage.crisis_level == "crisis":
        badges.append(f'<span class="badge crisis">⚠ CRISIS · escalated · {esc(triage.crisis_reason or "")}</span>')
    elif triage.crisis_level == "possible":
        badges.append(f'<span class="badge possible">possible crisis · {esc(triage.crisis_reason or "")} · '
                      "a person decides</span>")
    if triage.crisis or triage.crisis_level:
        if span:
            detail += f'<div class="crisis-span">The customer\'s words: “{esc(span)}”</div>'
        if triage.crisis_note:
            detail += f'<div class="crisis-note">{esc(triage.crisis_note)}</div>'
    elif triage.crisis_note:
        badges.append('<span class="badge">crisis screen: cleared</span>')
        detail += f'<div class="crisis-note">Cleared by the crisis screen: {esc(triage.crisis_note)}</div>'
    badges.append(f'<span class="badge prio-{triage.priority}">P{triage.priority} · {triage.priority_score:.0f}</span>')
    badges.append(f'<span class="badge">{esc(triage.kind)}</span>')
    badges.append(f'<span class="badge {esc(triage.sentiment)}">{esc(triage.sentiment)} '
                  f'({triage.sentiment_score:+.2f})</span>')
    if triage.private_info:
        badges.append(f'<span class="badge private">private info · {esc(triage.private_reason or "move to DM")}</span>')
    badges.append(f'<span class="badge">lang {esc(triage.language)}</span>')
    return f'<div class="triage" id="triage-badges">{"".join(badges)}{detail}</div>'


def draft_status_html(draft: Draft, *, item: ReviewItem | None = None, spam_case: int | None = None) -> str:
    """How the draft came out: status, confidence, flags."""
    parts = []
    if draft.status == "escalated":
        parts.append('<span class="badge crisis">ESCALATED to a trained person: a holding message only</span>')
    elif draft.triage.crisis_level == "possible":
        parts.append('<span class="badge possible">POSSIBLE CRISIS: a person decides; a holding message only, '
                     "never a fix</span>")
    elif draft.status == "skipped":
        parts.append('<span class="badge">spam: no reply recommended</span>')
    if draft.knowledge_gap:
        parts.append('<span class="badge private">knowledge gap logged</span>')
    parts.append(f'<span class="badge">confidence {draft.confidence:.2f}</span>')
    parts.append(f'<span class="badge">{draft.latency_ms / 1000:.1f} s</span>')
    flags = "".join(f"<li>{esc(f)}</li>" for f in draft.flags)
    queued = ""
    if spam_case is not None:
        queued = note_md(f"Kept as case #{spam_case} under the inbox's Spam filter. If this is a real customer, "
                         "write the reply yourself and submit it for approval.")
    if item is not None:
        queued = (f'<div class="copilot-ok">Submitted as item #{item.id}: <b>{esc(item.status)}</b>, '
                  "waiting for a reviewer.</div>")
    return f'<div class="draft-status">{"".join(parts)}{f"<ul>{flags}</ul>" if flags else ""}{queued}</div>'


def sources_html(sources: Sequence[Source]) -> str:
    """The knowledge entries beside a draft: cited ones marked."""
    if not sources:
        return note_md("No knowledge entries were used for this draft.")
    cards = []
    for s in sources:
        tags = ['<span class="badge cited">cited</span>' if s.cited else '<span class="badge">retrieved</span>',
                f'<span class="badge">{esc(s.kind)}</span>']
        if not s.official:
            tags.append('<span class="badge private">unofficial</span>')
        link = f' · <a href="{esc(s.url)}" target="_blank" rel="noopener">article</a>' if s.url else ""
        cards.append(
            f'<div class="source{" cited" if s.cited else ""}" data-entry="{esc(s.id)}">'
            f'<div><b>{esc(s.title)}</b> <code>{esc(s.id)}</code>{link}</div><div>{"".join(tags)}</div>'
            f'<p>{esc(s.excerpt)}</p></div>'
        )
    return f'<div class="sources">{"".join(cards)}</div>'


# Inbox and queue tables -------------------------------------------------------------------------------


def inbox_rows(rows: Iterable[InboxRow]) -> list[list[Any]]:
    out = []
    for r in rows:
        state = r.item_status or r.status
        mark = crisis_label(r.crisis_level, r.crisis_reason) or ("spam" if r.spam else "")
        out.append([mark, r.case_id, f"P{r.priority}", state, r.channel, r.author or "-",
                    preview(r.text), waited(r.waiting_s), r.owner or "-"])
    return out


def case_choices(rows: Iterable[InboxRow]) -> list[tuple[str, int]]:
    out = []
    for r in rows:
        label = crisis_label(r.crisis_level, r.crisis_reason)
        text = f"{label + ' · ' if label else ''}#{r.case_id} · P{r.priority} · {r.channel} · {preview(r.text, 50)}"
        out.append((text, r.case_id))
    return out


def review_rows(items: Iterable[ReviewItem]) -> list[list[Any]]:
    now = datetime.now(UTC)
    out = []
    for i in items:
        mark = ("⚠" if i.status == "escalated" else "possible crisis" if i.crisis_level == "possible"
                else "✎ edited" if i.text != i.original_text else "")
        out.append([mark, i.id, i.kind, i.status, f"P{i.priority}", i.channel, i.author or "-", preview(i.text, 70),
                    waited(seconds_since(i.received_at, now)), i.drafted_by, i.version])
    return out


def item_choices(items: Iterable[ReviewItem]) -> list[tuple[str, int]]:
    return [((f"{'⚠ ' if i.status == 'escalated' else ''}#{i.id} · {i.status} · {i.kind} · P{i.priority} · "
              f"{preview(i.text, 48)}"), i.id) for i in items]


def mine_rows(items: Iterable[ReviewItem]) -> list[list[Any]]:
    return [[i.id, i.status, i.channel, preview(i.text, 70), i.reject_reason or ""] for i in items]


def outbox_rows(items: Iterable[ReviewItem]) -> list[list[Any]]:
    return [[i.id, i.status, i.channel, i.author or "-", i.text,
             i.posted_at.strftime("%Y-%m-%d %H:%M:%S") if i.posted_at else (i.error or "-"),
             i.approved_by or "-", i.external_id or "-"] for i in items]


def diff_html(parts: Sequence[DiffPart]) -> str:
    if not any(p.op != "equal" for p in parts):
        return note_md("Not edited: this is the text as drafted.")
    spans = []
    for p in parts:
        text = esc(p.text)
        spans.append(f"<del>{text}</del>" if p.op == "delete" else f"<ins>{text}</ins>" if p.op == "insert" else text)
    return f'<div class="diff" id="edit-diff">{"".join(spans)}</div>'


def audit_md(events: Sequence[AuditEvent]) -> str:
    lines = ["| when | action | by | status | note |", "| --- | --- | --- | --- | --- |"]
    for e in events:
        change = f"{e.from_status or '-'} → {e.to_status}" if e.from_status != e.to_status else (e.to_status or "")
        note = ", ".join(f"{k}: {v}" for k, v in e.detail.items())
        lines.append(f"| {e.at:%Y-%m-%d %H:%M:%S} | {e.action} | {esc(e.actor)} | {change} | {esc(note)} |")
    return "\n".join(lines)


def detail_html(detail: ReviewDetail) -> str:
    i = detail.item
    head = (f'<div class="item-head" id="item-head"><b>Item #{i.id}</b> · {esc(i.kind)} · '
            f'<span class="badge status-{esc(i.status)}">{esc(i.status)}</span> · version {i.version} · '
            f"{esc(i.channel)} · {esc(i.author or '-')} · drafted by {esc(i.drafted_by)}"
            f"{' · edited by ' + esc(i.edited_by) if i.edited_by else ''}"
            f"{' · approved by ' + esc(i.approved_by) if i.approved_by else ''}</div>")
    extra = ""
    if i.reject_reason:
        extra += f'<div class="copilot-error">Rejected: {esc(i.reject_reason)}</div>'
    if i.error:
        extra += f'<div class="copilot-error">Last publishing error: {esc(i.error)}</div>'
    inbound = (f'<blockquote class="inbound"><b>{esc(i.author or "customer")}</b> on {esc(i.channel)}: '
               f"{esc(i.inbound_text)}</blockquote>") if i.inbound_text else ""
    if len(detail.thread) > 1:  # a follow-up: the whole conversation, this message last
        inbound = thread_html(detail.thread, customer=i.author)
    return head + extra + triage_html(detail.triage) + inbound


def thread_html(turns: Sequence[Turn], *, customer: str | None = None) -> str:
    """A case's conversation, oldest first: what the customer wrote and what we posted."""
    if not turns:
        return ""
    rows = []
    for t in turns:
        who = esc(t.author or customer or "customer") if t.direction == "in" else "we replied"
        when = f" · {t.at:%Y-%m-%d %H:%M}" if t.at else ""
        rows.append(f'<div class="turn turn-{"in" if t.direction == "in" else "out"}"><b>{who}</b>{when}<br>'
                    f"{esc(t.text)}</div>")
    return f'<div class="thread" id="thread"><b>Conversation ({len(turns)} messages)</b>{"".join(rows)}</div>'



def publish_md(report: PublishReport) -> str:
    r = report
    text = (f"Posted {len(r.posted)}, failed {len(r.failed)}, already posted {len(r.duplicates)}, "
            f"left to another publisher {len(r.skipped)}.")
    failures = "".join(f"<li>item #{item_id}: {esc(err)}</li>" for item_id, err in r.failed)
    if failures:
        return error_md(text) + f"<ul>{failures}</ul>"
    return ok_md(text) if r.posted or r.duplicates else note_md(text + " Nothing was waiting to be posted.")


# Knowledge --------------------------------------------------------------------------------------------


def passage_rows(passages: Iterable[Passage]) -> list[list[Any]]:
    return [[p.id, p.title, p.kind, "yes" if p.official else "no", round(p.score, 3)] for p in passages]


def entry_md(entry: Entry) -> str:
    meta = [f"`{entry.id}`", entry.kind, "official" if entry.official else "**unofficial**"]
    if entry.updated:
        meta.append(f"updated {entry.updated}")
    if entry.tags:
        meta.append("tags: " + ", ".join(entry.tags))
    link = f"\n\n[{entry.url}]({entry.url})" if entry.url else ""
    return f"### {esc(entry.title)}\n\n{' · '.join(meta)}\n\n{esc(entry.body)}{link}\n\n_source: {esc(entry.source)}_"


def gap_rows(gaps: Iterable[Gap]) -> list[list[Any]]:
    return [[g.count, preview(g.text, 100), g.channel, g.best_id or "-",
             "-" if g.best_score is None else round(float(g.best_score), 3), g.last_seen[:19]] for g in gaps]


def proposal_md(items: Sequence[ReviewItem]) -> str:
    if not items:
        return note_md("No FAQ proposals yet: they come from resolved conversations (Community).")
    return "\n\n".join(f"**#{i.id}** · {esc(i.status)}\n\n{esc(i.text)}" for i in items)


def ingest_md(report: IngestReport) -> str:
    r = report.to_dict()
    done = ok_md(f"Indexed {r['entries']} entries ({r['chunks']} chunks): {r['added']} added, {r['changed']} "
                 f"changed, {r['removed']} removed, {r['unchanged']} unchanged in {r['seconds']:.1f} s.")
    if not report.duplicates:
        return done
    rows = "".join(f"<li>{esc(line)}</li>" for line in report.duplicates[:20])
    more = f"<li>... and {len(report.duplicates) - 20} more</li>" if len(report.duplicates) > 20 else ""
    return (f'{done}<div class="copilot-note" id="kb-duplicates">{len(report.duplicates)} repeated FAQ rows: '
            f"{report.merged} merged (same answer), {report.renamed} kept under a new id (another answer; check "
            f"which one is current).<ul>{rows}{more}</ul></div>")


# Insights and users -----------------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0%}"


def _minutes(value: Any) -> str:
    if value is None:
        return "-"
    minutes = float(value)
    if minutes < 1.5:
        return f"{minutes * 60:.0f} s"
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def report_metrics(data: dict[str, Any]) -> dict[str, str]:
    """The insights report's headline figures, formatted."""
    cases, response, overall = data["cases"], data["response"], data["acceptance"]["overall"]
    crises = data["volume"]["by_kind"].get("crisis", 0)
    return {
        "cases": str(cases["total"]),
        "crises escalated": str(crises),
        "resolved": _pct(cases.get("resolution_rate")),
        "first response (median)": _minutes(response.get("first_response_minutes_median")),
        "answered within 1 h": _pct(response.get("within_1h_share")),
        "review time (median)": _minutes(response.get("review_minutes_median")),
        "acceptance rate": _pct(overall.get("acceptance_rate")),
        "accepted unedited": _pct(overall.get("unedited_share")),
        "mean edit distance": "-" if overall.get("edit_distance_mean") is None
        else f"{overall['edit_distance_mean']:.0f} chars",
        "promoters": str(data["promoters"]["total"]),
        "knowledge gaps": str(data["gaps"]["logged"]),
    }


def report_html(metrics: dict[str, str], figures: dict[str, bytes]) -> str:
    """Metric cards, then the report's charts (inline PNGs: the page needs nothing from outside)."""
    cells = "".join(f'<div class="metric"><div class="value">{esc(v)}</div><div class="label">{esc(k)}</div></div>'
                    for k, v in metrics.items())
    charts = "".join(f'<img class="chart" alt="{esc(name)}" data-chart="{esc(name)}" '
                     f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
                     for name, png in figures.items())
    return f'<div class="metrics" id="insight-metrics">{cells}</div><div class="charts">{charts}</div>'


def top_issues_md(data: dict[str, Any]) -> str:
    issues = data.get("top_issues") or []
    if not issues:
        return ""
    lines = ["| issue | cases | negative |", "| --- | ---: | ---: |"]
    lines += [f"| {esc(i['title'])} (`{esc(i['id'])}`) | {i['count']} | {_pct(i.get('negative_share'))} |"
              for i in issues]
    return "#### Top issues\n\n" + "\n".join(lines)


# Community -------------------------------------------------------------------------------------------


def promoter_rows(members: Iterable[Any]) -> list[list[Any]]:
    return [[f"@{m.handle}", round(m.score, 2), ", ".join(m.channels), ", ".join(m.interests[:4]), m.messages,
             m.consent, "opted out" if m.opted_out else ("yes" if m.contactable else "no"),
             m.last_contacted_at.strftime("%Y-%m-%d") if m.last_contacted_at else "-"] for m in members]


def drafted_md(what: str, items: Sequence[ReviewItem], notes: Sequence[str]) -> str:
    ids = ", ".join(f"#{i.id}" for i in items)
    head = (ok_md(f"Drafted {len(items)} {what} into the review queue ({ids}); a reviewer approves them on the "
                  "Review screen.") if items else note_md(f"No {what} drafted."))
    extra = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return head + (f"<ul>{extra}</ul>" if extra else "")


def first_steps_html(steps: Sequence[Step]) -> str:
    """The admin's set-up checklist: what is done, and how to do the rest."""
    left = sum(not s.done for s in steps)
    head = ("<b>Set-up: all done.</b>" if not left
            else f"<b>First steps for this install</b> ({left} of {len(steps)} left)")
    rows = "".join(
        f'<li class="step {"done" if s.done else "todo"}" data-step="{esc(s.key)}">'
        f'{"✓" if s.done else "☐"} {esc(s.title)}{"" if s.done else f" · <i>{esc(s.how)}</i>"}</li>'
        for s in steps)
    return f'<div class="first-steps" id="first-steps-list">{head}<ul>{rows}</ul></div>'


def user_rows(users: Iterable[User]) -> list[list[Any]]:
    return [[u.name, u.role, "yes" if u.has_password else "no (no password)",
             u.created_at.strftime("%Y-%m-%d %H:%M") if u.created_at else "-"] for u in users]


CSS = """
.copilot-error { color: #b91c1c; background: #fef2f2; border: 1px solid #fecaca; padding: 8px 12px;
  border-radius: 6px; margin: 4px 0; }
.copilot-ok { color: #166534; background: #f0fdf4; border: 1px solid #bbf7d0; padding: 8px 12px;
  border-radius: 6px; margin: 4px 0; }
.copilot-note { color: #374151; background: #f9fafb; border: 1px solid #e5e7eb; padding: 8px 12px;
  border-radius: 6px; margin: 4px 0; }
.badge { display: inline-block; padding: 2px 8px; margin: 2px 4px 2px 0; border-radius: 999px;
  background: #e5e7eb; color: #111827; font-size: 0.85em; }
.badge.crisis { background: #dc2626; color: white; font-weight: 700; }
.badge.possible { background: #f59e0b; color: #111827; font-weight: 700; }
.crisis-span, .crisis-note { margin: 4px 0; font-size: 0.9em; color: #374151; }
.badge.prio-1 { background: #fecaca; } .badge.prio-2 { background: #fed7aa; }
.badge.negative { background: #fee2e2; } .badge.positive { background: #dcfce7; }
.badge.private { background: #fef3c7; } .badge.cited { background: #dbeafe; font-weight: 600; }
.badge.status-escalated { background: #dc2626; color: white; } .badge.status-approved { background: #bbf7d0; }
.badge.status-posted { background: #86efac; } .badge.status-rejected { background: #fecaca; }
.source { border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 10px; margin-bottom: 8px; }
.source.cited { border-color: #60a5fa; background: #eff6ff; }
.source p { margin: 4px 0 0 0; font-size: 0.9em; color: #374151; }
.diff { white-space: pre-wrap; border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px; }
.diff del { background: #fee2e2; color: #991b1b; } .diff ins { background: #dcfce7; color: #166534;
  text-decoration: none; }
blockquote.inbound { border-left: 4px solid #9ca3af; margin: 6px 0; padding: 4px 10px; background: #f9fafb; }
.thread { margin: 6px 0; } .thread .turn { margin: 4px 0; padding: 4px 10px; border-radius: 6px; }
.thread .turn-in { border-left: 4px solid #9ca3af; background: #f9fafb; }
.thread .turn-out { border-left: 4px solid #2563eb; background: #eff6ff; margin-left: 24px; }
.metrics { display: flex; flex-wrap: wrap; gap: 10px; }
.metric { border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 14px; min-width: 130px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 12px; }
.charts img.chart { width: calc(50% - 6px); min-width: 420px; border: 1px solid #e5e7eb; border-radius: 8px; }
.metric .value { font-size: 1.5em; font-weight: 700; } .metric .label { color: #6b7280; font-size: 0.85em; }
.first-steps { border: 1px solid #bfdbfe; background: #eff6ff; border-radius: 8px; padding: 8px 12px; }
.first-steps ul { margin: 4px 0 0 0; padding-left: 4px; list-style: none; }
.first-steps li.done { color: #166534; } .first-steps li.todo i { color: #374151; }
#incident-banner { justify-content: flex-start; font-weight: 700; }
.badge.incident-open { background: #dc2626; color: white; } .badge.incident-resolved { background: #fde68a; }
.badge.incident-closed { background: #bbf7d0; }
.volume { margin-top: 8px; } .vol-row { display: flex; align-items: center; gap: 8px; font-size: 0.85em; }
.vol-at { width: 9.5em; color: #6b7280; } .vol-bar { display: inline-block; height: 10px; background: #60a5fa;
  border-radius: 3px; }
/* Toasts: at the bottom right, never over the header (its Log out button); only the newest message of a
   kind is shown (Gradio groups them), and the page closes them once their error is gone (TOAST_JS). */
.toast-wrap { top: auto !important; bottom: var(--size-4); }
.toast-messages > :not(:last-child), .toast-count { display: none !important; }
"""

# Run once when the page loads. A warning toast repeats an error the page shows beside what failed; once
# the page no longer shows it (the next success, or the status cleared as work goes on) the toast goes too.
TOAST_JS = """
() => {
  const ERROR = '.copilot-error[role="alert"]';  // error_md: what failed, beside it
  const has = (nodes, selector) => [...nodes].some((node) => node.nodeType === 1
      && (node.matches(selector) || node.querySelector(selector) !== null));
  const close = () => document.querySelectorAll(
      '.toast-body.warning [data-testid="toast-close"], .toast-body.error [data-testid="toast-close"]'
  ).forEach((button) => button.click());
  new MutationObserver((changes) => {
    const added = (selector) => changes.some((change) => has(change.addedNodes, selector));
    const removed = (selector) => changes.some((change) => has(change.removedNodes, selector));
    if (added(ERROR)) return;  // a new error: its own toast stays
    if (added('.copilot-ok') || removed(ERROR)) close();
  }).observe(document.body, {childList: true, subtree: true});
}
"""
