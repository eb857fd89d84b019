"""Retrieval evaluation: hit@k, recall@k, MRR, nDCG@k, abstention and latency over a case file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from copilot.errors import UserError
from copilot.retrieve import Retriever, ndcg


class RetrievalCase(BaseModel):
    """One retrieval case: a query and the entries that answer it (none: the system should abstain)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    query: str = Field(min_length=1)
    relevant_ids: list[str] = Field(default_factory=list)


def load_retrieval_cases(path: Path | str) -> list[RetrievalCase]:
    """Cases from a JSONL file; a bad line is an error naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"cases file {path} not found")
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if isinstance(row, dict) and "relevant_ids" in row:
                row["relevant_ids"] = [str(x) for x in row["relevant_ids"] or []]
            case = RetrievalCase.model_validate(row)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            raise UserError(f"{path}:{number}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
        cases.append(case.model_copy(update={"id": case.id or f"case-{number}"}))
    if not cases:
        raise UserError(f"cases file {path} has no cases")
    return cases


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case."""

    id: str
    query: str
    relevant_ids: list[str]
    retrieved_ids: list[str]
    scores: list[float]
    grounded: bool
    rank: int | None
    latency_ms: float


def evaluate_retrieval(retriever: Retriever, cases: list[RetrievalCase], *, k: int = 5,
                       mode: str = "hybrid") -> tuple[dict[str, Any], list[CaseResult]]:
    """Score retrieval over cases; answerable cases drive ranking metrics, all cases drive abstention."""
    results: list[CaseResult] = []
    for case in cases:
        got = retriever.search(case.query, k=k, mode=mode)
        ids = got.ids
        rank = next((i + 1 for i, rid in enumerate(ids) if rid in set(case.relevant_ids)), None)
        results.append(CaseResult(id=str(case.id), query=case.query, relevant_ids=case.relevant_ids,
                                  retrieved_ids=ids, scores=[p.score for p in got.passages],
                                  grounded=got.grounded, rank=rank, latency_ms=got.latency_ms))
    return summarise(results, k=k, mode=mode), results


def summarise(results: list[CaseResult], *, k: int, mode: str) -> dict[str, Any]:
    """The summary metrics of a list of case results."""
    answerable = [r for r in results if r.relevant_ids]
    unanswerable = [r for r in results if not r.relevant_ids]
    lat = np.array([r.latency_ms for r in results]) if results else np.zeros(1)
    summary: dict[str, Any] = {"n": len(results), "n_answerable": len(answerable),
                               "n_unanswerable": len(unanswerable), "k": k, "mode": mode}
    if answerable:
        summary[f"hit@{k}"] = round(float(np.mean([r.rank is not None for r in answerable])), 4)
        summary[f"recall@{k}"] = round(float(np.mean(
            [len(set(r.retrieved_ids[:k]) & set(r.relevant_ids)) / len(set(r.relevant_ids)) for r in answerable]
        )), 4)
        summary["mrr"] = round(float(np.mean([1.0 / r.rank if r.rank else 0.0 for r in answerable])), 4)
        summary[f"ndcg@{k}"] = round(float(np.mean(
            [ndcg(r.retrieved_ids, set(r.relevant_ids), k) for r in answerable])), 4)
        summary["answered_rate"] = round(float(np.mean([r.grounded for r in answerable])), 4)
    if unanswerable:
        correct = [r.grounded == bool(r.relevant_ids) for r in results]
        summary["abstain_accuracy"] = round(float(np.mean(correct)), 4)
        summary["abstain_rate_unanswerable"] = round(float(np.mean([not r.grounded for r in unanswerable])), 4)
    summary["latency_ms_p50"] = round(float(np.percentile(lat, 50)), 2)
    summary["latency_ms_p95"] = round(float(np.percentile(lat, 95)), 2)
    return summary


def calibrate_floor(results: list[CaseResult]) -> tuple[float, float]:
    """The score floor that maximises abstention accuracy on these results, and that accuracy."""
    # The same definition as abstain_accuracy: answer the answerable cases, abstain on the rest.
    tops = [(r.scores[0] if r.scores else 0.0, bool(r.relevant_ids)) for r in results]
    best = (0.5, -1.0)
    for floor in np.arange(0.2, 0.9, 0.005):
        acc = float(np.mean([(score >= floor) == ok for score, ok in tops]))
        if acc > best[1]:
            best = (round(float(floor), 3), acc)
    return best
