"""Incidents: a surge of messages about one problem becomes an incident; one approval answers every affected
case once, and the follow-up once it is fixed; cases that need their own reply are left out with the reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _incident_support import ANNOUNCEMENT, ORDINARY, OUTAGE, RESOLVED, make_desk, send
from _queue_support import settings  # noqa: F401  (the SQLite / PostgreSQL fixture)

from copilot.config import Settings
from copilot.errors import ConflictError
from copilot.incidents.detect import Point, SurgeRules, find_surges, normalise
from copilot.incidents.replies import fit_keeping_close, left_out_reason


def _replies(pipe, case_id: int) -> list:  # type: ignore[no-untyped-def]
    return [i for i in pipe.queue.list_items(limit=1000) if i.case_id == case_id and i.drafted_by.startswith("incident:")]


def test_a_burst_of_similar_messages_is_an_incident_and_everyday_traffic_is_not(tmp_path: Path) -> None:
    _pipe, desk, intake, clock, platform = make_desk(tmp_path)
    send(intake, platform, clock, ORDINARY, prefix="o")
    assert desk.list_incidents() == []
    cases = send(intake, platform, clock, OUTAGE[:8], prefix="x")
    [incident] = desk.list_incidents()
    assert incident.status == "open" and incident.members == 8 and set(cases) == {
        m.case_id for m in desk.members(incident.id)}
    assert "hub" in incident.keywords and "offline" in incident.keywords
    assert incident.reply["en"].startswith("Thanks for letting us know")
    assert [e.action for e in desk.timeline(incident.id)] == ["detected", "reply_drafted"]


def test_a_topic_at_its_usual_volume_is_no_incident() -> None:
    rng = np.random.default_rng(1)
    topic = normalise(rng.normal(size=16))
    near = [normalise(topic + 0.05 * rng.normal(size=16))[0] for _ in range(10)]
    from datetime import UTC, datetime
    now = datetime(2026, 12, 7, tzinfo=UTC)
    points = [Point(i, now, v) for i, v in enumerate(near)]
    rules = SurgeRules(window_s=1800, baseline_s=7 * 24 * 3600, min_members=5, ratio=4.0)
    assert len(find_surges(points, np.zeros((0, 16)), rules)) == 1  # nothing like it before: a surge
    usual = np.stack([normalise(topic + 0.05 * rng.normal(size=16))[0] for _ in range(7 * 48 * 3)])
    assert find_surges(points, usual, rules) == []  # three a window, every window of the week: ten is not 4x
    rare = usual[:14]  # a window's worth every half day: 10 in one window is a surge
    assert len(find_surges(points, rare, rules)) == 1


def test_with_no_history_yet_only_a_group_that_dominates_the_window_is_an_incident() -> None:
    from datetime import UTC, datetime
    rng = np.random.default_rng(2)
    now = datetime(2026, 12, 7, tzinfo=UTC)
    topics = [normalise(rng.normal(size=32))[0] for _ in range(12)]

    def around(topic: np.ndarray, n: int) -> list[np.ndarray]:
        return [normalise(topic + 0.05 * rng.normal(size=32))[0] for _ in range(n)]

    everyday = [v for topic in topics for v in around(topic, 10)]  # twelve topics, ten messages each
    points = [Point(i, now, v) for i, v in enumerate(everyday)]
    rules = SurgeRules(window_s=1800, min_members=5, ratio=4.0, min_baseline_s=1800, cold_share=0.2)
    assert find_surges(points, np.zeros((0, 32)), rules, baseline_span_s=0.0) == []  # each topic is 1/12
    burst = [Point(1000 + i, now, v) for i, v in enumerate(around(normalise(rng.normal(size=32))[0], 60))]
    [surge] = find_surges(points + burst, np.zeros((0, 32)), rules, baseline_span_s=600.0)
    assert set(surge.case_ids) == {p.case_id for p in burst}
    # an hour of history in which none of the twelve topics came up: each is new, so each is a surge
    assert len(find_surges(points, np.zeros((0, 32)), rules, baseline_span_s=3600.0)) == 12
    with pytest.raises(ValueError, match="cold_share"):
        SurgeRules(cold_share=1.5)


def test_later_messages_join_and_are_held_for_the_incident_reply_without_a_model_call(tmp_path: Path) -> None:
    pipe, desk, intake, clock, platform = make_desk(tmp_path)
    send(intake, platform, clock, OUTAGE[:7], prefix="x")
    [incident] = desk.list_incidents()
    calls = len(pipe.chat.seen)
    [late] = send(intake, platform, clock, [OUTAGE[9]], prefix="late")
    assert desk.store.incident_of(late) == incident.id
    assert [i for i in pipe.queue.list_items(limit=100) if i.case_id == late] == []  # held: no draft of its own
    assert len(pipe.chat.seen) == calls  # and no model call
    [other] = send(intake, platform, clock, [ORDINARY[0]], prefix="ord")
    assert desk.store.incident_of(other) is None
    assert [i.status for i in pipe.queue.list_items(limit=100) if i.case_id == other] == ["pending"]


@pytest.mark.parametrize(("text", "reason"), [
    ("my hub is offline, app says hub unreachable. I want a refund for this month", "refund"),
    ("hub offline, app says hub unreachable, my email is jo@example.com", "personal data"),
    ("my lumio hub is offline, app says hub unreachable, there is smoke, calling an ambulance", "a crisis"),
])
def test_a_case_the_incident_reply_does_not_cover_is_left_out_with_the_reason(tmp_path: Path, text: str,
                                                                             reason: str) -> None:
    pipe, desk, intake, clock, platform = make_desk(tmp_path)
    send(intake, platform, clock, OUTAGE[:7], prefix="x")
    [incident] = desk.list_incidents()
    [case_id] = send(intake, platform, clock, [text], prefix="odd")
    [member] = [m for m in desk.members(incident.id) if m.case_id == case_id]
    assert member.left_out is not None and reason in member.left_out
    assert [i.kind for i in pipe.queue.list_items(limit=100) if i.case_id == case_id] == ["reply"]  # its own draft
    report = desk.approve(incident.id, "reply", by="lead")
    assert case_id in [c for c, _ in report.left_out] and _replies(pipe, case_id) == []


def test_a_second_problem_in_the_same_message_is_left_out() -> None:
    assert left_out_reason("x", {"crisis_level": "possible", "crisis_reason": "self-harm"}) == \
        "a possible crisis: a person answers it"
    said = left_out_reason("hub offline", {}, off_topic="Also my order LM-4821 never arrived")
    assert said is not None and "does not cover" in said and "LM-4821" in said
    assert left_out_reason("mi hub está desconectado, quiero un reembolso", {}) is not None
    assert left_out_reason("my hub is offline since this morning", {}) is None


def test_one_approval_queues_one_personalised_reply_per_case_and_a_repeat_adds_nothing(settings: Settings,  # noqa: F811
                                                                                      tmp_path: Path) -> None:
    pipe, desk, intake, clock, platform = make_desk(tmp_path, settings=settings)
    pipe.queue.add_user("lead", "admin")
    early = send(intake, platform, clock, OUTAGE[:7], prefix="x")
    [incident] = desk.list_incidents()
    own_drafts = {i.case_id: i for i in pipe.queue.list_items(limit=100) if i.case_id in early}
    assert set(own_drafts) == set(early[:6])  # drafted one by one before anyone knew; the 7th was held
    report = desk.approve(incident.id, "reply", by="lead", texts={"en": "We know the hub is offline for many of "
                                                                  "you. Our team is on it. We'll reply here when it's fixed."})
    assert len(report.queued) == 7 and report.already == 0 and set(report.superseded) == set(early[:6])
    for case_id in early:
        [reply] = _replies(pipe, case_id)
        assert reply.status == "approved" and reply.approved_by == "lead"
        assert reply.text.startswith(f"@x{early.index(case_id)} We know the hub is offline")
        assert [e.action for e in pipe.queue.audit(reply.id)] == ["draft", "approve"]
        if case_id in own_drafts:
            assert pipe.queue.get(own_drafts[case_id].id).status == "rejected"
    again = desk.approve(incident.id, "reply", by="lead")
    assert again.queued == () and again.already == 7
    assert desk.get(incident.id).reply_approved_by == "lead"
    with pytest.raises(ConflictError, match="approved already in en"):
        desk.save(incident.id, "reply", {"en": "Something else"}, by="lead")
    [late] = send(intake, platform, clock, [OUTAGE[10]], prefix="late")
    [reply] = _replies(pipe, late)  # a late arrival gets the approved reply at once
    assert reply.status == "approved" and reply.text.startswith("@late0 We know the hub is offline")


def test_a_language_without_approved_text_is_left_out_until_one_is_added(tmp_path: Path) -> None:
    pipe, desk, intake, clock, platform = make_desk(tmp_path)
    send(intake, platform, clock, OUTAGE[:7], prefix="x")
    [incident] = desk.list_incidents()
    [es] = send(intake, platform, clock, ["mi lumio hub está offline, la app dice hub unreachable"], prefix="es")
    assert desk.store.incident_of(es) == incident.id
    report = desk.approve(incident.id, "reply", by="lead", texts={"en": "We know. We'll reply here when it's fixed."})
    assert (es, "no approved text in its language (es)") in report.left_out
    more = desk.approve(incident.id, "reply", by="lead", texts={"es": "Lo sabemos. Te responderemos aquí."})
    assert more.already == 7 and len(more.queued) == 1 and _replies(pipe, es)[0].text.endswith("Te responderemos aquí.")


def test_resolving_drafts_the_follow_up_and_its_approval_closes_the_incident(tmp_path: Path) -> None:
    pipe, desk, intake, clock, platform = make_desk(tmp_path)
    cases = send(intake, platform, clock, OUTAGE[:7], prefix="x")
    [incident] = desk.list_incidents()
    with pytest.raises(ConflictError, match="still open"):
        desk.approve(incident.id, "followup", by="lead")
    desk.approve(incident.id, "reply", by="lead")
    resolved = desk.resolve(incident.id, by="lead")
    assert resolved.status == "resolved" and resolved.followup["en"].startswith("Good news")
    report = desk.approve(incident.id, "followup", by="lead")
    assert len(report.queued) == 7 and desk.get(incident.id).status == "closed"
    for case_id in cases:
        assert sorted(i.draft["phase"] for i in _replies(pipe, case_id)) == ["followup", "reply"]
    [late] = send(intake, platform, clock, [OUTAGE[11]], prefix="late")
    assert [i.draft["phase"] for i in _replies(pipe, late)] == ["followup"]  # fixed already: only the news
    assert [e.action for e in desk.timeline(incident.id)][-3:] == ["resolved", "followup_drafted", "followup_approved"]


def test_the_reply_is_grounded_in_a_current_announcement_and_a_resolved_one_resolves_it(tmp_path: Path) -> None:
    _pipe, desk, intake, clock, platform = make_desk(tmp_path, announcements={"outage-2026-12-07.md": ANNOUNCEMENT})
    send(intake, platform, clock, OUTAGE[:7], prefix="x")
    [incident] = desk.list_incidents()
    assert incident.announcement_id == "kb-outage-hub-2026-12-07"
    assert incident.title == "Hub connection outage, 7 December 2026"
    assert "Since 08:50 GMT a fault in our cloud service" in incident.reply["en"]
    assert desk.check_announcements() == []  # still investigating
    (tmp_path / "kb" / "announcements" / "outage-2026-12-07.md").write_text(RESOLVED, encoding="utf-8")
    desk.book._checked = None  # the book re-reads files every few seconds; the test does not wait
    [resolved] = desk.check_announcements()
    assert resolved.status == "resolved" and resolved.resolved_by == "announcement:kb-outage-hub-2026-12-07"
    assert "resolved at 11:20 GMT, hubs are back online" in resolved.followup["en"]


def test_dismissing_hands_the_held_cases_back(tmp_path: Path) -> None:
    pipe, desk, intake, clock, platform = make_desk(tmp_path)
    cases = send(intake, platform, clock, OUTAGE[:7], prefix="x")
    [incident] = desk.list_incidents()
    [held] = send(intake, platform, clock, [OUTAGE[8]], prefix="held")
    dismissed, drafted = desk.dismiss(incident.id, by="lead")
    assert dismissed.status == "dismissed"
    assert sorted(pipe.queue.get(i).case_id for i in drafted) == [cases[6], held]  # held ones get their own draft
    with pytest.raises(ConflictError, match="dismissed"):
        desk.approve(incident.id, "reply", by="lead")
    [after] = send(intake, platform, clock, [OUTAGE[9]], prefix="after")
    assert desk.store.incident_of(after) is None  # a dismissed incident takes no one


SPANISH = [f"mi router lumio {w} desconectado, la aplicacion no disponible, {n}" for n, w in
           enumerate(["sigue", "esta", "otra vez", "ya", "aun", "todavia", "de nuevo"])]


def test_two_groups_of_one_problem_are_merged_and_the_moved_cases_get_the_reply(tmp_path: Path) -> None:
    pipe, desk, intake, clock, platform = make_desk(tmp_path)
    send(intake, platform, clock, OUTAGE[:7], prefix="x")
    spanish = send(intake, platform, clock, SPANISH, prefix="es")
    first, second = sorted(desk.list_incidents(), key=lambda x: x.id)
    assert {m.case_id for m in desk.members(second.id)} >= set(spanish[:6])
    assert [x.id for x, _ in desk.related(first.id, floor=0.0)] == [second.id]
    desk.approve(first.id, "reply", by="lead", texts={"en": "We know. We'll reply here.", "es": "Lo sabemos. Te "
                                                      "responderemos aquí."})
    with pytest.raises(ConflictError, match="merge the other way round"):
        desk.merge(second.id, first.id, by="lead")
    merged = desk.merge(first.id, second.id, by="lead")
    assert desk.get(second.id).status == "merged" and desk.get(second.id).merged_into == first.id
    assert merged.affected == 14
    for case_id in spanish[:6]:
        assert [r.text for r in _replies(pipe, case_id)] == ["@es" + str(spanish.index(case_id)) +
                                                             " Lo sabemos. Te responderemos aquí."]


def test_a_reply_fits_the_channel_by_whole_sentences_keeping_the_promise() -> None:
    text = "We know the hub is offline. Since 08:50 a fault in our cloud blocks the app. We'll reply here when fixed."
    assert fit_keeping_close(text, 70) == "We know the hub is offline. We'll reply here when fixed."
    assert fit_keeping_close(text, 500) == text
