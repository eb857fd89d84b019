"""Real parallel processes on SQLite and PostgreSQL: one reviewer wins, the others get a conflict, and
concurrent or dying publishers never post anything twice."""

from __future__ import annotations

import multiprocessing
from typing import Any

from _queue_support import (
    PRELOAD,
    make_draft,
    open_and_publish,
    outbox_lines,
    publish_and_die,
    race_approve,
    race_edit,
    race_publish,
    race_submit,
    settings,  # noqa: F401 - a fixture
    settings_args,
)

from copilot.config import Settings
from copilot.queue.publish import OutboxPublisher
from copilot.queue.store import open_queue

# Fresh processes (no inherited connections or threads), forked from a server that has imported the queue
# once, so that each one starts in milliseconds rather than a second.
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(PRELOAD)
TIMEOUT_S = 120


def _run(target: Any, argument_sets: list[tuple[Any, ...]]) -> list[Any]:
    """Start one process per argument set, all released together by a barrier; collect their results."""
    barrier, results = CONTEXT.Barrier(len(argument_sets)), CONTEXT.Queue()
    processes = [CONTEXT.Process(target=target, args=(*args, barrier, results)) for args in argument_sets]
    for process in processes:
        process.start()
    collected = [results.get(timeout=TIMEOUT_S) for _ in processes]
    for process in processes:
        process.join(timeout=TIMEOUT_S)
        assert process.exitcode == 0
    return collected


def test_racing_approvals_one_wins_the_others_conflict(settings: Settings) -> None:  # noqa: F811
    with open_queue(settings) as queue:
        item = queue.submit(make_draft(1), by="agent")
    names = [f"reviewer{n}" for n in range(5)]
    results = _run(race_approve, [(settings_args(settings), item.id, item.version, name) for name in names])
    winners = [name for outcome, name in results if outcome == "ok"]
    conflicts = [message for outcome, message in results if outcome == "conflict"]
    assert len(winners) == 1 and len(conflicts) == 4
    assert all(f"item {item.id}" in message for message in conflicts)
    with open_queue(settings) as queue:
        final = queue.get(item.id)
        assert final.status == "approved" and final.approved_by == winners[0]
        assert final.text == f"Final answer written by {winners[0]}."
        assert [(e.action, e.actor) for e in queue.audit(item.id)] == [
            ("draft", "agent"), ("edit", winners[0]), ("approve", winners[0])]


def test_racing_edits_lose_nothing_silently(settings: Settings) -> None:  # noqa: F811
    with open_queue(settings) as queue:
        item = queue.submit(make_draft(2), by="agent")
    names = [f"agent{n}" for n in range(4)]
    results = _run(race_edit, [(settings_args(settings), item.id, item.version, name) for name in names])
    winners = [name for outcome, name in results if outcome == "ok"]
    assert len(winners) == 1
    with open_queue(settings) as queue:
        final = queue.get(item.id)
        assert final.text == f"Edited by {winners[0]}." and final.version == 2
        edits = [e for e in queue.audit(item.id) if e.action == "edit"]
        assert [(e.before_text, e.after_text) for e in edits] == [(item.text, final.text)]


def test_drafts_racing_for_one_new_inbound_message_share_one_case(settings: Settings) -> None:  # noqa: F811
    with open_queue(settings):
        pass  # create the schema first: this test is about the cases, not the migrations
    case_ids = _run(race_submit, [(settings_args(settings), n) for n in range(4)])
    assert len(set(case_ids)) == 1
    with open_queue(settings) as queue:
        assert len(queue.list_items(status="all")) == 4 and len(queue.list_cases()) == 1


def test_concurrent_publishers_post_each_item_once(settings: Settings) -> None:  # noqa: F811
    with open_queue(settings) as queue:
        ids = []
        for n in range(30):
            item = queue.submit(make_draft(n), by="agent")
            queue.approve(item.id, by="reviewer", version=item.version)
            ids.append(item.id)
    reports = _run(race_publish, [(settings_args(settings),) for _ in range(4)])
    posted = [item_id for report in reports for item_id in report["posted"]]
    assert sorted(posted) == sorted(ids)  # every item by exactly one publisher
    assert not any(report["failed"] or report["duplicates"] for report in reports)
    lines = outbox_lines(settings)
    assert sorted(line["item_id"] for line in lines) == sorted(ids)
    with open_queue(settings) as queue:
        assert {i.status for i in queue.list_items(status="all")} == {"posted"}


def test_publisher_killed_between_post_and_record_is_recovered_once(settings: Settings) -> None:  # noqa: F811
    with open_queue(settings) as queue:
        item = queue.submit(make_draft(3), by="agent")
        queue.approve(item.id, by="reviewer", version=item.version)
    process = CONTEXT.Process(target=publish_and_die, args=(settings_args(settings),))
    process.start()
    process.join(timeout=TIMEOUT_S)
    assert process.exitcode == 17
    assert [line["item_id"] for line in outbox_lines(settings)] == [item.id]
    with open_queue(settings) as queue:
        assert queue.get(item.id).status == "posting"
        report = queue.publish_approved(OutboxPublisher(settings.outbox_path), by="reviewer", lease_s=0)
        assert report.duplicates == (item.id,) and report.posted == ()
        assert queue.get(item.id).status == "posted"
    assert [line["item_id"] for line in outbox_lines(settings)] == [item.id]


def test_processes_opening_a_new_database_at_once_migrate_and_import_once(settings: Settings) -> None:  # noqa: F811
    drafts = [make_draft(n).to_dict() for n in range(3)]
    reports = _run(open_and_publish, [(settings_args(settings), drafts) for _ in range(4)])  # each migrates, imports
    assert all(report["posted"] == [] for report in reports)
    with open_queue(settings) as queue:
        assert sorted(i.inbound_id for i in queue.list_items(status="all")) == ["msg-0", "msg-1", "msg-2"]
