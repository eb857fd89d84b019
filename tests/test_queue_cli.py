"""``copilot queue|publish|users|bench queue`` through the real entry point, on a queue in tmp_path."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from _queue_support import make_draft, outbox_lines, pg_url_or_skip

from copilot.cli import main
from copilot.config import Settings
from copilot.queue.bench import format_table, run_queue_bench
from copilot.queue.store import open_queue


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COPILOT_CONFIG", str(tmp_path / "absent.toml"))
    for name in ("COPILOT_DATABASE_URL", "COPILOT_FOUR_EYES", "COPILOT_PUBLISHER"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def seed(data_dir: Path, n: int = 2) -> list[int]:
    with open_queue(Settings(data_dir=data_dir)) as queue:
        return [queue.submit(make_draft(i, priority=1 + i % 4), by="agent").id for i in range(n)]


def test_review_flow_with_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = seed(data_dir)
    code, out, _ = run(capsys, "queue", "list", "--json")
    assert code == 0 and [i["id"] for i in json.loads(out)] == [first, second]
    code, out, _ = run(capsys, "queue", "edit", str(first), "--by", "agent", "--text", "Better words.", "--json")
    assert code == 0 and json.loads(out)["version"] == 2
    code, out, _ = run(capsys, "queue", "approve", str(first), "--by", "rita", "--version", "2", "--json")
    assert code == 0 and json.loads(out)["status"] == "approved" and json.loads(out)["edit_distance"] > 0
    code, out, _ = run(capsys, "queue", "reject", str(second), "--by", "rita", "--reason", "off-topic")
    assert code == 0 and "rejected: now rejected, version 2" in out
    code, out, _ = run(capsys, "queue", "reopen", str(second), "--by", "rita")
    assert code == 0 and "now pending" in out
    code, out, _ = run(capsys, "queue", "assign", str(second), "bob", "--by", "rita", "--json")
    assert json.loads(out)["assignee"] == "bob"
    code, out, _ = run(capsys, "publish", "--by", "rita", "--json")
    assert code == 0 and json.loads(out)["posted"] == [first]
    assert [line["text"] for line in outbox_lines(Settings(data_dir=data_dir))] == ["Better words."]
    code, out, _ = run(capsys, "queue", "show", str(first), "--json")
    shown = json.loads(out)
    assert shown["status"] == "posted"
    assert [e["action"] for e in shown["audit"]] == ["draft", "edit", "approve", "publish", "post"]
    code, out, _ = run(capsys, "queue", "show", str(first))
    assert code == 0 and "drafted as:" in out and "approve  by rita" in out
    code, out, _ = run(capsys, "queue", "list", "--status", "all")
    assert code == 0 and "posted" in out and "pending" in out
    code, out, _ = run(capsys, "queue", "cases", "--json")
    assert sorted(c["status"] for c in json.loads(out)) == ["open", "resolved"]


def test_list_and_show_name_crises_and_possible_crises(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    draft = make_draft(40)
    maybe = replace(draft, triage=replace(draft.triage, crisis_level="possible", crisis_reason="abuse",
                                          crisis_span="he  hits me", crisis_note="a joke beside it: a person decides"))
    with open_queue(Settings(data_dir=data_dir)) as queue:
        ordinary = queue.submit(make_draft(41), by="agent").id
        item = queue.submit(maybe, by="agent").id
    code, out, _ = run(capsys, "queue", "list")
    assert code == 0 and out.count("decide it on its own") == 1
    lines = out.splitlines()
    row = next(n for n, line in enumerate(lines) if line.split()[0] == str(item))
    assert lines[row + 1].strip() == 'possible crisis: abuse ("he hits me"); decide it on its own, never in a batch'
    code, out, _ = run(capsys, "queue", "show", str(item))
    assert code == 0 and 'possible crisis: abuse ("he hits me")' in out
    assert "crisis screen: a joke beside it: a person decides" in out
    code, out, _ = run(capsys, "queue", "list", "--json")
    shown = {i["id"]: i for i in json.loads(out)}
    assert shown[item]["requires_individual_decision"] and not shown[ordinary]["requires_individual_decision"]
    assert (shown[item]["crisis_level"], shown[item]["crisis_reason"]) == ("possible", "abuse")
    code, out, _ = run(capsys, "queue", "show", str(ordinary))
    assert "crisis" not in out


@pytest.mark.parametrize(("argv", "reason"), [
    (["queue", "show", "99"], "no queue item 99"),
    (["queue", "approve", "99", "--by", "rita"], "no queue item 99"),
    (["queue", "approve", "1", "--by", "rita", "--version", "7"], "changed since version 7"),
    (["queue", "edit", "1", "--by", "rita", "--text", "  "], "the text must not be empty"),
    (["queue", "reopen", "1", "--by", "rita"], "cannot reopen item 1: it is pending"),
    (["queue", "reject", "1", "--by", "rita", "--reason", ""], "a rejection needs a reason"),
    (["queue", "list", "--status", "done"], "unknown status 'done'"),
    (["queue", "edit", "1", "--by", "rita", "--text-file", "/nonexistent/file.txt"], "cannot read"),
])
def test_bad_input_exits_non_zero_with_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], reason: str
) -> None:
    seed(data_dir, 1)
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and reason in err and err.startswith("copilot: error: ")


def test_bad_arguments_exit_2(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["queue", "approve", "abc", "--by", "x"], ["queue", "approve", "1"], ["queue", "frobnicate"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert capsys.readouterr().err.count("\n") == 1


def test_users_and_roles(data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    [item] = seed(data_dir, 1)
    code, _, err = run(capsys, "users", "add", "rita", "--role", "reviewer")
    assert code == 1 and "first user must be an admin" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("hunter22\n"))
    code, out, _ = run(capsys, "users", "add", "root", "--role", "admin", "--password-stdin")
    assert code == 0 and "added root (admin)" in out
    assert run(capsys, "users", "add", "rita", "--role", "reviewer", "--by", "root")[0] == 0
    assert run(capsys, "users", "add", "alice", "--role", "agent", "--by", "root")[0] == 0
    code, out, _ = run(capsys, "users", "list", "--json")
    assert [(u["name"], u["role"], u["has_password"]) for u in json.loads(out)] == [
        ("alice", "agent", False), ("rita", "reviewer", False), ("root", "admin", True)]
    code, _, err = run(capsys, "queue", "approve", str(item), "--by", "alice")
    assert code == 1 and "alice is an agent; approve needs admin or reviewer" in err
    code, _, err = run(capsys, "queue", "approve", str(item), "--by", "mallory")
    assert code == 1 and "unknown user 'mallory'" in err
    assert run(capsys, "queue", "approve", str(item), "--by", "rita")[0] == 0
    code, _, err = run(capsys, "publish", "--by", "alice")
    assert code == 1 and "publish needs admin or reviewer" in err
    with open_queue(Settings(data_dir=data_dir)) as queue:
        assert queue.verify_password("root", "hunter22") == "admin"


def test_four_eyes_from_settings(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    [item] = seed(data_dir, 1)
    monkeypatch.setenv("COPILOT_FOUR_EYES", "true")
    code, _, err = run(capsys, "queue", "approve", str(item), "--by", "agent")
    assert code == 1 and "four-eyes" in err
    assert run(capsys, "queue", "approve", str(item), "--by", "rita")[0] == 0


def test_publish_failure_exits_non_zero_and_keeps_the_item(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    [item] = seed(data_dir, 1)
    run(capsys, "queue", "approve", str(item), "--by", "rita")
    monkeypatch.setenv("COPILOT_PUBLISHER", "webhook")
    monkeypatch.setenv("COPILOT_WEBHOOK_URL", "http://127.0.0.1:9/unreachable")
    monkeypatch.setenv("COPILOT_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("COPILOT_WEBHOOK_RETRIES", "0")
    code, out, _ = run(capsys, "publish", "--by", "rita")
    assert code == 1 and f"item {item} failed: webhook failed after 1 attempts: connection failed" in out
    monkeypatch.delenv("COPILOT_WEBHOOK_SECRET")
    code, _, err = run(capsys, "publish", "--by", "rita")
    assert code == 1 and "COPILOT_WEBHOOK_SECRET" in err
    monkeypatch.setenv("COPILOT_PUBLISHER", "outbox")
    code, out, _ = run(capsys, "publish", "--by", "rita", "--json")
    assert code == 0 and json.loads(out)["posted"] == [item]


def test_bench_queue_command_on_sqlite(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "bench", "queue", "--backends", "sqlite", "--workers", "1,3", "--items", "12",
                       "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["workers"], r["posted"], r["lost"], r["duplicated"]) for r in rows] == [
        (1, 12, 0, 0), (3, 12, 0, 0)]
    assert all(r["ops_per_s"] > 0 for r in rows)
    code, _, err = run(capsys, "bench", "queue", "--backends", "postgres")
    assert code == 1 and "--pg-url" in err


@pytest.mark.postgres
def test_bench_on_postgres(tmp_path: Path) -> None:
    rows = run_queue_bench(["postgres"], pg_url=pg_url_or_skip(), workers=[2], items=10, work_dir=tmp_path)
    assert [(r.posted, r.lost, r.duplicated) for r in rows] == [(10, 0, 0)]
    assert "| postgres | 2 | 10 |" in format_table(rows)
