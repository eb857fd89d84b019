"""Crisis sets in ``copilot eval run``: every message triaged, scored on whether the cascade flagged it.

A crisis set is a JSONL (or CSV) file of messages with a ``crisis`` label: ``none`` or a category
(``self-harm``, ``overdose``, ``abuse``, ``threat``, ``child at risk``, ``danger``, ``death of a member``, or a
plain yes), and optionally ``language`` and ``group`` (a slice such as ``hyperbole`` or ``urgent``). A crisis
passes when it is flagged at either level (``crisis`` or ``possible``: a person reads it first); a calm
message passes when it is not flagged. The run records every verdict with the span and note, so a miss or
a false alarm is one click away in the report, and ``eval compare`` and the gate see the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from copilot.errors import UserError
from copilot.evaluation.dataset import json_lines
from copilot.triage.cases import NO_CRISIS, Case, load_cases
from copilot.triage.evaluate import BATCH, crisis_report
from copilot.types import Triage

Row = dict[str, Any]


def load_crisis_cases(path: Path) -> list[Case]:
    """The labelled messages of a crisis set; an unlabelled row or a repeated id is an error naming the line."""
    if path.suffix.lower() in (".jsonl", ".json"):
        # The case reader takes a missing crisis cell as "none"; in a crisis set a row without the field is a
        # labelling mistake, not a calm message.
        for number, row in json_lines(path):
            if "crisis" not in row:
                raise UserError(f"{path}:{number}: no crisis field (use \"none\" for a calm message)")
    cases = list(load_cases(path).cases)
    seen: dict[str, int] = {}
    for case in cases:
        case_id = case_key(case)
        if case_id in seen:
            raise UserError(f"{path}:{case.line}: duplicate id {case_id!r} (first on line {seen[case_id]})")
        seen[case_id] = case.line
    return cases


def case_key(case: Case) -> str:
    """The case's own id, or its line when the file has none."""
    return str(case.inbound.id) if case.inbound.id else f"line-{case.line}"


def crisis_row(case: Case, triage: Triage) -> Row:
    """One message's verdict: flagged or not, at which level, on which words, and whether that was right."""
    is_crisis = case.crisis != NO_CRISIS
    flagged = triage.crisis_level is not None
    passed = flagged if is_crisis else not flagged
    if passed:
        failed: list[str] = []
    elif is_crisis:
        failed = ["missed crisis"]
    else:
        failed = [f"false alarm ({triage.crisis_level})"]
    category_ok = None
    if is_crisis and flagged and case.crisis != "crisis":
        category_ok = (triage.crisis_reason or "").startswith(str(case.crisis))
    detail = triage.crisis_note or ""
    return {
        "id": case_key(case),
        "text": case.text,
        "expected": {"crisis": case.crisis, "group": case.group, "language": case.language},
        "level": triage.crisis_level,
        "reason": triage.crisis_reason,
        "span": triage.crisis_span,
        "note": triage.crisis_note,
        "language": triage.language,
        "error": None,
        "passed": passed,
        "failed": failed,
        "score": 1.0 if passed else 0.0,
        "scores": {
            ("flagged" if is_crisis else "quiet"): {"value": 1.0 if passed else 0.0, "passed": passed,
                                                    "detail": detail},
            **({"category": {"value": 1.0 if category_ok else 0.0, "passed": category_ok,
                             "detail": f"expected {case.crisis}, read {triage.crisis_reason}"}}
               if category_ok is not None else {}),
        },
    }


def summarise_crisis(cases: Sequence[Case], triages: Sequence[Triage], rows: Sequence[Row],
                     seconds: float) -> dict[str, Any]:
    """The run's summary: the cascade report (per level, category, language and group) and flat metrics.

    ``crisis.recall_any`` is the safety number (a missed crisis is the worst failure); false alarms and the
    share of each calm group flagged are ``*_rate_bad`` (lower is better) for compare and the gate.
    """
    report = crisis_report(cases, triages)
    n_passed = sum(1 for r in rows if r["passed"])
    summary: dict[str, Any] = {
        "kind": "crisis",
        "n": len(rows),
        "n_passed": n_passed,
        "pass_rate": round(n_passed / len(rows), 4) if rows else None,
        "n_errors": 0,
        "crisis": {k: v for k, v in report.items() if k not in ("missed", "false_alarms")},
        "n_missed": len(report["missed"]),
        "n_false_alarms": len(report["false_alarms"]),
        "messages_per_s": round(len(rows) / seconds, 1) if seconds > 0 else None,
    }
    metrics: dict[str, Any] = {
        "pass_rate": summary["pass_rate"],
        "n_errors": 0,
        "crisis.recall_any": report["recall_any"],
        "crisis.recall_crisis": report["recall_crisis"],
        "crisis.precision_any": report["precision_any"],
        "crisis.category_accuracy": report["category_accuracy"],
        "crisis.false_alarm_any_rate_bad": report["false_alarm_any"],
        "crisis.false_alarm_crisis_rate_bad": report["false_alarm_crisis"],
    }
    counts: dict[str, int] = {"pass_rate": len(rows), "n_errors": len(rows),
                              "crisis.recall_any": report["n_crisis"], "crisis.recall_crisis": report["n_crisis"],
                              "crisis.precision_any": report["n_crisis"],
                              "crisis.category_accuracy": report["n_crisis"],
                              "crisis.false_alarm_any_rate_bad": report["n_calm"],
                              "crisis.false_alarm_crisis_rate_bad": report["n_calm"]}
    for group, block in (report.get("by_group") or {}).items():
        metrics[f"group.{group}.flagged_rate_bad"] = block["false_alarm_any"]
        counts[f"group.{group}.flagged_rate_bad"] = block["n_calm"]
    for language, block in report["by_language"].items():
        if block["n_crisis"]:
            metrics[f"language.{language}.recall_any"] = block["recall_any"]
            counts[f"language.{language}.recall_any"] = block["n_crisis"]
    summary["metrics"] = {k: v for k, v in metrics.items() if v is not None}
    summary["metric_n"] = {k: v for k, v in counts.items() if k in summary["metrics"]}
    return summary


def evaluate_crisis(
    triager: Any,
    cases: Sequence[Case],
    *,
    on_row: Callable[[Row], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Row], dict[str, Any]]:
    """Triage every case in batches (rows are kept as each batch finishes) and summarise."""
    triages: list[Triage] = []
    rows: list[Row] = []
    clock = time.perf_counter()
    for start in range(0, len(cases), BATCH):
        batch = cases[start:start + BATCH]
        for case, triage in zip(batch, triager.triage_batch([c.inbound for c in batch]), strict=True):
            row = crisis_row(case, triage)
            triages.append(triage)
            rows.append(row)
            if on_row:
                on_row(row)
        if progress:
            progress(len(rows), len(cases))
    return rows, summarise_crisis(cases, triages, rows, time.perf_counter() - clock)
