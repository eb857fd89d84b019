"""The web app's handlers as plain functions: every screen's action, role refusals, conflicts, bad input."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from _ui_support import AGENT, COMPLAINT, CRISIS, KB, REVIEWER, REWRITE, UiWorld, make_world

from copilot.errors import ConflictError, CopilotError, PermissionDenied, UserError
from copilot.queue.store import requires_individual_decision
from copilot.types import Inbound, Triage
from copilot.ui import access, render
from copilot.ui import community_handlers as ch
from copilot.ui import handlers as h
from copilot.ui.auth import MAX_FAILURES, LoginGuard, ensure_admin, initial_password_pending, password_file


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> UiWorld:
    """One indexed world shared by the tests that only add their own items."""
    return make_world(tmp_path_factory.mktemp("ui-world"))


@pytest.fixture
def fresh(tmp_path: Path) -> UiWorld:
    """A world of its own, for tests that count or order everything in it."""
    return make_world(tmp_path)


def submitted(world: UiWorld, text: str = COMPLAINT, *, edit: str | None = None, by: str = AGENT):
    result = h.draft_reply(world.pipeline, by, text, "twitter", "@dana_k")
    return h.submit_reply(world.pipeline, by, result.draft, edit if edit is not None else result.draft.text)


# Who may do what ---------------------------------------------------------------------------------------


def test_account_lists_the_screens_of_each_role(world: UiWorld) -> None:
    agent = access.account(world.pipeline, AGENT)
    reviewer = access.account(world.pipeline, REVIEWER)
    admin = access.account(world.pipeline, "admin")
    assert agent.role == "agent" and "review" not in agent.screens and "users" not in agent.screens
    assert {"inbox", "reply", "knowledge", "insights"} <= set(agent.screens)
    assert "review" in reviewer.screens and "users" not in reviewer.screens
    assert {"review", "users", "reindex"} <= set(admin.screens)
    assert admin.must_change_password and not agent.must_change_password


@pytest.mark.parametrize("user", [None, "", "mallory"])
def test_nobody_and_unknown_users_are_refused(world: UiWorld, user: str | None) -> None:
    with pytest.raises(PermissionDenied):
        h.inbox(world.pipeline, user)
    with pytest.raises(PermissionDenied):
        h.draft_reply(world.pipeline, user, COMPLAINT, "twitter")


def test_an_agent_cannot_approve_reject_publish_or_see_the_review_queue(world: UiWorld) -> None:
    item = submitted(world)
    with pytest.raises(PermissionDenied, match="review"):
        h.approve(world.pipeline, AGENT, item.id, item.version)
    with pytest.raises(PermissionDenied):
        h.reject(world.pipeline, AGENT, item.id, item.version, "no")
    with pytest.raises(PermissionDenied):
        h.review_list(world.pipeline, AGENT)
    with pytest.raises(PermissionDenied):
        h.publish(world.pipeline, AGENT)
    with pytest.raises(PermissionDenied):
        h.outbox(world.pipeline, AGENT)
    # The queue refuses it too, whatever a client sends past the handlers.
    with pytest.raises(PermissionDenied):
        world.pipeline.queue.approve(item.id, by=AGENT, version=item.version)
    assert world.pipeline.queue.get(item.id).status == "pending"


# Reply -------------------------------------------------------------------------------------------------


def test_a_complaint_is_drafted_grounded_with_its_sources_and_streams(world: UiWorld) -> None:
    tokens: list[str] = []
    result = h.draft_reply(world.pipeline, AGENT, COMPLAINT, "twitter", "@dana_k", on_token=tokens.append)
    draft = result.draft
    assert draft.status == "pending" and draft.triage.kind == "complaint"
    assert draft.text.startswith("@dana_k ") and "dimmer" in draft.text
    assert draft.cited_ids == ("kb-fix-bulb-flicker-dimmer",)
    assert set(draft.cited_ids) <= set(draft.retrieved_ids)
    assert result.sources[0].id == "kb-fix-bulb-flicker-dimmer" and result.sources[0].cited
    assert result.sources[0].title.startswith("Bulb flickers")
    assert [s.id for s in result.sources[1:]] and not any(s.cited for s in result.sources[1:])
    assert len(tokens) > 3 and "SOURCES" in "".join(tokens)
    assert result.inbound_id.startswith("ui-")


@pytest.mark.parametrize(("text", "channel", "message"), [
    ("", "twitter", "paste the customer's message"),
    ("   ", "twitter", "paste the customer's message"),
    ("hello?", "myspace", "unknown channel"),
])
def test_drafting_bad_input_is_a_readable_error(world: UiWorld, text: str, channel: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        h.draft_reply(world.pipeline, AGENT, text, channel)


def test_a_crisis_is_escalated_and_tops_the_inbox(fresh: UiWorld) -> None:
    calm = submitted(fresh)
    result = h.draft_reply(fresh.pipeline, AGENT, CRISIS, "email", None)
    assert result.draft.status == "escalated" and result.draft.triage.crisis
    assert result.draft.text  # a holding message, never a canned answer
    item = h.submit_reply(fresh.pipeline, AGENT, result.draft, result.draft.text)
    assert item.status == "escalated" and item.priority == 1
    rows = h.inbox(fresh.pipeline, AGENT)
    assert [r.case_id for r in rows] == [item.case_id, calm.case_id]
    assert rows[0].crisis and rows[0].item_status == "escalated" and not rows[1].crisis
    assert render.inbox_rows(rows)[0][0] == "⚠ CRISIS · safety: fire or smoke"
    reviewer_view = h.review_list(fresh.pipeline, REVIEWER)
    assert reviewer_view[0].id == item.id


def test_submitting_keeps_the_agents_edit_as_an_audited_change(world: UiWorld) -> None:
    result = h.draft_reply(world.pipeline, AGENT, COMPLAINT, "twitter", "@dana_k")
    edited = result.draft.text.replace("Sorry about the flicker", "So sorry about that flicker")
    item = h.submit_reply(world.pipeline, AGENT, result.draft, edited)
    assert item.status == "pending" and item.text == edited and item.original_text == result.draft.text
    assert item.edited_by == AGENT
    detail = h.review_detail(world.pipeline, REVIEWER, item.id)
    assert detail.edited
    assert [p.text.strip() for p in detail.diff if p.op == "insert"] == ["So sorry", "that"]
    assert [e.action for e in detail.audit] == ["draft", "edit"]
    assert "<ins>" in render.diff_html(detail.diff) and "<del>" in render.diff_html(detail.diff)
    assert detail.sources[0].id == "kb-fix-bulb-flicker-dimmer"


def test_submitting_without_a_draft_or_text_is_refused(world: UiWorld) -> None:
    result = h.draft_reply(world.pipeline, AGENT, COMPLAINT, "twitter")
    with pytest.raises(UserError, match="draft a reply first"):
        h.submit_reply(world.pipeline, AGENT, None, "hi")
    with pytest.raises(UserError, match="empty"):
        h.submit_reply(world.pipeline, AGENT, result.draft, "   ")


def test_rewrites(fresh: UiWorld) -> None:
    text = h.draft_reply(fresh.pipeline, AGENT, COMPLAINT, "twitter", "@dana_k").draft.text
    fresh.chat.replies = [REWRITE]  # from now on the fake model answers with the rewrite
    tokens: list[str] = []
    shorter = h.rewrite_reply(fresh.pipeline, AGENT, text, "shorter", "twitter", on_token=tokens.append)
    assert shorter == "@dana_k Sorry! Set the wall dimmer to full and dim in the app." and tokens
    with pytest.raises(UserError, match="unknown rewrite"):
        h.rewrite_reply(fresh.pipeline, AGENT, text, "funnier", "twitter")
    with pytest.raises(UserError, match="no draft"):
        h.rewrite_reply(fresh.pipeline, AGENT, "  ", "warmer", "twitter")
    with pytest.raises(UserError, match="language"):
        h.rewrite_reply(fresh.pipeline, AGENT, text, "translate", "twitter", "")


def test_opening_a_case_from_the_inbox(world: UiWorld) -> None:
    item = submitted(world)
    view = h.open_case(world.pipeline, AGENT, item.case_id)
    assert view.case.text == COMPLAINT and [i.id for i in view.items] == [item.id]
    with pytest.raises(UserError, match="pick a case"):
        h.open_case(world.pipeline, AGENT, None)
    with pytest.raises(CopilotError, match="no case"):
        h.open_case(world.pipeline, AGENT, 99999)
    assert item.id in [i.id for i in h.my_items(world.pipeline, AGENT)]


# Review ------------------------------------------------------------------------------------------------


def test_approve_as_drafted_and_publish_to_the_outbox(fresh: UiWorld) -> None:
    item = submitted(fresh)
    approved = h.approve(fresh.pipeline, REVIEWER, item.id, item.version, item.text)
    assert approved.status == "approved" and approved.approved_by == REVIEWER and approved.edit_distance == 0
    report = h.publish(fresh.pipeline, REVIEWER)
    assert report.posted == (item.id,)
    posted = h.outbox(fresh.pipeline, REVIEWER)
    assert [(i.id, i.status) for i in posted] == [(item.id, "posted")]
    lines = fresh.pipeline.settings.outbox_path.read_text().splitlines()
    assert [json.loads(line)["item_id"] for line in lines] == [item.id]
    assert h.publish(fresh.pipeline, REVIEWER).posted == ()  # exactly once
    assert h.inbox(fresh.pipeline, AGENT) == []  # the case is resolved
    assert "Posted 1" in render.publish_md(report)


def test_edit_and_approve_records_the_edit(world: UiWorld) -> None:
    item = submitted(world)
    final = item.text + " Reply here if it keeps flickering."
    approved = h.approve(world.pipeline, REVIEWER, item.id, item.version, final)
    assert approved.status == "approved" and approved.text == final and approved.edit_distance > 0
    assert [e.action for e in world.pipeline.queue.audit(item.id)] == ["draft", "edit", "approve"]
    with pytest.raises(UserError, match="empty"):
        h.approve(world.pipeline, REVIEWER, submitted(world).id, 1, "  ")


def test_a_stale_version_is_a_conflict_and_changes_nothing(world: UiWorld) -> None:
    item = submitted(world)
    h.save_edit(world.pipeline, REVIEWER, item.id, item.version, item.text + " (checked)")
    with pytest.raises(ConflictError, match="changed since version"):
        h.approve(world.pipeline, "admin", item.id, item.version)
    with pytest.raises(ConflictError):
        h.reject(world.pipeline, "admin", item.id, item.version, "stale")
    current = world.pipeline.queue.get(item.id)
    assert current.status == "pending" and current.version == item.version + 1


def test_reject_needs_a_reason_then_reopen(world: UiWorld) -> None:
    item = submitted(world)
    with pytest.raises(UserError, match="reason"):
        h.reject(world.pipeline, REVIEWER, item.id, item.version, "  ")
    rejected = h.reject(world.pipeline, REVIEWER, item.id, item.version, "Mention the app dimming first")
    assert rejected.status == "rejected" and rejected.reject_reason == "Mention the app dimming first"
    assert item.id in [i.id for i in h.review_list(world.pipeline, REVIEWER, "rejected")]
    with pytest.raises(ConflictError, match="cannot approve"):
        h.approve(world.pipeline, REVIEWER, item.id, rejected.version)
    reopened = h.reopen(world.pipeline, REVIEWER, item.id, rejected.version)
    assert reopened.status == "pending"


def test_review_input_errors(world: UiWorld) -> None:
    with pytest.raises(UserError, match="pick an item"):
        h.review_detail(world.pipeline, REVIEWER, None)
    with pytest.raises(UserError, match="pick an item"):
        h.approve(world.pipeline, REVIEWER, None, 1)
    with pytest.raises(UserError, match="unknown filter"):
        h.review_list(world.pipeline, REVIEWER, "lost")
    with pytest.raises(UserError, match="unknown kind"):
        h.review_list(world.pipeline, REVIEWER, "all", "poem")
    with pytest.raises(CopilotError, match="no queue item"):
        h.review_detail(world.pipeline, REVIEWER, 424242)


# Knowledge ---------------------------------------------------------------------------------------------


def test_search_and_view_an_entry(world: UiWorld) -> None:
    passages = h.search_knowledge(world.pipeline, AGENT, "bulb flickers on a dimmer switch", 5)
    assert passages[0].id == "kb-fix-bulb-flicker-dimmer" and len(passages) <= 5
    entry = h.view_entry(world.pipeline, AGENT, passages[0].id)
    assert entry.kind == "fix" and "dimmer" in entry.body
    assert "Bulb flickers" in render.entry_md(entry)
    with pytest.raises(UserError, match="type something"):
        h.search_knowledge(world.pipeline, AGENT, " ")
    with pytest.raises(UserError, match="no knowledge entry"):
        h.view_entry(world.pipeline, AGENT, "kb-nothing-here")


def test_knowledge_gaps_group_repeated_questions(fresh: UiWorld) -> None:
    question = "Zorblax quintuple wobbegong marmalade?"
    for _ in range(2):
        draft = h.draft_reply(fresh.pipeline, AGENT, question, "forum", "@polar").draft
        assert draft.knowledge_gap and not draft.cited_ids
    gaps = h.knowledge_gaps(fresh.pipeline, AGENT)
    assert [(g.text, g.count) for g in gaps] == [(question, 2)]
    assert h.faq_proposals(fresh.pipeline, AGENT) == []


def test_a_malformed_gap_line_is_reported_not_silently_dropped(fresh: UiWorld,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    question = "Zorblax quintuple wobbegong marmalade?"
    h.draft_reply(fresh.pipeline, AGENT, question, "forum", "@polar")
    with fresh.pipeline.gaps.path.open("a", encoding="utf-8") as handle:
        handle.write('{"text": "torn line\n')
    with caplog.at_level("WARNING", logger="copilot.ui.handlers"):
        gaps = h.knowledge_gaps(fresh.pipeline, AGENT)
    assert [(g.text, g.count) for g in gaps] == [(question, 1)]
    assert any("knowledge_gaps.jsonl:2: skipped a malformed line" in r.getMessage() for r in caplog.records)


def test_reindex_is_for_leads_and_reports_progress(world: UiWorld) -> None:
    with pytest.raises(PermissionDenied):
        h.reindex(world.pipeline, AGENT)
    calls: list[tuple[int, int]] = []
    report = h.reindex(world.pipeline, REVIEWER, lambda done, total: calls.append((done, total)))
    assert report.entries > 50 and report.removed == 0
    assert "Indexed" in render.ingest_md(report)


# Community and insights -------------------------------------------------------------------------------


def test_starters_are_drafted_into_the_queue_and_listed(fresh: UiWorld) -> None:
    drafted = ch.draft_starters(fresh.pipeline, AGENT, "", 2, "", "forum")
    assert len(drafted.items) == 2
    assert {i.kind for i in drafted.items} == {"starter"} and {i.status for i in drafted.items} == {"pending"}
    listed = ch.community_items(fresh.pipeline, AGENT)
    assert [i.id for i in listed] == sorted((i.id for i in drafted.items), reverse=True)
    assert "Drafted 2 discussion starters" in render.drafted_md("discussion starters", drafted.items, drafted.notes)
    with pytest.raises(UserError, match="between 1 and"):
        ch.draft_starters(fresh.pipeline, AGENT, "", 0, "", "forum")
    approved = h.approve(fresh.pipeline, REVIEWER, drafted.items[0].id, drafted.items[0].version)
    assert approved.status == "approved"  # the same review flow as a reply


def test_outreach_and_opt_out_need_a_known_member(fresh: UiWorld) -> None:
    assert ch.promoters(fresh.pipeline, AGENT, scan=True) == []
    with pytest.raises(UserError, match="pick a promoter"):
        ch.draft_outreach(fresh.pipeline, AGENT, "  ")
    with pytest.raises(CopilotError, match="not in the promoter registry"):
        ch.draft_outreach(fresh.pipeline, AGENT, "nobody")
    recorded = ch.opt_out(fresh.pipeline, AGENT, "@nobody", "asked us not to")
    assert recorded.promoter.opted_out and not recorded.promoter.contactable  # known before any scan
    with pytest.raises(UserError, match="opted out"):
        ch.draft_outreach(fresh.pipeline, AGENT, "nobody")
    assert ch.draft_faq_proposals(fresh.pipeline, AGENT).items == ()


PROPOSAL = """---
id: kb-faq-antarctica-shipping
title: Do you ship to Antarctica?
kind: faq
official: true
tags: [shipping]
products: []
updated: 2026-11-28
---
Do you ship to research stations in Antarctica?

