"""``copilot bench ...``: benchmarks that print speed and memory numbers."""

from __future__ import annotations

import argparse
from typing import Any

from copilot.config import load_settings
from copilot.errors import UserError


def register(commands: Any, groups: dict[str, Any]) -> None:
    """Add ``bench model``."""
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
