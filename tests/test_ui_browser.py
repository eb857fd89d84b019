"""The web app in Debian's headless Chromium, against the real server on loopback (fake chat model and
embeddings, the sample knowledge base). Screenshots of each main screen go to test-output/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _ui_support import (
    AGENT,
    AGENT_PW,
    COMPLAINT,
    CRISIS,
    REPO_ROOT,
    REVIEWER,
    REVIEWER_PW,
    UiWorld,
    make_world,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CHROMIUM = os.environ.get("COPILOT_TEST_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = REPO_ROOT / "test-output" / "screenshots"
WAIT_MS = 20_000

if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
    pytest.skip(f"Chromium not found at {CHROMIUM} (install it with scripts/system-deps.sh)",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
sync_api.expect.set_options(timeout=WAIT_MS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(world: UiWorld) -> Iterator[str]:
    """The world's web app on a free local port, closed afterwards; yields its URL."""
    from copilot.ui.app import launch

    port = free_port()
    demo = launch(world.pipeline, host="127.0.0.1", port=port, block=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, UiWorld]]:
    world = make_world(tmp_path_factory.mktemp("ui-browser"))
    with served(world) as url:
        yield url, world


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """One user's browser context: its own cookies, outside requests blocked and counted."""

    def __init__(self, browser: Any, url: str) -> None:
        self.url = url
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.outside: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)

    def _route(self, route: Any) -> None:
        address = route.request.url
        if address.startswith((self.url, "data:", "blob:")):
            route.continue_()
        else:  # the page must need nothing from outside this machine
            self.outside.append(address)
            route.abort()

    def login(self, name: str, password: str) -> Any:
        page = self.page
        page.goto(self.url)
        page.get_by_label("username").fill(name)
        page.get_by_label("password").fill(password)
        page.get_by_role("button", name="Login").click()
        expect(page.locator("#account")).to_contain_text(f"Logged in as {name}")
        return page

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name, exact=True).click()

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        assert not self.outside, f"the page asked for outside addresses: {self.outside}"
        self.context.close()


def expect(locator: Any) -> Any:
    return sync_api.expect(locator)


def pick(page: Any, dropdown: str, option: str | re.Pattern[str]) -> None:
    """Choose an option of a Gradio dropdown by its label."""
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option).first.click()


@pytest.fixture
def session(app: tuple[str, UiWorld], browser: Any) -> Iterator[Any]:
    made: list[Session] = []

    def open_session() -> Session:
        made.append(Session(browser, app[0]))
        return made[-1]

    yield open_session
    for s in made:
        s.close()


# Logging in --------------------------------------------------------------------------------------------


def test_nothing_is_usable_without_logging_in(app: tuple[str, UiWorld], session: Any) -> None:
    url, _world = app
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/config").status_code == 401
        assert client.get("/gradio_api/info").status_code == 401
        assert client.post("/gradio_api/queue/join", json={"data": [], "fn_index": 0}).status_code == 401
        assert client.post("/gradio_api/call/approve", json={"data": [1, "x", "", "all", "all"]}).status_code == 401
        assert client.post("/login", data={"username": AGENT, "password": "wrong"}).status_code == 400
    s = session()
    s.page.goto(url)
    expect(s.page.get_by_role("button", name="Login")).to_be_visible()
    s.page.get_by_label("username").fill(AGENT)
    s.page.get_by_label("password").fill("not-the-password")
    s.page.get_by_role("button", name="Login").click()
    expect(s.page.get_by_text("Incorrect credentials")).to_be_visible()
    s.shot("01-login")


# The acceptance flow -----------------------------------------------------------------------------------


