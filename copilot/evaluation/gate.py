"""The regression gate: a small, fast eval subset whose scores must stay above recorded thresholds.

``evals/thresholds.json`` names the subset (support case ids, a retrieval case count), the chat model it
drafts with (``extractive``: the deterministic baseline in ``copilot.evaluation.baseline``; or
``configured``: the settings' own backend, e.g. the embedded model) and, per metric of the run summaries,
a ``min`` or ``max``. ``copilot eval gate`` runs the subset through the same pipeline as every other run
and fails when any metric crosses its threshold; ``--record`` rewrites the thresholds from the current
numbers with a margin (``margin``, or one case's worth for a rate over five or more cases, see
``_margin``; a ``strict`` bound keeps the plain margin), after a change that is meant to move them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from copilot.config import Settings
from copilot.errors import UserError
from copilot.evaluation.runs import Backends, RunResult, git_state, run_dataset
from copilot.evaluation.summary import lower_is_better

DEFAULT_THRESHOLDS = Path("evals/thresholds.json")
ONE_FLIP_CASES = 5
# Safety numbers recorded exactly as measured: one more missed crisis fails the gate, whatever the set's size.
NO_MARGIN = ("crisis.recall_any",)


class Bound(BaseModel):
    """A metric's lower or upper bound."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None
    strict: bool = False  # recorded with the plain margin: not even one case may flip (safety checks)

    @model_validator(mode="after")
    def _one_side(self) -> Bound:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min or max")
        return self


class GateSet(BaseModel):
    """One dataset of the gate and its bounds."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    cases: list[str] | None = None
    limit: int | None = Field(default=None, ge=1)
    thresholds: dict[str, Bound]


class GateConfig(BaseModel):
    """The contents of ``evals/thresholds.json``."""

    model_config = ConfigDict(extra="forbid")

    about: str = ""
    model: Literal["extractive", "configured"] = "extractive"
    margin: float = Field(default=0.05, ge=0, le=0.5)
    sets: dict[str, GateSet]
    recorded: dict[str, Any] = Field(default_factory=dict)


def load_gate(path: Path | str = DEFAULT_THRESHOLDS) -> GateConfig:
    """The gate configuration; a bad file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"thresholds file {path} not found")
    try:
        return GateConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc


def check(metrics: dict[str, Any], thresholds: dict[str, Bound]) -> list[dict[str, Any]]:
    """Each threshold with the measured value and whether it holds (a missing metric fails)."""
    out = []
    for name, bound in thresholds.items():
        value = metrics.get(name)
        if value is None:
            ok = False
        elif bound.min is not None:
            ok = value >= bound.min
        else:
            ok = value <= bound.max
        out.append({"metric": name, "value": value, "min": bound.min, "max": bound.max, "ok": ok})
    return out


def gate_backends(gate: GateConfig, settings: Settings) -> Backends:
    """The injected chat model of the gate (none for ``configured``: the settings decide)."""
    if gate.model == "extractive":
        from copilot.evaluation.baseline import ExtractiveChat

        return Backends(
            chat=ExtractiveChat(prompts_dir=str(settings.prompts_dir) if settings.prompts_dir else None)
        )
    return Backends()


def run_gate(
    settings: Settings,
    gate: GateConfig,
    *,
    root: Path = DEFAULT_THRESHOLDS.parent,
    backends: Backends | None = None,
    workspace: Path | None = None,
    out_root: Path | None = None,
) -> dict[str, Any]:
    """Run every set of the gate (dataset paths are relative to ``root``); ``ok``: every threshold holds."""
    backends = backends or gate_backends(gate, settings)
    report: dict[str, Any] = {"model": gate.model, "sets": {}, "ok": True}
    for name, spec in gate.sets.items():
        result: RunResult = run_dataset(
            settings,
            root / spec.dataset,
            out_root=out_root,
            limit=spec.limit,
            case_ids=spec.cases,
            backends=backends,
            workspace=workspace,
            options={"gate": name},
        )
        checks = check(result.summary["metrics"], spec.thresholds)
        ok = all(c["ok"] for c in checks)
        report["sets"][name] = {
            "dataset": spec.dataset,
            "n": result.summary["n"],
            "checks": checks,
            "ok": ok,
            "metrics": result.summary["metrics"],
            "metric_n": result.summary.get("metric_n", {}),
            "run": str(result.path) if result.path else None,
            "failed_cases": [r["id"] for r in result.rows if not r.get("passed")],
            "chat": result.config.get("chat"),
            "seconds": result.summary.get("seconds"),
        }
        report["ok"] = report["ok"] and ok
    return report


