"""Summaries of run results: per-score means and pass rates, retrieval, triage, decisions, latency, slices.

Every summary carries ``metrics``: a flat mapping of metric name to number, the part that
``copilot eval compare`` diffs and ``copilot eval gate`` checks against thresholds. Times (``_ms``,
latency), ``*_rate_bad`` and ``n_errors`` are better when lower (see ``lower_is_better``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from copilot.evaluation.support import HEADLINE, POLICY
from copilot.triage.evaluate import classification_scores

TRIAGE_FIELDS = ("kind", "sentiment", "crisis", "private_info")
JUDGE_ASPECTS = ("empathy", "helpfulness", "faithfulness")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of this metric is the better one."""
    return "_ms" in metric or "latency" in metric or metric.endswith("_rate_bad") or metric == "n_errors"


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile of the values that are present, or None."""
    present = [float(v) for v in values if v is not None]
    return round(float(np.percentile(present, q)), 1) if present else None


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def score_table(rows: Sequence[dict[str, Any]], names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """For each score: how many cases it applied to, its mean value and its pass rate."""
    table: dict[str, dict[str, Any]] = {}
    for name in names:
        values = [
            r["scores"][name]["value"]
            for r in rows
            if name in r["scores"] and r["scores"][name]["value"] is not None
        ]
        verdicts = [
            r["scores"][name]["passed"]
            for r in rows
            if name in r["scores"] and r["scores"][name]["passed"] is not None
        ]
        # A case that raised fails every check it would have had; count it against each headline score.
        errors = sum(1 for r in rows if r.get("error"))
        if name in HEADLINE and errors:
            values = values + [0.0] * errors
            verdicts = verdicts + [False] * errors
        table[name] = {
            "n": len(values),
            "mean": _mean(values),
            "pass_rate": _mean([1.0 if v else 0.0 for v in verdicts]) if verdicts else None,
        }
    return table


def triage_table(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy and macro-F1 of each triage label over the cases that were drafted."""
    drafted = [r for r in rows if r.get("triage")]
    out: dict[str, Any] = {}
    for field in TRIAGE_FIELDS:
        gold = [str(r["expected"][field]) for r in drafted]
        predicted = [str(r["triage"][field]) for r in drafted]
        if gold:
            scores = classification_scores(gold, predicted)
            out[field] = {
                "n": scores["n"],
                "accuracy": scores["accuracy"],
                "macro_f1": scores["macro_f1"],
                "per_class": scores["per_class"],
            }
    return out