def test_draft_edit_submit_then_a_reviewer_approves_and_publishes(app: tuple[str, UiWorld], session: Any) -> None:
    _url, world = app
    agent = session()
    page = agent.login(AGENT, AGENT_PW)
    expect(page.get_by_role("tab", name="Review")).to_have_count(0)  # an agent has no review screen
    agent.tab("Reply")
    page.locator("#message textarea").fill(COMPLAINT)
    page.locator("#author textarea").fill("@dana_k")
    page.locator("#draft-btn").click()
    expect(page.locator("#draft-status")).to_contain_text("confidence")
    expect(page.locator("#triage")).to_contain_text("complaint")
    expect(page.locator("#sources")).to_contain_text("kb-fix-bulb-flicker-dimmer")
    expect(page.locator("#sources .source.cited")).to_have_count(1)
    reply = page.locator("#reply-text textarea")
    expect(reply).to_have_value(re.compile(r"^@dana_k Sorry about the flicker.*dimmer"))
    agent.shot("02-reply-draft")

    edited = reply.input_value() + " Reply here if it keeps flickering."
    reply.fill(edited)
    page.locator("#submit-btn").click()
    expect(page.locator("#reply-msg")).to_contain_text("Submitted as item #")
    item_id = int(re.search(r"item #(\d+)", page.locator("#reply-msg").inner_text()).group(1))
    assert world.pipeline.queue.get(item_id).text == edited
    agent.tab("Inbox")
    expect(page.locator("#inbox-table")).to_contain_text("@dana_k")
    expect(page.locator("#mine-table")).to_contain_text("pending")
    agent.shot("03-inbox")

    reviewer = session()
    page = reviewer.login(REVIEWER, REVIEWER_PW)
    expect(page.get_by_role("tab", name="Review")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#review-table")).to_contain_text("@dana_k")
    pick(page, "#item-pick", re.compile(rf"^#{item_id} "))
    expect(page.locator("#item-head")).to_contain_text(f"Item #{item_id}")
    expect(page.locator("#item-diff ins")).to_contain_text("keeps flickering")
    expect(page.locator("#item-sources")).to_contain_text("kb-fix-bulb-flicker-dimmer")
    reviewer.shot("04-review")
    page.locator("#approve-btn").click()
    expect(page.locator("#review-msg")).to_contain_text(f"Item #{item_id} approved")
    page.locator("#publish-btn").click()
    expect(page.locator("#publish-msg")).to_contain_text("Posted 1")
    expect(page.locator("#outbox-table")).to_contain_text("keeps flickering")
    expect(page.locator("#outbox-table")).to_contain_text("posted")
    reviewer.shot("05-outbox")

    item = world.pipeline.queue.get(item_id)
    assert item.status == "posted" and item.approved_by == REVIEWER and item.text == edited
    assert str(item_id) in world.pipeline.settings.outbox_path.read_text()


def test_rewrites_and_submit_are_locked_while_a_draft_streams(app: tuple[str, UiWorld], session: Any) -> None:
    _url, world = app
    agent = session()
    page = agent.login(AGENT, AGENT_PW)
    agent.tab("Reply")
    page.locator("#message textarea").fill(COMPLAINT)
    world.chat.token_delay_s = 0.12
    try:
        page.locator("#draft-btn").click()
        for button in ("#rw-warmer", "#rw-shorter", "#submit-btn", "#draft-btn"):
            expect(page.locator(button)).to_be_disabled()
        expect(page.locator("#draft-status")).to_contain_text("confidence")
        for button in ("#rw-warmer", "#rw-shorter", "#submit-btn", "#draft-btn"):
            expect(page.locator(button)).to_be_enabled()
        assert not page.locator("#reply-text textarea").input_value().lstrip().startswith("{")
    finally:
        world.chat.token_delay_s = 0.0


def test_a_crisis_shows_as_escalated_and_tops_the_inbox(app: tuple[str, UiWorld], session: Any) -> None:
    _url, _world = app
    s = session()
    page = s.login(AGENT, AGENT_PW)
    s.tab("Reply")
    page.locator("#message textarea").fill(CRISIS)
    page.locator("#draft-btn").click()
    expect(page.locator("#draft-status")).to_contain_text("ESCALATED")
    expect(page.locator("#triage")).to_contain_text("CRISIS")
    s.shot("06-crisis")
    page.locator("#submit-btn").click()
    expect(page.locator("#reply-msg")).to_contain_text("escalated")
    s.tab("Inbox")
    first_row = page.locator("#inbox-table tbody tr").first
    expect(first_row).to_contain_text("CRISIS")
    expect(first_row).to_contain_text("escalated")
    s.shot("07-inbox-crisis-first")


POSSIBLE = "Some days I don't see the point of going on. Anyway the hub is offline again."
POSSIBLE_SPAN = "I don't see the point of going on"
SPAM = "FREE followers!!! 10k for $5 at cheap-followers.example"


@pytest.fixture(scope="module")
def triaged_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, UiWorld]]:
    """An app whose inbox holds an ordinary complaint, a possible crisis and a message triaged as spam."""
    from copilot.types import Triage
    from copilot.ui import handlers as h
    world = make_world(tmp_path_factory.mktemp("ui-triaged"))
    overrides = world.triager.overrides
    overrides[POSSIBLE] = Triage(kind="complaint", sentiment="negative", sentiment_score=-0.7, priority=3,
                                 priority_score=40.0, crisis_level="possible", crisis_reason="self-harm",
                                 crisis_span=POSSIBLE_SPAN, crisis_note="screened on its words: a person decides")
    overrides[SPAM] = Triage(kind="spam", sentiment="neutral", sentiment_score=0.0, priority=4, priority_score=5.0)
    for text, author in ((COMPLAINT, "@dana_k"), (POSSIBLE, "@kim")):
        draft = h.draft_reply(world.pipeline, AGENT, text, "twitter", author).draft
        h.submit_reply(world.pipeline, AGENT, draft, draft.text)
    h.draft_reply(world.pipeline, AGENT, SPAM, "twitter", "@deals4u")
    with served(world) as url:
        yield url, world


