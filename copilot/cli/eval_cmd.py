"""``copilot eval run|drafts|compare|gate``: run records, draft scoring, comparisons and the CI gate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from copilot.cli import emit
from copilot.cli.args import add_json, settings_from
from copilot.cli.progress import progress_bar
from copilot.errors import UserError


def register(commands: Any, groups: dict[str, Any]) -> None:
    p = groups["eval"].add_parser(
        "run", help="evaluate a dataset and keep a run record (config, results, report)"
    )
    p.add_argument(
        "dataset",
        help="a support set (.jsonl), a retrieval set (.jsonl), or a folder with cases.jsonl "
        "and its FAQ table (e.g. evals/datasets/covid)",
    )
    p.add_argument("--limit", type=int, help="only the first N cases")
    p.add_argument(
        "--model",
        choices=("configured", "extractive"),
        default="configured",
        help="draft with the configured chat model (default) or the deterministic extractive baseline",
    )
    p.add_argument("--judge", action="store_true", help="also grade each draft with the LLM judge")
    p.add_argument(
        "--judge-backend",
        choices=("local", "openai"),
        help="the judge's chat backend (default: the same as the drafts')",
    )
    p.add_argument("--out", default="evals/runs", help="where run folders go (default evals/runs)")
    p.add_argument("--workspace", help="evaluation state folder (index, gap log); default <data_dir>/eval")
    p.add_argument("--kb", help="knowledge-base folder for a support set (default: settings kb_dir)")
    add_json(p)
    p.set_defaults(func=run_eval_run)

    p = groups["eval"].add_parser("drafts", help="score drafts on support cases (no run record)")
    p.add_argument("--cases", required=True, help="support cases JSONL (see evals/datasets/README.md)")
    p.add_argument("--limit", type=int, help="only the first N cases")
    p.add_argument("--kb", help="knowledge-base folder (default: settings kb_dir)")
    p.add_argument(
        "--model",
        choices=("configured", "extractive"),
        default="configured",
        help="draft with the configured chat model (default) or the deterministic extractive baseline",
    )
    p.add_argument("--worst", type=int, default=5, help="how many of the worst cases to show (default 5)")
    add_json(p)
    p.set_defaults(func=run_eval_drafts)

    p = groups["eval"].add_parser("compare", help="what improved and what regressed between two runs")
    p.add_argument("run_a", help="the earlier run folder (or 'previous')")
    p.add_argument("run_b", help="the later run folder (or 'latest')")
    p.add_argument(
        "--runs", default="evals/runs", help="where run folders are (for names and latest/previous)"
    )
    add_json(p)
    p.set_defaults(func=run_eval_compare)

    p = groups["eval"].add_parser(
        "gate", help="the CI regression gate: a fast subset against recorded thresholds"
    )
    p.add_argument(
        "--thresholds", default="evals/thresholds.json", help="the gate file (default evals/thresholds.json)"
    )
    p.add_argument(
        "--model",
        choices=("extractive", "configured"),
        help="draft with the deterministic baseline or the configured chat model (default: the file's)",
    )
    p.add_argument(
        "--record", action="store_true", help="write the current numbers (less a margin) as thresholds"
    )
    p.add_argument("--out", help="also keep run records here")
    p.add_argument("--workspace", help="evaluation state folder (default <data_dir>/eval)")
    add_json(p)
    p.set_defaults(func=run_eval_gate)


def _progress(args: argparse.Namespace) -> tuple[Any, Any]:
    update, close = progress_bar("cases", enabled=not args.json and sys.stderr.isatty())
    return update, close


def _backends(args: argparse.Namespace, settings: Any) -> Any:
    from copilot.evaluation.runs import Backends

    backends = Backends()
    if getattr(args, "model", None) == "extractive":
        from copilot.evaluation.baseline import ExtractiveChat

        backends.chat = ExtractiveChat(
            prompts_dir=str(settings.prompts_dir) if settings.prompts_dir else None
        )
    if getattr(args, "judge_backend", None):
        from copilot.models.factory import build_chat

        backends.judge_chat = build_chat(settings.model_copy(update={"chat_backend": args.judge_backend}))
    return backends


def _support_text(summary: dict[str, Any]) -> list[str]:
    k = next((key for key in summary["retrieval"] if key.startswith("hit@")), "hit@5")
    lines = [
        f"retrieval: {k} {summary['retrieval'][k]}  mrr {summary['retrieval']['mrr']}",
        "triage:    "
        + "  ".join(f"{f} acc {t['accuracy']} F1 {t['macro_f1']}" for f, t in summary["triage"].items()),
        (
            f"decisions: crisis recall {summary['crisis_recall']}  false escalations "
            f"{summary['false_escalation_rate']}  abstain accuracy {summary['abstain_accuracy']}"
        ),
        (
            f"latency:   p50 {summary['latency_ms_p50']} ms  p95 {summary['latency_ms_p95']} ms  "
            f"first token p50 "
            f"{summary['first_token_ms_p50']} ms"
        ),
        "checks (mean / pass rate / cases):",
    ]
    lines += [
        f"  {name:18s} {s['mean'] if s['mean'] is not None else '-':>7}  "
        f"{s['pass_rate'] if s['pass_rate'] is not None else '-':>7}  {s['n']:>4}"
        for name, s in summary["scores"].items()
    ]
    if summary.get("judge"):
        lines.append("judge:     " + "  ".join(f"{k} {v}" for k, v in summary["judge"].items()))
    return lines


def _crisis_text(summary: dict[str, Any]) -> list[str]:
    c = summary["crisis"]
    lines = [
        (f"crises:    {c['n_crisis']}  flagged (crisis or possible) {c['recall_any']}  as crisis {c['recall_crisis']}"
        f"  missed {summary['n_missed']}"),
        (f"calm:      {c['n_calm']}  flagged {c['false_alarm_any']}  as crisis {c['false_alarm_crisis']}"
        f"  ({summary['n_false_alarms']} false alarms)"),
    ]
    lines += [f"  {group:12s} flagged {g['false_alarm_any']} of {g['n_calm']}"
              for group, g in (c.get("by_group") or {}).items()]
    lines.append("by language (recall): " + "  ".join(
        f"{lang} {b['recall_any']}" for lang, b in c["by_language"].items() if b["n_crisis"]))
    lines.append(f"speed:     {summary['messages_per_s']} messages/s")
    return lines


def summary_text(summary: dict[str, Any]) -> str:
    """A run summary as text."""
    head = (
        f"{summary['n']} cases: {summary['n_passed']} passed ({summary['pass_rate']}), "
        f"{summary['n_errors']} raised"
    )
    if summary["kind"] == "support":
        return "\n".join([head, *_support_text(summary)])
    if summary["kind"] == "crisis":
        return "\n".join([head, *_crisis_text(summary)])
    keep = ("hit@", "recall@", "mrr", "ndcg@", "abstain_accuracy", "answered_rate", "latency_ms")
    return "\n".join([head] + [f"  {k:26s} {v}" for k, v in summary.items() if k.startswith(keep)])


def run_eval_run(args: argparse.Namespace) -> int:
    from copilot.evaluation.runs import run_dataset

    settings = settings_from(args)
    update, close = _progress(args)
    try:
        result = run_dataset(
            settings,
            Path(args.dataset),
            out_root=Path(args.out),
            limit=args.limit,
            judge=args.judge,
            backends=_backends(args, settings),
            workspace=Path(args.workspace) if args.workspace else None,
            progress=update,
            options={"command": "eval run", "model": args.model},
        )
    finally:
        close()
    data = {"run": str(result.path), "summary": result.summary}
    emit(
        data,
        args.json,
        lambda d: f"{summary_text(d['summary'])}\nrun record: {d['run']}\nreport: {d['run']}/report.html",
    )
    return 0


def run_eval_drafts(args: argparse.Namespace) -> int:
    from copilot.evaluation.dataset import detect_dataset
    from copilot.evaluation.report import worst_first
    from copilot.evaluation.runs import run_dataset

    if detect_dataset(Path(args.cases)).kind != "support":
        raise UserError(
            f"{args.cases} is not a support case file (use `copilot eval run` for retrieval sets)"
        )
    settings = settings_from(args)
    update, close = _progress(args)
    try:
        result = run_dataset(
            settings,
            Path(args.cases),
            out_root=None,
            limit=args.limit,
            progress=update,
            backends=_backends(args, settings),
            options={"command": "eval drafts"},
        )
    finally:
        close()
    worst = [
        {
            "id": r["id"],
            "score": r.get("score"),
            "failed": r.get("failed"),
            "error": r.get("error"),
            "draft": (r.get("draft") or {}).get("text"),
        }
        for r in worst_first(result.rows)[: max(args.worst, 0)]
    ]
    data = {"summary": result.summary, "worst": worst, "results": result.rows}

    def text(d: dict[str, Any]) -> str:
        lines = [summary_text(d["summary"]), "", "worst cases:"]
        for w in d["worst"]:
            why = w["error"] or ", ".join(w["failed"] or []) or "passed"
            lines.append(f"  {w['id']} score {w['score']}: {why}\n    {(w['draft'] or '(no reply)')[:200]}")
        return "\n".join(lines)

    emit(data if args.json else {**data, "results": None}, args.json, text)
    return 0


def run_eval_compare(args: argparse.Namespace) -> int:
    from copilot.evaluation.compare import compare_runs, format_comparison

    result = compare_runs(args.run_a, args.run_b, runs_root=Path(args.runs))
    emit(result, args.json, format_comparison)
    return 0


def run_eval_gate(args: argparse.Namespace) -> int:
    from copilot.evaluation.gate import check, format_gate, load_gate, record, run_gate

    path = Path(args.thresholds)
    gate = load_gate(path)
    if args.model:
        gate = gate.model_copy(update={"model": args.model})
    settings = settings_from(args)
    report = run_gate(
        settings,
        gate,
        root=path.parent,
        workspace=Path(args.workspace) if args.workspace else None,
        out_root=Path(args.out) if args.out else None,
    )
    if args.record:
        recorded = record(gate, report, path)
        for name, spec in recorded.sets.items():  # the verdict against the thresholds just written
            checks = check(report["sets"][name]["metrics"], spec.thresholds)
            report["sets"][name].update(checks=checks, ok=all(c["ok"] for c in checks))
        report["ok"] = all(s["ok"] for s in report["sets"].values())
        report["recorded"] = str(path)
    emit(
        report,
        args.json,
        lambda r: format_gate(r) + (f"\nthresholds recorded in {r['recorded']}" if r.get("recorded") else ""),
    )
    return 0 if report["ok"] else 1
