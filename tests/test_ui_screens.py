"""The screens' seams below the browser: named updates (dicts keyed by component), the login view of each
role, the live diff, the admin's set-up checklist from the real state, and the order of knowledge gaps."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from _ui_support import AGENT, AGENT_PW, COMPLAINT, REVIEWER, UiWorld, make_world

from copilot.errors import PermissionDenied, UserError
from copilot.ui import handlers as h
from copilot.ui import render
from copilot.ui.app import Screens, build_screens, on_login
from copilot.ui.callbacks import Context, guarded
from copilot.ui.first_steps import first_steps
from copilot.ui.screens import review


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> UiWorld:
    return make_world(tmp_path_factory.mktemp("ui-screens"))


@pytest.fixture(scope="module")
def app(world: UiWorld) -> tuple[Context, Screens]:
    return Context(world.pipeline), build_screens(world.pipeline)


def request(user: str | None) -> gr.Request:
    return SimpleNamespace(username=user)  # type: ignore[return-value]  # what a callback reads of it


# Named updates --------------------------------------------------------------------------------------------


def test_an_agent_logs_in_to_the_inbox_without_the_leads_tabs(app: tuple[Context, Screens]) -> None:
    ctx, s = app
    out = on_login(ctx, s, AGENT)
    assert out[s.tabs].selected == "inbox"
    assert s.review.tab not in out  # hidden tabs are only ever shown, never sent as hidden
    assert {s.inbox.tab, s.reply.tab, s.community.tab, s.knowledge.tab, s.insights.tab} <= set(out)
    assert out[s.knowledge.reindex].visible is False
    assert s.account.admin not in out and s.header.first_steps not in out
    assert "Logged in as **alice** (agent)" in out[s.header.account]
    assert {s.inbox.table, s.inbox.case_pick, s.inbox.mine} <= set(out)


def test_a_reviewer_starts_on_review_and_an_admin_also_gets_the_users_and_the_checklist(
        app: tuple[Context, Screens]) -> None:
    ctx, s = app
    lead = on_login(ctx, s, REVIEWER)
    assert lead[s.tabs].selected == "review" and lead[s.review.tab].visible is True
    assert lead[s.knowledge.reindex].visible is True and s.account.admin not in lead
    admin = on_login(ctx, s, "admin")
    assert admin[s.account.admin].visible is True
    assert [row[0] for row in admin[s.account.users]] == ["admin", AGENT, REVIEWER]
    steps = admin[s.header.first_steps]
    assert steps.visible is True  # the first-run password is still in use
    assert 'data-step="password"' in steps.value and "1 of 3 left" in steps.value


@pytest.mark.filterwarnings("ignore::UserWarning")  # the toast, raised outside a request, is a warning
def test_an_error_changes_only_the_status_it_belongs_to(app: tuple[Context, Screens]) -> None:
    ctx, s = app
    out = guarded(request("mallory"), s.inbox.message, lambda user: on_login(ctx, s, user))
    assert list(out) == [s.inbox.message] and "unknown user &#x27;mallory&#x27;" in out[s.inbox.message]
    assert list(guarded(request(None), s.review.message, lambda user: {})) == [s.review.message]


def test_the_diff_follows_the_reviewers_typing(world: UiWorld, app: tuple[Context, Screens]) -> None:
    ctx, s = app
    result = h.draft_reply(world.pipeline, AGENT, COMPLAINT, "twitter", "@dana_k")
    item = h.submit_reply(world.pipeline, AGENT, result.draft, result.draft.text)
    shown = review.item_shown(ctx, s.review, REVIEWER, item.id)
    assert shown[s.review.original] == item.original_text and shown[s.review.version] == item.version
    assert "Not edited" in shown[s.review.diff]
    typed = review.live_diff(shown[s.review.original], shown[s.review.text] + " Thanks for your patience.")
    assert "<ins>" in typed and "patience." in typed
    assert "Not edited" in review.live_diff(item.original_text, item.original_text)
    assert world.pipeline.queue.get(item.id).text == item.text  # typing saves nothing


# The admin's first steps ---------------------------------------------------------------------------------


def test_the_checklist_follows_the_real_state_of_a_new_install(tmp_path: Path) -> None:
    new = make_world(tmp_path, indexed=False, team=False)
    pipeline = new.pipeline
    assert [(step.key, step.done) for step in first_steps(pipeline, "admin")] == [
        ("password", False), ("users", False), ("index", False)]
    assert "3 of 3 left" in render.first_steps_html(first_steps(pipeline, "admin"))

    h.add_user(pipeline, "admin", AGENT, "agent", AGENT_PW)
    with pytest.raises(PermissionDenied):
        first_steps(pipeline, AGENT)  # admins only
    h.add_user(pipeline, "admin", "ada", "admin", "ada-password-1")
    assert {s.key for s in first_steps(pipeline, "admin") if s.done} == {"users"}  # an agent, not another admin
    h.reindex(pipeline, "admin")
    assert {s.key for s in first_steps(pipeline, "admin") if s.done} == {"users", "index"}
    h.change_password(pipeline, "admin", new.admin.password, "admin-password-2", "admin-password-2")
    steps = first_steps(pipeline, "admin")
    assert all(s.done for s in steps) and "all done" in render.first_steps_html(steps)


def test_a_second_admin_still_sees_that_the_first_run_password_is_in_use(tmp_path: Path) -> None:
    new = make_world(tmp_path, team=False)
    h.add_user(new.pipeline, "admin", "ada", "admin", "ada-password-1")
    assert not next(s for s in first_steps(new.pipeline, "ada") if s.key == "password").done
    h.reset_password(new.pipeline, "ada", "admin", "admin-password-2")
    assert next(s for s in first_steps(new.pipeline, "ada") if s.key == "password").done


# Knowledge gaps ------------------------------------------------------------------------------------------


def test_gaps_are_ranked_most_asked_then_worst_covered_then_most_recent(tmp_path: Path) -> None:
    new = make_world(tmp_path, indexed=False)
    asked = [("covered well", 0.61, "01"), ("asked thrice, half covered", 0.5, "02"),
             ("asked thrice, barely covered", 0.2, "03"), ("no entry at all", None, "04"),
             ("covered well, later", 0.61, "05")]
    asked += [asked[1], asked[2], asked[1], asked[2]]
    log = new.pipeline.settings.data_dir / "knowledge_gaps.jsonl"
    log.write_text("".join(json.dumps({"text": text, "best_score": score, "best_id": "kb-x", "channel": "forum",
                                       "time": f"2026-03-{day}T10:00:00"}) + "\n"
                           for text, score, day in asked), encoding="utf-8")
    gaps = h.knowledge_gaps(new.pipeline, AGENT)
    assert [g.text for g in gaps] == ["asked thrice, barely covered", "asked thrice, half covered",
                                      "no entry at all", "covered well, later", "covered well"]
    rows = render.gap_rows(gaps)
    assert [row[0] for row in rows] == [3, 3, 1, 1, 1] and [row[4] for row in rows] == [0.2, 0.5, "-", 0.61, 0.61]
    with pytest.raises(UserError):
        h.search_knowledge(new.pipeline, AGENT, "anything")  # nothing indexed in this world


def test_while_the_start_up_indexes_the_checklist_says_to_wait(tmp_path: Path) -> None:
    new = make_world(tmp_path, indexed=False, team=False)
    index = next(s for s in first_steps(new.pipeline, "admin", indexing=True) if s.key == "index")
    assert not index.done and "being indexed now" in index.how
