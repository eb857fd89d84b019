"""Compare two run records: which metrics moved, and which cases now pass or fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from copilot.errors import UserError
from copilot.evaluation.summary import lower_is_better

EPSILON = 1e-9
CASE_SCORE_MOVE = 0.05  # a case whose score moves less than this, without changing verdict, is unchanged


def resolve_run(path: Path | str, runs_root: Path | None = None) -> Path:
    """A run folder from a path, a folder name under ``runs_root``, or ``latest``/``previous``."""
    path = Path(path)
    if str(path) in ("latest", "previous") and runs_root is not None:
        runs = (
            sorted(p for p in Path(runs_root).iterdir() if (p / "summary.json").is_file())
            if Path(runs_root).is_dir()
            else []
        )
        want = 1 if str(path) == "latest" else 2
        if len(runs) < want:
            raise UserError(f"there is no {path} run under {runs_root}")
        return runs[-want]
    if not path.is_dir() and runs_root is not None and (Path(runs_root) / path).is_dir():
        path = Path(runs_root) / path
    if not (path / "summary.json").is_file():
        raise UserError(f"{path} is not a run folder (no summary.json)")
    return path


def load_run(path: Path) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """(config, summary, rows) of a run folder."""
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    rows = [
        json.loads(line)
        for line in (path / "results.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return config, summary, rows


def _changed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {"a": a.get(key), "b": b.get(key)} for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)
    }


def compare_runs(run_a: Path | str, run_b: Path | str, *, runs_root: Path | None = None) -> dict[str, Any]:
    """What changed from run A (before) to run B (after)."""
    path_a, path_b = resolve_run(run_a, runs_root), resolve_run(run_b, runs_root)
    config_a, summary_a, rows_a = load_run(path_a)
    config_b, summary_b, rows_b = load_run(path_b)
    if summary_a.get("kind") != summary_b.get("kind"):
        raise UserError(f"cannot compare a {summary_a.get('kind')} run with a {summary_b.get('kind')} run")
    metrics_a, metrics_b = summary_a.get("metrics", {}), summary_b.get("metrics", {})
    metrics = []
    for name in sorted(set(metrics_a) | set(metrics_b)):
        a, b = metrics_a.get(name), metrics_b.get(name)
        delta = None if a is None or b is None else round(b - a, 4)
        if delta is None or abs(delta) < EPSILON:
            direction = "same" if delta is not None else "n/a"
        else:
            better = delta < 0 if lower_is_better(name) else delta > 0
            direction = "better" if better else "worse"
        metrics.append({"metric": name, "a": a, "b": b, "delta": delta, "direction": direction})
    by_id_a = {str(r["id"]): r for r in rows_a}
    by_id_b = {str(r["id"]): r for r in rows_b}
    common = [i for i in by_id_b if i in by_id_a]
    improved, regressed, moved = [], [], []
    for case_id in common:
        ra, rb = by_id_a[case_id], by_id_b[case_id]
        entry = {
            "id": case_id,
            "a_score": ra.get("score"),
            "b_score": rb.get("score"),
            "a_failed": ra.get("failed", []),
            "b_failed": rb.get("failed", []),
        }
        if rb.get("passed") and not ra.get("passed"):
            improved.append(entry)
        elif ra.get("passed") and not rb.get("passed"):
            regressed.append(entry)
        elif abs((rb.get("score") or 0.0) - (ra.get("score") or 0.0)) >= CASE_SCORE_MOVE:
            moved.append(entry)
    prompts_a, prompts_b = config_a.get("prompts", {}), config_b.get("prompts", {})
    return {
        "a": {
            "path": str(path_a),
            "chat": config_a.get("chat"),
            "git": config_a.get("git"),
            "dataset": config_a.get("dataset", {}).get("name"),
            "n": summary_a.get("n"),
        },
        "b": {
            "path": str(path_b),
            "chat": config_b.get("chat"),
            "git": config_b.get("git"),
            "dataset": config_b.get("dataset", {}).get("name"),
            "n": summary_b.get("n"),
        },
        "same_dataset": config_a.get("dataset", {}).get("sha256")
        == config_b.get("dataset", {}).get("sha256"),
        "changed": {
            "prompts": _changed(prompts_a, prompts_b),
            "settings": _changed(config_a.get("settings", {}), config_b.get("settings", {})),
            "chat": config_a.get("chat") != config_b.get("chat"),
            "embedder": config_a.get("embedder") != config_b.get("embedder"),
        },
        "metrics": metrics,
        "improved": [m["metric"] for m in metrics if m["direction"] == "better"],
        "regressed": [m["metric"] for m in metrics if m["direction"] == "worse"],
        "cases": {
            "common": len(common),
            "only_a": sorted(set(by_id_a) - set(by_id_b)),
            "only_b": sorted(set(by_id_b) - set(by_id_a)),
            "now_passing": improved,
            "now_failing": regressed,
            "score_moved": sorted(moved, key=lambda e: (e["b_score"] or 0) - (e["a_score"] or 0)),
        },
    }


def format_comparison(result: dict[str, Any]) -> str:
    """The comparison as text: what changed in the setup, metric deltas, cases that flipped."""
    a, b = result["a"], result["b"]
    lines = [
        f"A: {a['path']}  ({a['chat'] or 'retrieval only'}, git {(a['git'] or {}).get('sha')})",
        f"B: {b['path']}  ({b['chat'] or 'retrieval only'}, git {(b['git'] or {}).get('sha')})",
    ]
    if not result["same_dataset"]:
        lines.append("note: the dataset files differ; only cases with the same id are compared")
    cases = result["cases"]
    if cases["only_a"] or cases["only_b"]:
        lines.append(
            f"note: the runs cover different cases (A {a['n']}, B {b['n']}, {cases['common']} in both): "
            "the metrics below are not like for like"
        )
    changed = result["changed"]
    if changed["prompts"]:
        lines.append("prompts changed: " + ", ".join(changed["prompts"]))
    if changed["settings"]:
        lines.append(
            "settings changed: "
            + ", ".join(
                f"{k} {v['a']!r} -> {v['b']!r}" for k, v in changed["settings"].items() if k != "data_dir"
            )
        )
    if changed["chat"]:
        lines.append(f"chat model changed: {a['chat']} -> {b['chat']}")
    lines.append("")
    width = max((len(m["metric"]) for m in result["metrics"]), default=10)
    lines.append(f"{'metric'.ljust(width)}  {'A':>10}  {'B':>10}  {'delta':>9}")
    marks = {"better": "  improved", "worse": "  REGRESSED", "same": "", "n/a": ""}
    for m in result["metrics"]:
        fa = "-" if m["a"] is None else f"{m['a']:.4g}"
        fb = "-" if m["b"] is None else f"{m['b']:.4g}"
        fd = "" if m["delta"] is None else f"{m['delta']:+.4g}"
        lines.append(f"{m['metric'].ljust(width)}  {fa:>10}  {fb:>10}  {fd:>9}{marks[m['direction']]}")
    lines.append("")
    lines.append(
        f"cases compared: {cases['common']}; now passing: {len(cases['now_passing'])}; "
        f"now failing: {len(cases['now_failing'])}"
    )
    for entry in cases["now_failing"]:
        lines.append(f"  REGRESSED {entry['id']}: fails {', '.join(entry['b_failed']) or '?'}")
    for entry in cases["now_passing"]:
        lines.append(f"  improved  {entry['id']}: was failing {', '.join(entry['a_failed']) or '?'}")
    for entry in cases["score_moved"]:
        lines.append(f"  moved     {entry['id']}: score {entry['a_score']} -> {entry['b_score']}")
    if cases["only_a"] or cases["only_b"]:
        lines.append(f"  only in A: {len(cases['only_a'])}, only in B: {len(cases['only_b'])}")
    return "\n".join(lines)
