"""``copilot bench ...``: benchmarks that print speed and memory numbers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from copilot.config import load_settings
from copilot.errors import UserError


def register(commands: Any, groups: dict[str, Any]) -> None:
    """Add ``bench model``, ``bench retrieval`` and ``bench all``."""
    model = groups["bench"].add_parser(
        "model", help="time to first token, latency, tokens/s, prefix cache and memory of the embedded model"
    )
    model.add_argument("--runs", type=int, default=20, help="completions to time, each with another message")
    model.add_argument("--max-tokens", type=int, default=None, help="new tokens per reply (default: settings)")
    model.add_argument("--raw-pairs", type=int, default=3,
                       help="same-prompt pairs timed through raw llama-cpp-python and through the adapter")
    model.add_argument("--threads", type=int, default=None, help="CPU threads (default: settings, all cores)")
    model.add_argument("--json", action="store_true", help="print machine-readable JSON")
    model.set_defaults(func=run_bench_model)

    retrieval = groups["bench"].add_parser(
        "retrieval", help="ingest throughput vs raw embedding, and query latency at 1k/10k/100k chunks")
    retrieval.add_argument("--entries", type=int, default=1000, help="synthetic entries to ingest (default 1000)")
    retrieval.add_argument("--scales", default="1000,10000,100000", help="index sizes in chunks, comma-separated")
    retrieval.add_argument("--pool", type=int, default=1000,
                           help="distinct entries embedded for real; bigger indexes hold variants of them")
    retrieval.add_argument("--queries", type=int, default=50, help="timed queries per index size")
    retrieval.add_argument("--json", action="store_true", help="print machine-readable JSON")
    retrieval.set_defaults(func=run_bench_retrieval)

    incidents = groups["bench"].add_parser(
        "incidents", help="a simulated outage burst taken in, clustered and queued: time, detection, membership")
    incidents.add_argument("--n", type=int, default=10_000, help="messages in the burst (default 10000)")
    incidents.add_argument("--outage-share", type=float, default=0.6, help="share about the outage (default 0.6)")
    incidents.add_argument("--batch", type=int, default=250, help="messages per intake batch (default 250)")
    incidents.add_argument("--baseline", type=int, default=None,
                           help="ordinary messages in the hour before (default: the burst's own ordinary count)")
    incidents.add_argument("--seed", type=int, default=7, help="the simulation's random seed")
    incidents.add_argument("--json", action="store_true", help="print machine-readable JSON")
    incidents.set_defaults(func=run_bench_incidents)

    every = groups["bench"].add_parser(
        "all", help="every benchmark (retrieval, triage, drafts, model, queue, memory) in one table")
    every.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not numbers to record")
    every.add_argument("--json", action="store_true", help="print machine-readable JSON")
    every.set_defaults(func=run_bench_all)


def run_bench_model(args: argparse.Namespace) -> int:
    from copilot.cli import emit
    from copilot.models.bench import format_model_bench, run_model_bench

    if args.runs < 1:
        raise UserError("--runs must be at least 1")
    if args.raw_pairs < 1:
        raise UserError("--raw-pairs must be at least 1")
    if args.max_tokens is not None and args.max_tokens < 2:
        raise UserError("--max-tokens must be at least 2")
    overrides: dict[str, Any] = {"n_threads": args.threads} if args.threads else {}
    settings = load_settings(**overrides)
    result = run_model_bench(settings, runs=args.runs, max_tokens=args.max_tokens, raw_pairs=args.raw_pairs)
    emit(result, args.json, format_model_bench)
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_bench_retrieval(args: argparse.Namespace) -> int:
    from copilot.cli import emit
    from copilot.evaluation.bench_retrieval import format_retrieval_bench, run_retrieval_bench

    try:
        scales = sorted({int(part) for part in args.scales.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--scales must be whole numbers separated by commas, not {args.scales!r}") from None
    if not scales or min(scales) < 10:
        raise UserError("--scales needs at least one size of 10 chunks or more")
    if args.entries < 1 or args.pool < 1 or args.queries < 1:
        raise UserError("--entries, --pool and --queries must be at least 1")
    result = run_retrieval_bench(load_settings(), n_ingest=args.entries, scales=scales, pool_size=args.pool,
                                 queries=args.queries, log=None if args.json else _log)
    emit(result, args.json, format_retrieval_bench)
    return 0


def run_bench_all(args: argparse.Namespace) -> int:
    from copilot.cli import emit
    from copilot.evaluation.bench_all import format_all, run_all

    result = run_all(load_settings(), quick=args.quick, log=None if args.json else _log)
    emit(result, args.json, format_all)
    return 0


def run_bench_incidents(args: argparse.Namespace) -> int:
    from copilot.cli import emit
    from copilot.incidents.bench import format_incident_bench, run_incident_bench

    if args.n < 100:
        raise UserError("--n must be at least 100")
    if not 0.0 < args.outage_share < 1.0:
        raise UserError("--outage-share must be between 0 and 1")
    if args.batch < 1:
        raise UserError("--batch must be at least 1")
    result = run_incident_bench(load_settings(), n=args.n, outage_share=args.outage_share, batch=args.batch,
                                baseline=args.baseline, seed=args.seed)
    emit(result, args.json, format_incident_bench)
    return 0