def _slices(rows: Sequence[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        values = row.get(key) or []
        for value in values if isinstance(values, list) else [values]:
            groups[str(value)].append(bool(row.get("passed")))
    return {name: {"n": len(v), "pass_rate": round(sum(v) / len(v), 4)} for name, v in sorted(groups.items())}


def summarise_support(rows: Sequence[dict[str, Any]], *, k: int) -> dict[str, Any]:
    """The summary of a support run."""
    n = len(rows)
    errors = [r["id"] for r in rows if r.get("error")]
    scores = score_table(rows, [*HEADLINE, *POLICY, "approvable"])
    retrieval = score_table(rows, ("hit", "recall", "rr", "ndcg"))
    triage = triage_table(rows)
    escal = [r for r in rows if "escalation" in r["scores"]]
    crises = [r for r in escal if r["expected"]["crisis"]]
    calm = [r for r in escal if not r["expected"]["crisis"]]
    judged = [r["judge"] for r in rows if r.get("judge") and not r["judge"].get("error")]
    summary: dict[str, Any] = {
        "kind": "support",
        "n": n,
        "n_errors": len(errors),
        "errors": errors,
        "n_passed": sum(1 for r in rows if r.get("passed")),
        "pass_rate": round(sum(1 for r in rows if r.get("passed")) / n, 4) if n else None,
        "mean_score": _mean([float(r.get("score") or 0.0) for r in rows]),
        "scores": scores,
        "retrieval": {
            f"hit@{k}": retrieval["hit"]["mean"],
            f"recall@{k}": retrieval["recall"]["mean"],
            "mrr": retrieval["rr"]["mean"],
            f"ndcg@{k}": retrieval["ndcg"]["mean"],
            "n": retrieval["hit"]["n"],
        },
        "triage": triage,
        "crisis_recall": _mean([1.0 if r["draft"]["status"] == "escalated" else 0.0 for r in crises]),
        "false_escalation_rate": _mean([1.0 if r["draft"]["status"] == "escalated" else 0.0 for r in calm]),
        "abstain_accuracy": scores["abstention"]["mean"],
        "statuses": dict(sorted(_count(r["draft"]["status"] for r in rows if r.get("draft")).items())),
        "latency_ms_p50": percentile((r.get("latency_ms") for r in rows), 50),
        "latency_ms_p95": percentile((r.get("latency_ms") for r in rows), 95),
        "first_token_ms_p50": percentile((r.get("first_token_ms") for r in rows), 50),
        "first_token_ms_p95": percentile((r.get("first_token_ms") for r in rows), 95),
        "by_tag": _slices(rows, "tags"),
        "by_channel": _slices(rows, "channel"),
        "by_kind": _slices([{**r, "kind": r["expected"]["kind"]} for r in rows], "kind"),
    }
    if judged:
        summary["judge"] = {
            a: _mean([float(j[a]) for j in judged if j.get(a) is not None]) for a in JUDGE_ASPECTS
        }
        summary["judge"]["n"] = len(judged)
        summary["judge"]["n_errors"] = sum(1 for r in rows if r.get("judge") and r["judge"].get("error"))
    summary["metrics"] = support_metrics(summary, k=k)
    summary["metric_n"] = support_metric_counts(summary, n_crisis=len(crises), n_calm=len(calm))
    return summary


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    return counts


def support_metrics(summary: dict[str, Any], *, k: int) -> dict[str, float]:
    """The flat metrics of a support summary."""
    metrics: dict[str, Any] = {
        "pass_rate": summary["pass_rate"],
        "mean_score": summary["mean_score"],
        "n_errors": summary["n_errors"],
    }
    for name, row in summary["scores"].items():
        metrics[f"{name}.mean"] = row["mean"]
        metrics[f"{name}.pass_rate"] = row["pass_rate"]
    for key, value in summary["retrieval"].items():
        if key != "n":
            metrics[f"retrieval.{key}"] = value
    for field, row in summary["triage"].items():
        metrics[f"triage.{field}.accuracy"] = row["accuracy"]
        metrics[f"triage.{field}.macro_f1"] = row["macro_f1"]
    metrics["crisis_recall"] = summary["crisis_recall"]
    metrics["false_escalation_rate_bad"] = summary["false_escalation_rate"]
    for key in ("latency_ms_p50", "latency_ms_p95", "first_token_ms_p50", "first_token_ms_p95"):
        metrics[key] = summary[key]
    for aspect, value in (summary.get("judge") or {}).items():
        if aspect in JUDGE_ASPECTS:
            metrics[f"judge.{aspect}"] = value
    return {key: value for key, value in metrics.items() if value is not None}


def support_metric_counts(summary: dict[str, Any], *, n_crisis: int, n_calm: int) -> dict[str, int]:
    """How many cases each metric of a support summary is computed over (the gate's margins use it)."""
    counts: dict[str, int] = {
        "pass_rate": summary["n"],
        "mean_score": summary["n"],
        "crisis_recall": n_crisis,
        "false_escalation_rate_bad": n_calm,
    }
    for name, row in summary["scores"].items():
        counts[f"{name}.mean"] = counts[f"{name}.pass_rate"] = row["n"]
    for key in summary["retrieval"]:
        if key != "n":
            counts[f"retrieval.{key}"] = summary["retrieval"]["n"]
    for field, row in summary["triage"].items():
        counts[f"triage.{field}.accuracy"] = counts[f"triage.{field}.macro_f1"] = row["n"]
    return {key: value for key, value in counts.items() if key in summary["metrics"]}


def summarise_retrieval_rows(rows: Sequence[dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    """A retrieval run's summary: ``evaluate_retrieval``'s numbers plus the flat metrics."""
    summary = {"kind": "retrieval", **base, "n_errors": sum(1 for r in rows if r.get("error"))}
    summary["n_passed"] = sum(1 for r in rows if r.get("passed"))
    summary["pass_rate"] = round(summary["n_passed"] / len(rows), 4) if rows else None
    metrics = {
        key: value
        for key, value in base.items()
        if isinstance(value, int | float) and key not in ("n", "n_answerable", "n_unanswerable", "k")
    }
    metrics["pass_rate"] = summary["pass_rate"]
    metrics["n_errors"] = summary["n_errors"]
    summary["metrics"] = {key: value for key, value in metrics.items() if value is not None}
    answerable = ("hit@", "recall@", "mrr", "ndcg@", "answered_rate")
    summary["metric_n"] = {
        key: base.get("n_answerable", 0)
        if key.startswith(answerable)
        else base.get("n_unanswerable", 0)
        if key == "abstain_rate_unanswerable"
        else len(rows)
        for key in summary["metrics"]
    }
    return summary