def _margin(margin: float, n: int | None) -> float:
    """The room below a recorded rate: ``margin``, widened to one case's worth from ``ONE_FLIP_CASES`` cases.

    A 15-case subset moves a rate by 0.067 when one case flips; a legitimate change may flip one case, a
    regression flips more. Over fewer cases every case must hold (a missed crisis is never noise).
    """
    if n is None or n < ONE_FLIP_CASES:
        return margin
    return max(margin, 1.0 / n)


def _floor(value: float, digits: int = 2) -> float:
    return math.floor(value * 10**digits) / 10**digits


def _ceil(value: float, digits: int = 2) -> float:
    return math.ceil(value * 10**digits) / 10**digits


def record(gate: GateConfig, report: dict[str, Any], path: Path | str) -> GateConfig:
    """New thresholds from a gate report: each value less the margin (plus it, when lower is better)."""
    sets = {}
    for name, spec in gate.sets.items():
        metrics = report["sets"][name]["metrics"]
        bounds = {}
        for metric, bound in spec.thresholds.items():
            value = metrics.get(metric)
            if value is None:
                raise UserError(f"cannot record {metric!r}: the {name} run has no such metric")
            n = None if bound.strict else report["sets"][name].get("metric_n", {}).get(metric)
            if bound.max is not None or lower_is_better(metric):
                margin = gate.margin * max(abs(value), 1.0) if "ms" in metric else _margin(gate.margin, n)
                bounds[metric] = Bound(
                    max=_ceil(value + (0 if metric == "n_errors" else margin)), strict=bound.strict
                )
            elif bound.strict and metric in NO_MARGIN:
                bounds[metric] = Bound(min=_floor(value, 4), strict=True)
            else:
                bounds[metric] = Bound(
                    min=max(0.0, _floor(value - _margin(gate.margin, n))), strict=bound.strict
                )
        sets[name] = spec.model_copy(update={"thresholds": bounds})
    values = {
        name: {m: report["sets"][name]["metrics"].get(m) for m in spec.thresholds}
        for name, spec in gate.sets.items()
    }
    updated = gate.model_copy(
        update={
            "sets": sets,
            "recorded": {
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "git": git_state(),
                "values": values,
                "chat": {name: report["sets"][name]["chat"] for name in gate.sets},
            },
        }
    )
    Path(path).write_text(
        json.dumps(updated.model_dump(exclude_none=True), indent=2) + "\n", encoding="utf-8"
    )
    return updated


def format_gate(report: dict[str, Any]) -> str:
    """The gate's verdict as text."""
    lines = []
    for name, result in report["sets"].items():
        lines.append(
            f"{name}: {result['dataset']} ({result['n']} cases, {result['chat'] or 'retrieval only'}, "
            f"{result['seconds']} s) {'ok' if result['ok'] else 'FAILED'}"
        )
        for c in result["checks"]:
            bound = f">= {c['min']}" if c["min"] is not None else f"<= {c['max']}"
            value = "missing" if c["value"] is None else f"{c['value']:.4g}"
            lines.append(f"  {'ok  ' if c['ok'] else 'FAIL'}  {c['metric']:32s} {value:>9}  (needs {bound})")
        if result["failed_cases"]:
            lines.append(f"  cases not passing: {', '.join(result['failed_cases'])}")
    lines.append("gate passed" if report["ok"] else "gate FAILED: a score fell below its recorded threshold")
    return "\n".join(lines)
