"""``copilot ingest``, ``copilot search`` and ``copilot eval retrieval``."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from copilot.cli import emit
from copilot.cli.args import add_json, pipeline_from
from copilot.cli.progress import progress_bar
from copilot.errors import UserError
from copilot.retrieve import Filters


def register(commands: Any, groups: dict[str, Any]) -> None:
    p = commands.add_parser("ingest", help="build or update the index from the knowledge base")
    p.add_argument("--kb", help="knowledge-base folder or file (default: settings kb_dir)")
    add_json(p)
    p.set_defaults(func=run_ingest)

    p = commands.add_parser("search", help="ranked passages with ids and scores")
    p.add_argument("query")
    p.add_argument("--kb", help="knowledge-base folder (default: settings kb_dir)")
    p.add_argument("--k", type=int, default=None, help="how many entries (default: settings top_k)")
    p.add_argument("--kind", action="append", default=[], help="only this entry kind (repeatable)")
    p.add_argument("--product", action="append", default=[], help="only entries for this product")
    p.add_argument("--tag", action="append", default=[], help="only entries with this tag")
    p.add_argument("--official-only", action="store_true", help="leave out unofficial workarounds")
    p.add_argument("--mode", choices=("hybrid", "dense", "single", "lexical"), default="hybrid")
    add_json(p)
    p.set_defaults(func=run_search)

    p = groups["eval"].add_parser("retrieval", help="hit@k, recall@k, MRR, nDCG@k, abstention, latency")
    p.add_argument("--kb", required=True, help="knowledge-base folder or table file")
    p.add_argument("--cases", required=True, help="JSONL of {id?, query, relevant_ids}")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--mode", choices=("hybrid", "dense", "single", "lexical"), default="hybrid")
    p.add_argument("--compare", action="store_true", help="also score dense-only, single-vector and lexical-only")
    p.add_argument("--calibrate", action="store_true",
                   help="report the score floor that maximises abstention accuracy on these cases")
    add_json(p)
    p.set_defaults(func=run_eval_retrieval)


def run_ingest(args: argparse.Namespace) -> int:
    pipeline = pipeline_from(args)
    update, close = progress_bar("embedding", enabled=not args.json)
    try:
        report = pipeline.ingest(progress=update)
    finally:
        close()
    emit(report.to_dict(), args.json, lambda r: "\n".join(filter(None, (
        (f"indexed {r['entries']} entries ({r['chunks']} chunks): {r['added']} added, {r['changed']} changed, "
        f"{r['removed']} removed, {r['unchanged']} unchanged in {r['seconds']:.1f}s"),
        report.duplicates_summary()))))
    return 0


def _ensure_index(pipeline: Any) -> None:
    if pipeline.index.count() == 0:
        raise UserError("the index is empty: run `copilot ingest` first")


def run_search(args: argparse.Namespace) -> int:
    if not args.query.strip():
        raise UserError("the query is empty")
    if args.k is not None and args.k < 1:
        raise UserError("--k must be at least 1")
    pipeline = pipeline_from(args)
    _ensure_index(pipeline)
    filters = Filters(kinds=tuple(args.kind), products=tuple(args.product), tags=tuple(args.tag),
                      official_only=args.official_only)
    result = pipeline.retriever.search(args.query, k=args.k, filters=filters, mode=args.mode)
    data = {"query": result.query, "grounded": result.grounded, "score_floor": pipeline.settings.score_floor,
            "latency_ms": round(result.latency_ms, 2), "passages": [p.to_dict() for p in result.passages]}

    def text(d: dict[str, Any]) -> str:
        lines = [] if d["grounded"] else ["(no passage clears the score floor: no grounded answer)"]
        for n, p in enumerate(d["passages"], 1):
            flag = "" if p["official"] else " [unofficial]"
            snippet = " ".join(p["text"].split())[:160]
            lines.append(f"{n}. {p['id']}  score={p['score']:.3f}  {p['kind']}{flag}  {p['title']}\n   {snippet}")
        return "\n".join(lines) or "no results"

    emit(data, args.json, text)
    return 0


def run_eval_retrieval(args: argparse.Namespace) -> int:
    from copilot.evaluation.retrieval import calibrate_floor, evaluate_retrieval, load_retrieval_cases

    if args.k < 1:
        raise UserError("--k must be at least 1")
    kb = Path(args.kb)
    if not kb.exists():
        raise UserError(f"knowledge base {kb} not found")
    cases = load_retrieval_cases(args.cases)
    # Each evaluated knowledge base gets its own collection, so evaluation never touches the team's index.
    tag = hashlib.sha1(str(kb.resolve()).encode()).hexdigest()[:10]
    pipeline = pipeline_from(args, collection=f"eval-{tag}")
    pipeline.ingest(kb)
    summary, results = evaluate_retrieval(pipeline.retriever, cases, k=args.k, mode=args.mode)
    summary["score_floor"] = pipeline.settings.score_floor
    if args.calibrate:
        floor, acc = calibrate_floor(results)
        summary["calibrated_floor"] = floor
        summary["calibrated_abstain_accuracy"] = round(acc, 4)
    if args.compare:
        summary["baselines"] = {
            mode: evaluate_retrieval(pipeline.retriever, cases, k=args.k, mode=mode)[0]
            for mode in ("dense", "single", "lexical") if mode != args.mode
        }

    def text(s: dict[str, Any]) -> str:
        keys = [key for key in s if key not in ("baselines",)]
        lines = [f"{key:28s} {s[key]}" for key in keys]
        for mode, base in s.get("baselines", {}).items():
            lines.append(f"-- {mode}: hit@{args.k}={base.get(f'hit@{args.k}')} mrr={base.get('mrr')}")
        return "\n".join(lines)

    emit(summary, args.json, text)
    return 0