Not yet: we ship to the countries listed on the shop page. Ask us in a DM and we will check a forwarding option.
"""


def test_approving_an_faq_proposal_writes_it_into_the_knowledge_base(tmp_path: Path) -> None:
    import shutil

    from copilot.types import Draft, Inbound, Triage

    kb = tmp_path / "knowledge"
    shutil.copytree(KB, kb)
    world = make_world(tmp_path / "data", kb=kb)
    triage = Triage(kind="question", sentiment="neutral", sentiment_score=0.0, priority=4, priority_score=5.0)
    draft = Draft(text=PROPOSAL, channel="forum", inbound=Inbound(text="gap cluster", channel="forum"),
                  triage=triage, cited_ids=(), retrieved_ids=(), confidence=0.5, template="t", template_hash="0",
                  latency_ms=1.0, kind="faq_proposal")
    item = world.pipeline.queue.submit(draft, by=AGENT)
    assert [i.id for i in h.faq_proposals(world.pipeline, AGENT)] == [item.id]
    approved = h.approve(world.pipeline, REVIEWER, item.id, item.version)
    assert approved.status == "approved"
    assert (kb / "faq" / "faq-antarctica-shipping.md").exists()
    assert h.view_entry(world.pipeline, AGENT, "kb-faq-antarctica-shipping").title == "Do you ship to Antarctica?"
    hits = h.search_knowledge(world.pipeline, AGENT, "ship to research stations in Antarctica")
    assert hits[0].id == "kb-faq-antarctica-shipping"  # re-indexed at once


def test_the_insights_report_counts_the_work(fresh: UiWorld) -> None:
    a = submitted(fresh)
    b = submitted(fresh, edit="@dana_k We're on it: turn the dimmer up and dim in the app.")
    crisis = h.draft_reply(fresh.pipeline, AGENT, CRISIS, "email").draft
    h.submit_reply(fresh.pipeline, AGENT, crisis, crisis.text)
    h.approve(fresh.pipeline, REVIEWER, a.id, a.version)
    h.reject(fresh.pipeline, REVIEWER, b.id, b.version, "too blunt")
    h.publish(fresh.pipeline, REVIEWER)
    report = ch.insights_report(fresh.pipeline, AGENT, "7d")
    metrics = render.report_metrics(report.data)
    assert metrics["cases"] == "3" and metrics["crises escalated"] == "1"
    assert metrics["acceptance rate"] == "50%" and metrics["accepted unedited"] == "100%"
    assert set(report.figures) >= {"volume", "acceptance"}
    page = render.report_html(metrics, report.figures)
    assert 'id="insight-metrics"' in page and page.count("data:image/png;base64,") == len(report.figures)
    with pytest.raises(UserError, match="unknown period"):
        ch.insights_report(fresh.pipeline, AGENT, "forever")
    with pytest.raises(PermissionDenied):
        ch.insights_report(fresh.pipeline, "mallory", "7d")


# Users, passwords and logins ---------------------------------------------------------------------------


def test_first_run_admin_has_a_random_password_in_a_private_file(fresh: UiWorld) -> None:
    settings = fresh.pipeline.settings
    path = password_file(settings)
    assert path == fresh.admin.path and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fresh.admin.password in path.read_text() and len(fresh.admin.password) >= 12
    assert fresh.pipeline.queue.verify_password("admin", fresh.admin.password) == "admin"
    assert ensure_admin(fresh.pipeline.queue, settings) is None  # only on the very first run
    assert "admin" in fresh.admin.message("http://127.0.0.1:7860")
    other = make_world(settings.data_dir.parent / "other")
    assert other.admin.password != fresh.admin.password  # no fixed default


def test_changing_the_first_run_password_forgets_it(fresh: UiWorld) -> None:
    settings = fresh.pipeline.settings
    with pytest.raises(PermissionDenied, match="current password"):
        h.change_password(fresh.pipeline, "admin", "wrong", "new-admin-pass", "new-admin-pass")
    with pytest.raises(UserError, match="differ"):
        h.change_password(fresh.pipeline, "admin", fresh.admin.password, "new-admin-pass", "other-pass")
    with pytest.raises(UserError, match="at least"):
        h.change_password(fresh.pipeline, "admin", fresh.admin.password, "short", "short")
    h.change_password(fresh.pipeline, "admin", fresh.admin.password, "new-admin-pass", "new-admin-pass")
    assert fresh.pipeline.queue.verify_password("admin", "new-admin-pass") == "admin"
    assert fresh.pipeline.queue.verify_password("admin", fresh.admin.password) is None
    assert not password_file(settings).exists() and not initial_password_pending(settings, "admin")
    assert not access.account(fresh.pipeline, "admin").must_change_password


def test_only_admins_manage_users(fresh: UiWorld) -> None:
    with pytest.raises(PermissionDenied):
        h.add_user(fresh.pipeline, REVIEWER, "bob", "agent", "bob-password")
    with pytest.raises(PermissionDenied):
        h.list_users(fresh.pipeline, AGENT)
    with pytest.raises(UserError, match="at least"):
        h.add_user(fresh.pipeline, "admin", "bob", "agent", "short")
    added = h.add_user(fresh.pipeline, "admin", "bob", "agent", "bob-password")
    assert added.role == "agent" and "bob" in [u.name for u in h.list_users(fresh.pipeline, "admin")]
    with pytest.raises(PermissionDenied):
        h.reset_password(fresh.pipeline, AGENT, "bob", "hijacked-pass")
    h.reset_password(fresh.pipeline, "admin", "bob", "bob-password-2")
    assert fresh.pipeline.queue.verify_password("bob", "bob-password-2") == "agent"


def test_login_guard_checks_passwords_and_locks_out_guessing(world: UiWorld) -> None:
    now = [1000.0]
    guard = LoginGuard(world.pipeline.queue, clock=lambda: now[0])
    assert guard(AGENT, "alice-password-1")
    assert not guard(AGENT, "nope") and not guard("nobody", "x") and not guard("", "")
    for _ in range(MAX_FAILURES):
        assert not guard(REVIEWER, "guess")
    assert guard.locked(REVIEWER) and not guard(REVIEWER, "rita-password-1")  # locked even when right
    now[0] += 61
    assert guard(REVIEWER, "rita-password-1")


# Rendering and the app ---------------------------------------------------------------------------------


def test_customer_text_is_escaped_in_the_page(world: UiWorld) -> None:
    assert "<script>" not in render.error_md("<script>alert(1)</script>")
    detail = h.review_detail(world.pipeline, REVIEWER,
                             submitted(world, COMPLAINT + " <img src=x onerror=alert(1)>").id)
    assert "<img" not in render.detail_html(detail) and "&lt;img" in render.detail_html(detail)


def test_the_app_builds_and_hides_unexpected_errors(world: UiWorld) -> None:
    from copilot.ui.app import build_app
    from copilot.ui.callbacks import message_of

    demo = build_app(world.pipeline)
    assert demo.title == "Reply copilot"
    assert message_of(UserError("the message is empty")) == "the message is empty"
    hidden = message_of(RuntimeError("secret internals at /srv/x.py line 3"))
    assert "secret" not in hidden and "RuntimeError" in hidden


# Crisis levels and spam --------------------------------------------------------------------------------

POSSIBLE = "Honestly some days I don't see the point of going on. Anyway the hub is offline again."
POSSIBLE_SPAN = "I don't see the point of going on"
CLEARED = COMPLAINT + " and honestly it's killing me"
CLEARED_NOTE = "screened for self-harm on “killing me”; cleared (P 0.03): “killing me” reads as a figure of speech"
SPAM = "FREE followers!!! 10k for $5, visit cheap-followers.example now"
HOLDING = ("We're so sorry you're going through this. A member of our team will reach out to you personally. If "
           "your life is in danger, please call your local emergency number or a crisis line now.")


def label(world: UiWorld, text: str, kind: str = "complaint", *, priority: int = 3, **crisis: object) -> None:
    """Have the test triager give ``text`` these labels (what the real triager would have said)."""
    world.triager.overrides[text] = Triage(
        kind=kind, sentiment="negative", sentiment_score=-0.6, priority=priority, priority_score=90.0 - 20 * priority,
        confidence=0.8, **crisis)  # type: ignore[arg-type]


def possible(world: UiWorld, reason: str = "self-harm") -> None:
    label(world, POSSIBLE, crisis_level="possible", crisis_reason=reason, crisis_span=POSSIBLE_SPAN,
          crisis_note="screened on its words (P 0.55): a person decides")


def test_the_inbox_puts_crises_then_possible_crises_then_the_rest(fresh: UiWorld) -> None:
    calm = submitted(fresh)  # P2 and waiting longest: first among the rest
    question = submitted(fresh, "How do I set a schedule for the porch light?")
    possible(fresh)
    maybe = submitted(fresh, POSSIBLE)  # P3: still above every ordinary case
    label(fresh, CRISIS, "crisis", priority=1, crisis=True, crisis_level="crisis", crisis_reason="danger: fire",
          crisis_span="started smoking")
    crisis = submitted(fresh, CRISIS)
    assert crisis.status == "escalated" and maybe.status == "pending"
    rows = h.inbox(fresh.pipeline, AGENT)
    assert [r.case_id for r in rows] == [crisis.case_id, maybe.case_id, calm.case_id, question.case_id]
    assert [r.crisis_level for r in rows] == ["crisis", "possible", None, None]
    assert rows[1].crisis_reason == "self-harm" and rows[1].crisis_span == POSSIBLE_SPAN and not rows[1].crisis
    marks = [row[0] for row in render.inbox_rows(rows)]
    assert marks == ["⚠ CRISIS · danger: fire", "possible crisis · self-harm", "", ""]
    assert render.case_choices(rows)[1][0].startswith(f"possible crisis · self-harm · #{maybe.case_id} ")


def test_a_possible_crisis_stays_pending_with_the_holding_message_for_a_person(fresh: UiWorld) -> None:
    possible(fresh)
    calls = len(fresh.chat.seen)
    result = h.draft_reply(fresh.pipeline, AGENT, POSSIBLE, "twitter", "@kim")
    draft = result.draft
    assert len(fresh.chat.seen) == calls  # no troubleshooting generated for it
    assert draft.status == "pending" and draft.needs_attention
    assert draft.text == f"@kim {HOLDING}"
    assert draft.flags[0] == f"possible crisis: self-harm — a person decides ({POSSIBLE_SPAN})"
    assert draft.cited_ids == ("kb-crisis-policy",)
    badges = render.triage_html(draft.triage)
    assert "possible crisis · self-harm" in badges and POSSIBLE_SPAN.replace("'", "&#x27;") in badges
    assert "a person decides" in badges and "POSSIBLE CRISIS" in render.draft_status_html(draft)
    item = h.submit_reply(fresh.pipeline, AGENT, draft, draft.text)
    assert item.status == "pending"  # not escalated: it waits for a person, first in the inbox
    assert (item.crisis_level, item.crisis_reason, item.crisis_span) == ("possible", "self-harm", POSSIBLE_SPAN)
    assert requires_individual_decision(item)
    assert "possible crisis" in render.review_rows([item])[0][0]
    assert "possible crisis · self-harm" in render.detail_html(h.review_detail(fresh.pipeline, REVIEWER, item.id))


def test_a_possible_danger_gets_the_safety_holding_message(fresh: UiWorld) -> None:
    possible(fresh, "danger: electric")
    draft = h.draft_reply(fresh.pipeline, AGENT, POSSIBLE, "email").draft
    assert draft.status == "pending" and draft.text.startswith("Please stop using it now and unplug it")


def test_a_cleared_message_drafts_normally_and_says_why_it_was_cleared(fresh: UiWorld) -> None:
    label(fresh, CLEARED, priority=2, crisis_span="killing me", crisis_note=CLEARED_NOTE)
    result = h.draft_reply(fresh.pipeline, AGENT, CLEARED, "twitter", "@dana_k")
    draft = result.draft
    assert draft.status == "pending" and not draft.needs_attention
    assert "dimmer" in draft.text and draft.cited_ids == ("kb-fix-bulb-flicker-dimmer",)
    assert f"crisis screen cleared: {CLEARED_NOTE}" in draft.flags
    badges = render.triage_html(draft.triage)
    assert "crisis screen: cleared" in badges and "Cleared by the crisis screen" in badges
    assert "possible crisis" not in badges and "CRISIS" not in badges
    item = h.submit_reply(fresh.pipeline, AGENT, draft, draft.text)
    assert item.crisis_level is None and item.crisis_note == CLEARED_NOTE
    assert not requires_individual_decision(item)
    assert h.inbox(fresh.pipeline, AGENT)[0].crisis_level is None


def test_spam_is_kept_as_a_case_seen_only_under_the_spam_filter(fresh: UiWorld) -> None:
    calm = submitted(fresh)
    label(fresh, SPAM, "spam", priority=4)
    result = h.draft_reply(fresh.pipeline, AGENT, SPAM, "twitter", "@deals4u")
    assert result.draft.status == "skipped" and result.draft.text == "" and result.spam_case_id is not None
    assert "Spam filter" in render.draft_status_html(result.draft, spam_case=result.spam_case_id)
    again = h.draft_reply(fresh.pipeline, AGENT, SPAM, "twitter", "@deals4u", inbound_id=result.inbound_id)
    assert again.spam_case_id == result.spam_case_id  # the same message is one case
    assert [r.case_id for r in h.inbox(fresh.pipeline, AGENT)] == [calm.case_id]
    spam = h.inbox(fresh.pipeline, AGENT, show="spam")
    assert [(r.case_id, r.spam, r.item_id) for r in spam] == [(result.spam_case_id, True, None)]
    assert render.inbox_rows(spam)[0][0] == "spam"
    assert {r.case_id for r in h.inbox(fresh.pipeline, AGENT, show="all")} == {calm.case_id, result.spam_case_id}
    with pytest.raises(UserError, match="unknown inbox filter"):
        h.inbox(fresh.pipeline, AGENT, show="junk")
    assert not any(i.case_id == result.spam_case_id for i in fresh.pipeline.queue.list_items(status="all"))


def test_a_real_customer_marked_as_spam_is_answered_only_by_a_person(fresh: UiWorld) -> None:
    label(fresh, SPAM, "spam", priority=4)
    result = h.draft_reply(fresh.pipeline, AGENT, SPAM, "twitter", "@deals4u")
    view = h.open_case(fresh.pipeline, AGENT, result.spam_case_id)
    assert view.case.text == SPAM and view.items == ()
    with pytest.raises(UserError, match="write the reply yourself"):
        h.submit_reply(fresh.pipeline, AGENT, result.draft, "  ")
    written = "@deals4u Sorry, our filter took you for spam. What can we help with?"
    item = h.submit_reply(fresh.pipeline, AGENT, result.draft, written)
    assert item.status == "pending" and item.text == written and item.case_id == result.spam_case_id
    assert item.draft["needs_attention"] and any("written by alice" in f for f in item.draft["flags"])
    assert [r.case_id for r in h.inbox(fresh.pipeline, AGENT)] == [item.case_id]  # back among the cases
    assert h.inbox(fresh.pipeline, AGENT, show="spam") == []
    assert h.publish(fresh.pipeline, REVIEWER).posted == ()  # nothing goes out before a reviewer approves
    approved = h.approve(fresh.pipeline, REVIEWER, item.id, item.version)
    assert approved.status == "approved" and approved.approved_by == REVIEWER


# Conversations -----------------------------------------------------------------------------------------


def test_a_follow_up_shows_its_thread_in_review_and_reply_and_is_drafted_with_it(fresh: UiWorld) -> None:
    from dataclasses import replace

    from copilot.queue.publish import OutboxPublisher

    pipe = fresh.pipeline
    first = pipe.drafter.draft(Inbound(text="My hub shows a solid amber light", channel="chat", author="@sam",
                                       id="cw-1", conversation="chatwoot:1:42"))
    item = pipe.queue.submit(first, by=AGENT)
    pipe.actions.approve(item.id, by=REVIEWER, version=item.version)
    pipe.queue.publish_approved(OutboxPublisher(pipe.settings.outbox_path), by=REVIEWER)
    follow = replace(first, inbound=Inbound(text="Unplugged it like you said, still amber", channel="chat",
                                            author="@sam", id="cw-2", conversation="chatwoot:1:42"))
    second = pipe.queue.submit(follow, by=AGENT)
    detail = h.review_detail(pipe, REVIEWER, second.id)
    assert [t.direction for t in detail.thread] == ["in", "out", "in"]
    page = render.detail_html(detail)
    assert "Conversation (3 messages)" in page and "we replied" in page
    assert page.index("solid amber light") < page.index("Unplugged it like you said")
    view = h.open_case(pipe, AGENT, second.case_id)
    assert view.case.text == "Unplugged it like you said, still amber" and len(view.thread) == 3
    # Drafting the opened case again (the Reply screen sends the case's first message id) sees the thread.
    again = h.draft_reply(pipe, AGENT, view.case.text, "chat", "@sam", inbound_id=view.case.inbound_id).draft
    # two earlier turns (the first message, our reply): the message itself is not its own history
    assert "follow-up: drafted with the 2 earlier message(s) of the conversation" in again.flags
    single = submitted(fresh)
    assert len(h.review_detail(pipe, REVIEWER, single.id).thread) == 1
    assert "Conversation (" not in render.detail_html(h.review_detail(pipe, REVIEWER, single.id))
