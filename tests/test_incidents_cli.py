"""``copilot incidents ...`` through the real entry point, on incidents made by the desk in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _incident_support import OUTAGE, make_desk, send

from copilot.cli import main
from copilot.config import Settings


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[int]]:
    data = tmp_path / "data"
    monkeypatch.setenv("COPILOT_DATA_DIR", str(data))
    monkeypatch.setenv("COPILOT_KB_DIR", str(tmp_path / "kb"))
    monkeypatch.setenv("COPILOT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("COPILOT_DATABASE_URL", raising=False)
    pipe, _desk, intake, clock, platform = make_desk(tmp_path, settings=Settings(data_dir=data))
    pipe.queue.add_user("lead", "admin")
    pipe.queue.add_user("ann", "agent", by="lead")
    cases = send(intake, platform, clock, OUTAGE[:8], prefix="x")
    pipe.queue.close()
    return data, cases


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_show_approve_resolve_and_follow_up(seeded: tuple[Path, list[int]], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, cases = seeded
    code, out, _ = run(capsys, "incidents", "list")
    assert code == 0 and "#1" in out and "8 affected" in out and "open" in out
    code, out, _ = run(capsys, "incidents", "show", "1")
    assert code == 0 and "reply (not approved yet):" in out and "[en] Thanks for letting us know" in out
    assert "keywords: " in out and f"case {cases[0]}" in out
    text = tmp_path / "reply.txt"
    text.write_text("We know the hub is offline for many of you. We'll reply here when it's fixed.", encoding="utf-8")
    code, _, err = run(capsys, "incidents", "approve", "1", "--by", "ann", "--text-file", f"en={text}")
    assert code != 0 and "approve needs" in err  # an agent may write, not approve
    code, out, _ = run(capsys, "incidents", "approve", "1", "--by", "lead", "--text-file", f"en={text}", "--json")
    report = json.loads(out)
    assert code == 0 and len(report["queued"]) == 8 and report["left_out"] == []
    code, out, _ = run(capsys, "incidents", "approve", "1", "--by", "lead")
    assert code == 0 and "queued 0 approved reply item(s); 8 case(s) had it already" in out
    code, out, _ = run(capsys, "incidents", "resolve", "1", "--by", "lead")
    assert code == 0 and "Good news" in out and "--phase followup" in out
    code, out, _ = run(capsys, "incidents", "approve", "1", "--phase", "followup", "--by", "lead")
    assert code == 0 and "queued 8 approved followup item(s)" in out
    code, out, _ = run(capsys, "incidents", "list", "--status", "closed", "--json")
    assert [x["id"] for x in json.loads(out)] == [1]


def test_bad_input_says_what_to_do(seeded: tuple[Path, list[int]], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "incidents", "show", "99")
    assert code != 0 and "no incident 99" in err and "copilot incidents list" in err
    code, _, err = run(capsys, "incidents", "approve", "1", "--by", "lead", "--text-file", "en")
    assert code != 0 and "LANG=FILE" in err
    code, _, err = run(capsys, "incidents", "approve", "1", "--by", "lead", "--text-file", "en=/nonexistent.txt")
    assert code != 0 and "no file /nonexistent.txt" in err
    code, _, err = run(capsys, "incidents", "approve", "1", "--phase", "followup", "--by", "lead")
    assert code != 0 and "still open" in err
    code, _, err = run(capsys, "incidents", "merge", "1", "1", "--by", "lead")
    assert code != 0 and "into itself" in err
