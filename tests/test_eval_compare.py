"""Comparing two run records: metric deltas in the right direction, cases that flipped, setup changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from copilot.cli import main
from copilot.errors import UserError
from copilot.evaluation.compare import compare_runs, format_comparison, resolve_run


def _run(
    root: Path,
    name: str,
    *,
    metrics: dict[str, float],
    rows: list[dict[str, Any]],
    prompt_hash: str = "aaa",
    top_k: int = 5,
    kind: str = "support",
    chat: str = "llama-cpp:qwen",
) -> Path:
    path = root / name
    path.mkdir(parents=True)
    config = {
        "chat": chat,
        "embedder": "all-MiniLM-L6-v2",
        "git": {"sha": name[-7:], "dirty": False},
        "dataset": {"name": "support", "sha256": "same"},
        "prompts": {"draft/user.j2": prompt_hash},
        "settings": {"top_k": top_k, "data_dir": f"/tmp/{name}"},
    }
    summary = {"kind": kind, "n": len(rows), "metrics": metrics}
    (path / "config.json").write_text(json.dumps(config))
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "report.html").write_text("<html></html>")
    return path


def _row(case_id: str, passed: bool, score: float, failed: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": case_id,
        "passed": passed,
        "score": score,
        "failed": failed or ([] if passed else ["policy"]),
    }


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path]:
    a = _run(
        tmp_path,
        "20261101T000000Z-aaaaaaa",
        metrics={
            "pass_rate": 0.5,
            "groundedness.mean": 0.9,
            "latency_ms_p95": 4000.0,
            "n_errors": 1,
            "first_token_ms_p50": 900.0,
            "triage.kind.accuracy": 0.8,
            "false_escalation_rate_bad": 0.1,
        },
        rows=[
            _row("c1", True, 1.0),
            _row("c2", False, 0.4),
            _row("c3", True, 0.9),
            _row("c4", True, 0.95),
            _row("old", True, 1.0),
        ],
    )
    b = _run(
        tmp_path,
        "20261102T000000Z-bbbbbbb",
        metrics={
            "pass_rate": 0.5,
            "groundedness.mean": 0.8,
            "latency_ms_p95": 3000.0,
            "n_errors": 0,
            "first_token_ms_p50": 1200.0,
            "triage.kind.accuracy": 0.8,
            "false_escalation_rate_bad": 0.2,
            "judge.empathy": 4.1,
        },
        rows=[
            _row("c1", False, 0.5, ["groundedness"]),
            _row("c2", True, 1.0),
            _row("c3", True, 0.9),
            _row("c4", True, 0.7),
            _row("new", True, 1.0),
        ],
        prompt_hash="bbb",
        top_k=8,
    )
    return a, b


def test_metrics_move_in_the_right_direction(runs: tuple[Path, Path]) -> None:
    result = compare_runs(*runs)
    by_name = {m["metric"]: m for m in result["metrics"]}
    assert (
        by_name["groundedness.mean"]["direction"] == "worse" and by_name["groundedness.mean"]["delta"] == -0.1
    )
    assert by_name["latency_ms_p95"]["direction"] == "better"  # lower latency is better
    assert by_name["n_errors"]["direction"] == "better"
    assert by_name["false_escalation_rate_bad"]["direction"] == "worse"
    assert by_name["pass_rate"]["direction"] == "same" and by_name["triage.kind.accuracy"]["delta"] == 0.0
    assert by_name["judge.empathy"]["direction"] == "n/a" and by_name["judge.empathy"]["a"] is None
    assert set(result["improved"]) == {"latency_ms_p95", "n_errors"}
    assert set(result["regressed"]) == {
        "groundedness.mean",
        "false_escalation_rate_bad",
        "first_token_ms_p50",
    }


def test_cases_that_flipped_and_what_changed_in_the_setup(runs: tuple[Path, Path]) -> None:
    result = compare_runs(*runs)
    cases = result["cases"]
    assert [c["id"] for c in cases["now_failing"]] == ["c1"] and cases["now_failing"][0]["b_failed"] == [
        "groundedness"
    ]
    assert [c["id"] for c in cases["now_passing"]] == ["c2"]
    assert [c["id"] for c in cases["score_moved"]] == ["c4"]  # still passing, but 0.95 -> 0.7
    assert cases["common"] == 4 and cases["only_a"] == ["old"] and cases["only_b"] == ["new"]
    assert result["changed"]["prompts"] == {"draft/user.j2": {"a": "aaa", "b": "bbb"}}
    assert result["changed"]["settings"]["top_k"] == {"a": 5, "b": 8}
    assert result["same_dataset"] is True and result["changed"]["chat"] is False
    text = format_comparison(result)
    assert "REGRESSED c1: fails groundedness" in text and "improved  c2" in text
    assert "prompts changed: draft/user.j2" in text and "top_k 5 -> 8" in text
    assert "note: the runs cover different cases (A 5, B 5, 4 in both)" in text
    assert (
        "groundedness.mean" in text and "REGRESSED" in text.split("groundedness.mean", 1)[1].splitlines()[0]
    )


def test_runs_are_found_by_name_and_as_latest_and_previous(runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = runs
    assert resolve_run("latest", tmp_path) == b and resolve_run("previous", tmp_path) == a
    assert resolve_run(a.name, tmp_path) == a
    with pytest.raises(UserError, match="not a run folder"):
        resolve_run(tmp_path / "nothing", tmp_path)
    with pytest.raises(UserError, match="no previous run"):
        resolve_run("previous", tmp_path / "empty")


def test_a_support_run_cannot_be_compared_with_a_retrieval_run(tmp_path: Path) -> None:
    a = _run(tmp_path, "a", metrics={"pass_rate": 1.0}, rows=[_row("c1", True, 1.0)])
    b = _run(tmp_path, "b", metrics={"hit@5": 1.0}, rows=[_row("q1", True, 1.0)], kind="retrieval")
    with pytest.raises(UserError, match="cannot compare a support run with a retrieval run"):
        compare_runs(a, b)


def test_the_cli_prints_json_and_fails_cleanly_on_a_bad_folder(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "compare", "previous", "latest", "--runs", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["a"]["path"] == str(runs[0]) and [c["id"] for c in data["cases"]["now_failing"]] == ["c1"]
    assert main(["eval", "compare", str(runs[0]), str(tmp_path / "missing")]) == 1
    assert "is not a run folder" in capsys.readouterr().err