def test_a_possible_crisis_is_listed_first_and_spam_only_under_its_filter(
        triaged_app: tuple[str, UiWorld], browser: Any) -> None:
    url, _world = triaged_app
    s = Session(browser, url)
    try:
        page = s.login(AGENT, AGENT_PW)
        # The table's data rows (its hidden <tbody> is a row of sample cells for measuring column widths).
        rows = page.locator('#inbox-table [role="row"][data-index]')
        expect(rows).to_have_count(2)  # the complaint (P2) and the possible crisis (P3); spam is set aside
        expect(rows.first).to_contain_text("possible crisis · self-harm")
        expect(rows.first).to_contain_text("@kim")
        expect(rows.nth(1)).to_contain_text("@dana_k")
        expect(page.locator("#inbox-table")).not_to_contain_text("cheap-followers")
        s.shot("13-inbox-possible-crisis-first")
        pick(page, "#inbox-filter", "Spam")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("cheap-followers")
        expect(rows.first).to_contain_text("@deals4u")
        s.shot("14-inbox-spam")
        pick(page, "#inbox-filter", "Cases")
        expect(rows.first).to_contain_text("possible crisis · self-harm")
        pick(page, "#case-pick", re.compile(r"^possible crisis · self-harm · #"))
        page.locator("#case-open").click()
        expect(page.locator("#triage")).to_contain_text("possible crisis · self-harm")
        expect(page.locator("#triage")).to_contain_text(POSSIBLE_SPAN)
    finally:
        s.close()


def test_an_agent_cannot_approve_even_by_calling_the_server(app: tuple[str, UiWorld]) -> None:
    """The approve endpoint itself refuses an agent: the role check is on the server, not in the layout."""
    from copilot.ui import handlers as h

    url, world = app
    result = h.draft_reply(world.pipeline, AGENT, COMPLAINT, "twitter", "@dana_k")
    item = h.submit_reply(world.pipeline, AGENT, result.draft, result.draft.text)
    with httpx.Client(base_url=url, timeout=20) as client:
        assert client.post("/login", data={"username": AGENT, "password": AGENT_PW}).status_code == 200
        # Inputs of /approve: item, its text, a reason, the status and kind filters (the version is page state).
        started = client.post("/gradio_api/call/approve",
                              json={"data": [item.id, item.text, "", "pending,escalated", "all"]})
        assert started.status_code == 200, started.text
        events = client.get(f"/gradio_api/call/approve/{started.json()['event_id']}").text
    assert "event: complete" in events and "alice is an agent" in events
    assert world.pipeline.queue.get(item.id).status == "pending"


def test_a_stale_approval_is_a_clear_conflict(app: tuple[str, UiWorld], session: Any) -> None:
    from copilot.ui import handlers as h

    _url, world = app
    result = h.draft_reply(world.pipeline, AGENT, COMPLAINT, "facebook", None)
    item = h.submit_reply(world.pipeline, AGENT, result.draft, result.draft.text)
    s = session()
    page = s.login(REVIEWER, REVIEWER_PW)
    pick(page, "#item-pick", re.compile(rf"^#{item.id} "))
    expect(page.locator("#item-head")).to_contain_text(f"version {item.version}")
    # Meanwhile someone else edits the item.
    changed = world.pipeline.queue.edit(item.id, item.text + " (edited meanwhile)", by="admin", version=item.version)
    page.locator("#approve-btn").click()
    expect(page.locator("#review-msg")).to_contain_text("Conflict")
    expect(page.locator("#review-msg")).to_contain_text("nothing was applied")
    expect(page.locator("#item-head")).to_contain_text(f"version {changed.version}")  # reloaded as it is now
    expect(page.locator("#item-text textarea")).to_have_value(changed.text)
    s.shot("12-conflict")
    assert world.pipeline.queue.get(item.id).status == "pending"


