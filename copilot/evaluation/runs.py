"""Run records: evaluate a dataset through the pipeline and keep everything in one folder.

``evals/runs/<UTC timestamp>-<git short sha or 'nogit'>/`` holds

- ``config.json``: chat model label, embedder, prompt template hashes, settings (secrets left out), dataset
  file and its hash, git state, command options, start and end time;
- ``results.jsonl``: one row per case, written as each case finishes (a case that raised is a row with
  its ``error``);
- ``summary.json``: the aggregate numbers, with a flat ``metrics`` mapping for compare and gate;
- ``report.html``: tables and charts, the worst cases first, each draft beside its sources.

Evaluation never touches the team's state: drafts are not submitted to the review queue, and the index
and knowledge-gap log of the run live in a separate workspace (``<data_dir>/eval`` by default). The chat
model, the embedder and the triager are the team's own, so the run measures what the CLI and UI would do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copilot.config import Settings
from copilot.errors import UserError
from copilot.evaluation.dataset import (
    DatasetSpec,
    check_known_ids,
    detect_dataset,
    load_support_cases_with_lines,
)
from copilot.evaluation.retrieval import CaseResult, RetrievalCase, load_retrieval_cases, summarise
from copilot.evaluation.summary import summarise_retrieval_rows, summarise_support
from copilot.evaluation.support import evaluate_support
from copilot.knowledge import load_knowledge
from copilot.pipeline import Pipeline, build_pipeline
from copilot.prompts import load_prompts

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

DEFAULT_RUNS_DIR = Path("evals/runs")
SECRET_WORDS = ("key", "secret", "password", "token")
Progress = Callable[[int, int], None]


@dataclass
class Backends:
    """Injected parts (tests, the gate's deterministic model); ``None`` means the settings' own."""

    chat: BaseChatModel | None = None
    embedder: Embeddings | None = None
    triager: Any = None
    judge_chat: BaseChatModel | None = None


# -- where and what ----------------------------------------------------------------------------
def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """The short commit and whether the work tree has changes; ``sha`` is None outside a repository."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if sha else None
    return {"sha": sha, "dirty": bool(status) if status is not None else None}


def new_run_dir(root: Path, sha: str | None, now: dt.datetime | None = None) -> Path:
    """A fresh ``<UTC timestamp>-<sha or nogit>`` folder under ``root``."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = root / f"{stamp}-{sha or 'nogit'}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def _redact_url(value: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@/]+@", r"\1:***@", value)


def public_settings(settings: Settings) -> dict[str, Any]:
    """The settings as JSON, without secrets (keys, passwords in URLs)."""
    data = settings.model_dump(mode="json")
    out: dict[str, Any] = {}
    for name, value in data.items():
        if any(word in name.lower() for word in SECRET_WORDS):
            out[name] = "***" if value else None
        elif isinstance(value, str) and "://" in value:
            out[name] = _redact_url(value)
        else:
            out[name] = value
    return out


def prompt_hashes(settings: Settings) -> dict[str, str]:
    """Every prompt template and the hash of its source (the same hash drafts record)."""
    prompts = load_prompts(str(settings.prompts_dir) if settings.prompts_dir else None)
    names = sorted(str(p.relative_to(prompts.root)) for p in prompts.root.rglob("*.j2"))
    return {name: prompts.source_hash(name) for name in names}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


# -- pipelines ---------------------------------------------------------------------------------
def workspace_settings(settings: Settings, workspace: Path | None, **overrides: Any) -> Settings:
    """The team's settings with all state moved to the evaluation workspace."""
    return settings.model_copy(update={"data_dir": workspace or settings.data_dir / "eval", **overrides})


def eval_pipeline(
    settings: Settings, backends: Backends, *, workspace: Path | None, needs_chat: bool, **overrides: Any
) -> tuple[Pipeline, Pipeline]:
    """(team pipeline, evaluation pipeline): the same models and triager, the workspace's index and logs."""
    team = build_pipeline(settings, chat=backends.chat, embedder=backends.embedder, triager=backends.triager)
    work = workspace_settings(settings, workspace, **overrides)
    pipeline = build_pipeline(
        work,
        chat=team.chat if needs_chat else None,
        embedder=team.embedder,
        triager=team.triager if needs_chat else None,
    )
    return team, pipeline


def model_label_of(pipeline: Pipeline) -> str:
    from copilot.models.factory import model_label

    return model_label(pipeline.chat)


# -- running -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    """What a run produced."""

    path: Path | None
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    summary: dict[str, Any]


def load_cases_for(spec: DatasetSpec, limit: int | None) -> list[Any]:
    """The dataset's cases (validated), the first ``limit`` of them if given."""
    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    if spec.kind == "support":
        loaded = load_support_cases_with_lines(spec.cases)
        return loaded[:limit] if limit else loaded
    if spec.kind == "crisis":
        from copilot.evaluation.crisis import load_crisis_cases

        crisis_cases = load_crisis_cases(spec.cases)
        return crisis_cases[:limit] if limit else crisis_cases
    cases = load_retrieval_cases(spec.cases)
    return cases[:limit] if limit else cases


def run_dataset(
    settings: Settings,
    dataset: Path | str,
    *,
    out_root: Path | None = DEFAULT_RUNS_DIR,
    limit: int | None = None,
    judge: bool = False,
    backends: Backends | None = None,
    workspace: Path | None = None,
    case_ids: list[str] | None = None,
    progress: Progress | None = None,
    options: dict[str, Any] | None = None,
) -> RunResult:
    """Evaluate a support, retrieval or crisis dataset; with ``out_root`` also write the run record."""
    backends = backends or Backends()
    spec = detect_dataset(dataset)
    loaded = load_cases_for(spec, None if case_ids else limit)
    if case_ids:
        wanted = set(case_ids)
        loaded = [c for c in loaded if _case_id(spec, c) in wanted]
        missing = wanted - {_case_id(spec, c) for c in loaded}
        if missing:
            raise UserError(f"{spec.cases}: no cases with id {', '.join(sorted(missing))}")
    started = dt.datetime.now(dt.UTC)
    git = git_state()
    run_dir = new_run_dir(Path(out_root), git["sha"], started) if out_root is not None else None
    config: dict[str, Any] = {
        "dataset": {
            "path": str(spec.cases),
            "kind": spec.kind,
            "name": spec.name,
            "sha256": file_sha256(spec.cases),
            "kb": str(spec.kb) if spec.kb else None,
            "n_cases": len(loaded),
        },
        "git": git,
        "started": started.isoformat(),
        "python": platform.python_version(),
        "machine": {"system": platform.system(), "machine": platform.machine()},
        "options": {"limit": limit, "judge": judge, "case_ids": case_ids, **(options or {})},
        "settings": public_settings(settings),
        "prompts": prompt_hashes(settings),
    }
    results = run_dir / "results.jsonl" if run_dir else None
    if results:
        results.write_text("", encoding="utf-8")

    def keep(row: dict[str, Any]) -> None:
        if results:
            with results.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    clock = time.perf_counter()
    if spec.kind == "support":
        rows, summary = _run_support(
            settings, spec, loaded, config, backends, workspace, judge, keep, progress, run_dir
        )
    elif spec.kind == "crisis":
        rows, summary = _run_crisis(settings, spec, loaded, config, backends, keep, progress, run_dir)
    else:
        rows, summary = _run_retrieval(
            settings, spec, loaded, config, backends, workspace, keep, progress, run_dir
        )
    config["finished"] = dt.datetime.now(dt.UTC).isoformat()
    config["seconds"] = round(time.perf_counter() - clock, 1)
    summary["seconds"] = config["seconds"]
    if run_dir:
        from copilot.evaluation.report import write_report

        write_json(run_dir / "config.json", config)
        write_json(run_dir / "summary.json", summary)
        write_report(run_dir, config, rows, summary)
    return RunResult(run_dir, config, rows, summary)


def _run_support(
    settings: Settings,
    spec: DatasetSpec,
    loaded: list[Any],
    config: dict[str, Any],
    backends: Backends,
    workspace: Path | None,
    judge: bool,
    keep: Callable[[dict[str, Any]], None],
    progress: Progress | None,
    run_dir: Path | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    entries = load_knowledge(settings.kb_dir)
    check_known_ids(spec.cases, loaded, entries)
    team, pipeline = eval_pipeline(settings, backends, workspace=workspace, needs_chat=True)
    config.update(
        chat=model_label_of(pipeline),
        embedder=pipeline.embedder_name,
        kb={"path": str(settings.kb_dir), "entries": len(entries)},
        workspace=str(pipeline.settings.data_dir),
        triager=str(getattr(team.triager, "source", type(team.triager).__name__)),
    )
    if run_dir:
        write_json(run_dir / "config.json", {**config, "status": "running"})
    ingest = pipeline.ingest()
    config["ingest"] = ingest.to_dict()
    judge_obj = None
    if judge:
        from copilot.evaluation.judge import Judge

        judge_chat = backends.judge_chat or pipeline.chat
        judge_obj = Judge(judge_chat, settings)
        from copilot.models.factory import model_label

        config["judge"] = {"chat": model_label(judge_chat), "templates": judge_obj.template_hashes()}
    rows = evaluate_support(
        pipeline, [item.case for item in loaded], entries, judge=judge_obj, progress=progress, on_row=keep
    )
    summary = summarise_support(rows, k=settings.top_k)
    summary.update(dataset=spec.name, chat=config["chat"], embedder=config["embedder"])
    return rows, summary


def _case_id(spec: DatasetSpec, case: Any) -> str:
    if spec.kind == "support":
        return str(case.case.id)
    if spec.kind == "crisis":
        from copilot.evaluation.crisis import case_key

        return case_key(case)
    return str(case.id)


def _run_crisis(
    settings: Settings,
    spec: DatasetSpec,
    cases: list[Any],
    config: dict[str, Any],
    backends: Backends,
    keep: Callable[[dict[str, Any]], None],
    progress: Progress | None,
    run_dir: Path | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Triage a crisis set with the team's own triager (no chat model, no index, no drafts)."""
    from copilot.evaluation.crisis import evaluate_crisis

    team = build_pipeline(settings, embedder=backends.embedder, triager=backends.triager)
    triager = team.triager
    config.update(chat=None, embedder=team.embedder_name,
                  triager=str(getattr(triager, "source", type(triager).__name__)))
    if run_dir:
        write_json(run_dir / "config.json", {**config, "status": "running"})
    rows, summary = evaluate_crisis(triager, cases, on_row=keep, progress=progress)
    summary.update(dataset=spec.name, embedder=config["embedder"], triager=config["triager"])
    return rows, summary


def _kb_tag(kb: Path) -> str:
    return hashlib.sha1(str(kb.resolve()).encode()).hexdigest()[:10]


def _run_retrieval(
    settings: Settings,
    spec: DatasetSpec,
    cases: list[RetrievalCase],
    config: dict[str, Any],
    backends: Backends,
    workspace: Path | None,
    keep: Callable[[dict[str, Any]], None],
    progress: Progress | None,
    run_dir: Path | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    kb = spec.kb or settings.kb_dir
    entries = {e.id: e for e in load_knowledge(kb)}
    unknown = sorted({i for c in cases for i in c.relevant_ids if i not in entries})
    if unknown:
        raise UserError(f"{spec.cases}: relevant_ids not in {kb}: {', '.join(unknown[:5])}")
    # The team's knowledge base shares the support runs' index in the workspace; another one gets its own.
    same = Path(kb).resolve() == Path(settings.kb_dir).resolve()
    _, pipeline = eval_pipeline(
        settings,
        backends,
        workspace=workspace,
        needs_chat=False,
        collection=settings.collection if same else f"eval-{_kb_tag(Path(kb))}",
    )
    config.update(
        chat=None,
        embedder=pipeline.embedder_name,
        kb={"path": str(kb), "entries": len(entries)},
        workspace=str(pipeline.settings.data_dir),
    )
    if run_dir:
        write_json(run_dir / "config.json", {**config, "status": "running"})
    config["ingest"] = pipeline.ingest(Path(kb)).to_dict()
    k = settings.top_k
    results: list[CaseResult] = []
    rows: list[dict[str, Any]] = []
    for number, case in enumerate(cases, start=1):
        row, result = retrieval_row(pipeline, case, entries, k)
        results.append(result)
        rows.append(row)
        keep(row)
        if progress:
            progress(number, len(cases))
    base = summarise(results, k=k, mode="hybrid")
    base["score_floor"] = settings.score_floor
    summary = summarise_retrieval_rows(rows, base)
    summary.update(dataset=spec.name, embedder=config["embedder"])
    return rows, summary


def retrieval_row(
    pipeline: Pipeline, case: RetrievalCase, entries: dict[str, Any], k: int
) -> tuple[dict[str, Any], CaseResult]:
    """Search one retrieval case and score it; an exception is recorded and counts as a wrong answer."""
    from copilot.retrieve import ndcg

    relevant = list(case.relevant_ids)
    row: dict[str, Any] = {"id": case.id, "query": case.query, "relevant_ids": relevant, "error": None}
    try:
        got = pipeline.retriever.search(case.query, k=k)
    except Exception as exc:  # noqa: BLE001 - recorded as this case's result; the run goes on
        row.update(
            error=f"{type(exc).__name__}: {exc}",
            passed=False,
            score=0.0,
            failed=["error"],
            retrieved=[],
            grounded=None,
            rank=None,
            latency_ms=None,
            scores={},
        )
        # An error is a miss on an answerable case and a wrong answer on an unanswerable one.
        return row, CaseResult(
            id=str(case.id),
            query=case.query,
            relevant_ids=relevant,
            retrieved_ids=[],
            scores=[],
            grounded=not relevant,
            rank=None,
            latency_ms=0.0,
        )
    ids = got.ids
    rank = next((i + 1 for i, rid in enumerate(ids) if rid in set(relevant)), None)
    result = CaseResult(
        id=str(case.id),
        query=case.query,
        relevant_ids=relevant,
        retrieved_ids=ids,
        scores=[p.score for p in got.passages],
        grounded=got.grounded,
        rank=rank,
        latency_ms=got.latency_ms,
    )
    if relevant:
        scores = {
            "hit": 1.0 if rank else 0.0,
            "rr": 1.0 / rank if rank else 0.0,
            "recall": len(set(ids[:k]) & set(relevant)) / len(set(relevant)),
            "ndcg": round(ndcg(ids, set(relevant), k), 4),
            "answered": 1.0 if got.grounded else 0.0,
        }
        passed, failed = (
            bool(rank) and got.grounded,
            [] if rank and got.grounded else (["hit"] if not rank else ["abstained"]),
        )
    else:
        scores = {"abstained": 0.0 if got.grounded else 1.0}
        passed, failed = not got.grounded, [] if not got.grounded else ["answered an unanswerable query"]
    row.update(
        retrieved=[
            {
                "id": p.id,
                "title": p.title,
                "score": p.score,
                "text": p.text[:400],
                "relevant": p.id in relevant,
            }
            for p in got.passages
        ],
        grounded=got.grounded,
        rank=rank,
        latency_ms=round(got.latency_ms, 2),
        scores={name: {"value": round(v, 4), "passed": None, "detail": ""} for name, v in scores.items()},
        passed=passed,
        failed=failed,
        score=round(sum(scores.values()) / len(scores), 4),
        expected_titles={i: entries[i].title for i in relevant if i in entries},
    )
    return row, result
