"""The Incidents screen in headless Chromium against the real server (the test desk's rules and clock, the
fake embedder and the rule triager): the banner opens the screen, and one approval answers every affected case
once, then the follow-up after "Mark resolved". Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from _incident_support import OUTAGE, desk_pipeline, send
from _ui_support import AGENT, AGENT_PW, REVIEWER, REVIEWER_PW, UiWorld
from test_ui_browser import browser, expect, pick, served, session

from copilot.ui.auth import ensure_admin

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
__all__ = ["browser", "session"]  # fixtures of the web-app browser tests, with this module's own ``app``

REFUND = "my hub is offline, app says hub unreachable. I want a refund for this month"
EDITED = "We know the hub is offline for many of you. Our team is on it. We'll reply here when it's fixed."
GOOD_NEWS = "Good news: the hubs are back online. Thanks for your patience."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, UiWorld]]:
    """Seven outage messages (one incident) and a refund request that joins it but is left out."""
    pipe, desk, intake, clock, platform = desk_pipeline(tmp_path_factory.mktemp("incidents-browser"))
    admin = ensure_admin(pipe.queue, pipe.settings)
    assert admin is not None
    pipe.queue.add_user(AGENT, "agent", password=AGENT_PW, by=admin.name)
    pipe.queue.add_user(REVIEWER, "reviewer", password=REVIEWER_PW, by=admin.name)
    cases = send(intake, platform, clock, OUTAGE[:7], prefix="x")
    cases += send(intake, platform, clock, [REFUND], prefix="refund")
    [incident] = desk.list_incidents()
    assert incident.members == 7 and incident.left_out == 1
    world = UiWorld(pipe, pipe.chat, admin)  # type: ignore[arg-type]
    with served(world) as url:
        yield url, world


def _incident_replies(world: UiWorld, phase: str) -> dict[int, list[Any]]:
    """The incident's queue items per case, of one phase (through the queue, as the publisher sees them)."""
    out: dict[int, list[Any]] = {}
    for item in world.pipeline.queue.list_items(status=None, limit=1000):
        if item.drafted_by.startswith("incident:") and item.draft.get("phase") == phase:
            out.setdefault(int(item.case_id), []).append(item)
    return out


def test_the_banner_shows_the_incident_and_opens_the_incidents_screen(app: tuple[str, UiWorld], session: Any
                                                                      ) -> None:
    _url, world = app
    [incident] = world.pipeline.incidents.list_incidents()
    s = session()
    page = s.login(AGENT, AGENT_PW)
    banner = page.locator("#incident-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(f"Incident: {incident.title} — 8 affected, open")
    s.tab("Reply")
    expect(banner).to_be_visible()  # above the tabs: on every screen
    banner.click()
    expect(page.get_by_role("tab", name="Incidents")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#incidents-table")).to_contain_text(incident.title)
    expect(page.locator("#incidents-table")).to_contain_text("open")
    pick(page, "#incident-pick", re.compile(rf"^#{incident.id} "))
    expect(page.locator("#incident-head")).to_contain_text(f"Incident #{incident.id}")
    expect(page.locator("#incident-members")).to_contain_text("refund")
    expect(page.locator("#incident-insights")).to_contain_text("first response, median")
    expect(page.locator("#reply-text-0 textarea")).to_be_disabled()  # an agent reads only
    expect(page.locator("#reply-approve-btn")).to_be_hidden()
    expect(page.locator("#resolve-btn")).to_be_hidden()
    s.shot("20-incidents-agent")


def test_one_approval_answers_every_case_then_the_follow_up_after_resolving(app: tuple[str, UiWorld], session: Any
                                                                           ) -> None:
    _url, world = app
    desk = world.pipeline.incidents
    [incident] = desk.list_incidents()
    fitting = {m.case_id for m in desk.members(incident.id) if m.left_out is None}
    [refund] = [m.case_id for m in desk.members(incident.id) if m.left_out]
    s = session()
    page = s.login(REVIEWER, REVIEWER_PW)
    page.locator("#incident-banner").click()
    pick(page, "#incident-pick", re.compile(rf"^#{incident.id} "))
    expect(page.locator("#incident-head")).to_contain_text(incident.title)
    english = page.locator("#reply-text-0 textarea")
    expect(english).to_have_value(re.compile(r"^Thanks for letting us know"))
    english.fill(EDITED)
    approve = page.locator("#reply-approve-btn")
    expect(approve).to_have_text("Approve for all 7")
    s.shot("21-incident-reply")
    approve.click()
    report = page.locator("#reply-report")
    expect(report).to_contain_text("queued 7 approved replies")
    expect(report).to_contain_text(f"case {refund}: ")
    expect(report).to_contain_text("refund")
    expect(page.locator("#reply-state")).to_contain_text(f"approved by {REVIEWER}")

    replies = _incident_replies(world, "reply")
    assert set(replies) == fitting and refund not in replies
    for items in replies.values():
        [item] = items
        assert item.status == "approved" and item.approved_by == REVIEWER and EDITED in item.text

    page.locator("#resolve-btn").click()
    expect(page.locator("#incident-msg")).to_contain_text(f"Incident #{incident.id} resolved")
    expect(page.locator("#incident-banner")).to_contain_text("affected, resolved")
    follow = page.locator("#followup-text-0 textarea")
    expect(follow).to_have_value(re.compile(r"^Good news"))
    follow.fill(GOOD_NEWS)
    page.locator("#followup-approve-btn").click()
    expect(page.locator("#followup-report")).to_contain_text("queued 7 approved replies")
    expect(page.locator("#incident-head")).to_contain_text("closed")
    expect(page.locator("#followup-approve-btn")).to_be_hidden()  # every language approved: nothing to add
    expect(page.locator("#incident-pick input")).to_have_value(re.compile(rf"^#{incident.id} "))  # still shown
    expect(page.locator("#incident-banner")).to_be_hidden()  # nothing live any more
    s.shot("22-incident-closed")

    followups = _incident_replies(world, "followup")
    assert set(followups) == fitting
    assert all(len(items) == 1 and GOOD_NEWS in items[0].text and items[0].status == "approved"
               for items in followups.values())
    assert all(len(items) == 1 for items in _incident_replies(world, "reply").values())  # still one each
    assert desk.get(incident.id).status == "closed"