def test_errors_are_messages_in_the_page(app: tuple[str, UiWorld], session: Any) -> None:
    s = session()
    page = s.login(AGENT, AGENT_PW)
    s.tab("Reply")
    page.locator("#draft-btn").click()
    expect(page.locator("#reply-msg")).to_contain_text("paste the customer's message first")
    page.locator("#submit-btn").click()
    expect(page.locator("#reply-msg")).to_contain_text("draft a reply first")
    assert "Traceback" not in page.content()


# The other screens -------------------------------------------------------------------------------------


def test_knowledge_community_and_insights_screens(app: tuple[str, UiWorld], session: Any) -> None:
    s = session()
    page = s.login(REVIEWER, REVIEWER_PW)
    s.tab("Knowledge")
    page.locator("#kb-query textarea").fill("bulb flickers on a dimmer switch")
    page.locator("#kb-search").click()
    expect(page.locator("#kb-results")).to_contain_text("kb-fix-bulb-flicker-dimmer")
    expect(page.locator("#kb-entry")).to_contain_text("Bulb flickers or buzzes on a dimmer switch")
    page.locator("#kb-reindex").click()
    expect(page.locator("#kb-reindex-msg")).to_contain_text("Indexed")
    s.shot("08-knowledge")

    s.tab("Community")
    page.locator("#starters-btn").click()
    expect(page.locator("#starters-msg")).to_contain_text("Drafted 3 discussion starters")
    expect(page.locator("#community-table")).to_contain_text("starter")
    s.shot("09-community")

    s.tab("Insights")
    expect(page.locator("#insight-metrics")).to_contain_text("acceptance rate")
    expect(page.locator("#insights-report img.chart").first).to_be_visible()
    expect(page.locator("#insights-file a")).to_have_attribute("href", re.compile(r"report\.html$"))
    s.shot("10-insights")


def test_the_admin_is_asked_to_change_the_first_run_password_then_logs_out(app: tuple[str, UiWorld], session: Any) -> None:
    _url, world = app
    s = session()
    page = s.login("admin", world.admin.password)
    expect(page.locator("#account")).to_contain_text("first-run password")
    s.tab("Account")
    expect(page.locator("#users-table")).to_contain_text(REVIEWER)
    s.shot("11-account")
    cookies = {c["name"]: c["value"] for c in s.context.cookies()}
    with httpx.Client(base_url=s.url, timeout=10, cookies=cookies) as client:
        assert client.get("/config").status_code == 200  # logged in
    page.locator("#logout").click()
    expect(page.get_by_role("button", name="Login")).to_be_visible()
    with httpx.Client(base_url=s.url, timeout=10, cookies=cookies) as client:
        assert client.get("/config").status_code == 401  # the old session is gone on the server too


# The README's screens: a month of simulated history ------------------------------------------------------


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, UiWorld]]:
    world = make_world(tmp_path_factory.mktemp("ui-demo"), demo_cases=150)
    with served(world) as url:
        yield url, world


def test_the_screens_with_a_month_of_history(demo_app: tuple[str, UiWorld], browser: Any) -> None:
    url, _world = demo_app
    s = Session(browser, url)
    try:
        page = s.login(REVIEWER, REVIEWER_PW)
        s.tab("Inbox")
        page.locator("#inbox-refresh").click()
        expect(page.locator("#inbox-table tbody tr")).not_to_have_count(0)
        s.shot("20-demo-inbox")
        s.tab("Review")
        expect(page.locator("#review-table")).to_contain_text("pending")
        s.tab("Community")
        page.locator("#promoters-refresh").click()
        expect(page.locator("#promoters-table")).to_contain_text("@")
        s.shot("21-demo-community")
        s.tab("Insights")
        pick(page, "#insights-period", "30d")
        expect(page.locator("#insight-metrics")).to_contain_text("150")
        expect(page.locator("#insights-report img.chart")).to_have_count(4)
        s.shot("22-demo-insights")
    finally:
        s.close()


# Toasts, the live diff, the admin's first steps ------------------------------------------------------------


def _overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def test_warnings_do_not_pile_up_leave_log_out_free_and_go_on_success(app: tuple[str, UiWorld], session: Any) -> None:
    s = session()
    page = s.login(AGENT, AGENT_PW)
    s.tab("Reply")
    toasts = page.locator('[data-testid="toast-body"]')
    shown = page.locator('[data-testid="toast-text"]:visible')
    page.locator("#draft-btn").click()
    expect(page.locator("#reply-msg")).to_contain_text("paste the customer's message first")
    page.locator("#submit-btn").click()
    expect(page.locator("#reply-msg")).to_contain_text("draft a reply first")
    page.locator("#draft-btn").click()
    expect(page.locator("#reply-msg")).to_contain_text("paste the customer's message first")
    expect(shown).to_have_count(1)  # the newest only, never a stack
    expect(shown).to_contain_text("paste the customer's message first")
    s.shot("15-one-warning")
    logout = page.locator("#logout")
    assert not _overlaps(toasts.first.bounding_box(), logout.bounding_box())
    logout.click(trial=True, timeout=2_000)  # nothing covers it: Playwright checks what would get the click

    page.locator("#message textarea").fill(COMPLAINT)
    page.locator("#draft-btn").click()
    expect(page.locator("#draft-status")).to_contain_text("confidence")
    # Gone at once, well before the toast's own 6 s.
    expect(toasts).to_have_count(0, timeout=2_000)


def test_the_changes_from_the_draft_follow_the_reviewers_typing(app: tuple[str, UiWorld], session: Any) -> None:
    from copilot.ui import handlers as h

    _url, world = app
    result = h.draft_reply(world.pipeline, AGENT, COMPLAINT, "email", "@typing")
    item = h.submit_reply(world.pipeline, AGENT, result.draft, result.draft.text)
    s = session()
    page = s.login(REVIEWER, REVIEWER_PW)
    pick(page, "#item-pick", re.compile(rf"^#{item.id} "))
    expect(page.locator("#item-head")).to_contain_text(f"Item #{item.id}")
    expect(page.locator("#item-diff")).to_contain_text("Not edited")
    text = page.locator("#item-text textarea")
    text.press_sequentially(" Thanks for bearing with us.", delay=10)
    expect(page.locator("#item-diff ins")).to_contain_text("bearing with us.")
    text.fill(item.text)
    expect(page.locator("#item-diff")).to_contain_text("Not edited")
    assert world.pipeline.queue.get(item.id).version == item.version  # nothing was saved


@pytest.fixture(scope="module")
def new_install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, UiWorld]]:
    """An app as it first starts: the first-run admin alone, nothing indexed."""
    world = make_world(tmp_path_factory.mktemp("ui-new"), indexed=False, team=False)
    with served(world) as url:
        yield url, world


def test_an_admin_on_a_new_install_is_shown_the_first_steps_and_they_tick(
        new_install: tuple[str, UiWorld], browser: Any) -> None:
    url, world = new_install
    s = Session(browser, url)
    try:
        page = s.login("admin", world.admin.password)
        steps = page.locator("#first-steps")
        expect(steps).to_contain_text("3 of 3 left")
        for step in ("password", "users", "index"):
            expect(steps.locator(f'[data-step="{step}"]')).to_have_class(re.compile(r"\btodo\b"))
        expect(steps).to_contain_text("Change the first-run password")
        s.shot("16-first-steps")

        s.tab("Account")
        page.locator("#user-name textarea").fill(AGENT)
        page.locator("#user-password input").fill(AGENT_PW)
        page.locator("#user-add").click()
        expect(page.locator("#users-msg")).to_contain_text(f"Added {AGENT}")
        expect(steps.locator('[data-step="users"]')).to_have_class(re.compile(r"\bdone\b"))
        expect(steps).to_contain_text("2 of 3 left")

        s.tab("Knowledge")
        page.locator("#kb-reindex").click()
        expect(page.locator("#kb-reindex-msg")).to_contain_text("Indexed")
        expect(steps.locator('[data-step="index"]')).to_have_class(re.compile(r"\bdone\b"))

        s.tab("Account")
        page.locator("#pw-current input").fill(world.admin.password)
        page.locator("#pw-new input").fill("admin-password-2")
        page.locator("#pw-again input").fill("admin-password-2")
        page.locator("#pw-btn").click()
        expect(page.locator("#pw-msg")).to_contain_text("Password changed")
        expect(steps).to_contain_text("all done")
        expect(page.locator("#account")).not_to_contain_text("first-run password")

        page.reload()  # set up: the checklist is no longer shown
        expect(page.locator("#account")).to_contain_text("Logged in as admin")
        expect(page.locator("#first-steps-list")).to_have_count(0)
    finally:
        s.close()
