"""The ``copilot`` command line: one sub-command module per area, all going through ``build_pipeline``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from copilot.errors import CopilotError, UserError
from copilot.models.runtime import configure_runtime

# Modules that add sub-commands; each has ``register(commands, groups)`` where ``groups`` maps
# "eval" and "bench" to their sub-command sets.
_AREAS = (
    "copilot.cli.kb",
    "copilot.cli.triage_cmd",
    "copilot.cli.draft_cmd",
    "copilot.cli.queue_cmd",
    "copilot.cli.community_cmd",
    "copilot.cli.eval_cmd",
    "copilot.cli.ui_cmd",
    "copilot.cli.serve_cmd",
    "copilot.cli.connectors_cmd",
    "copilot.cli.incidents_cmd",
    "copilot.cli.bench_cmd",
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"copilot: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every area's sub-commands."""
    import importlib

    parser = _Parser(prog="copilot", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    groups = {}
    for group, help_text in (
        ("eval", "evaluate retrieval, triage and drafts on datasets"),
        ("bench", "benchmarks that print speed and memory numbers"),
    ):
        group_parser = commands.add_parser(group, help=help_text)
        groups[group] = group_parser.add_subparsers(dest=f"{group}_command", metavar="NAME", parser_class=_Parser)
        groups[group].required = True
    for name in _AREAS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(commands, groups)
    return parser


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    """Print a result as JSON or as human-readable text."""
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    elif text is not None:
        print(text(data))
    else:
        print(data)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``copilot`` console script."""
    configure_runtime()  # first: some command modules import llama_cpp, which loads OpenMP
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except UserError as exc:
        print(f"copilot: error: {exc}", file=sys.stderr)
        return 1
    except CopilotError as exc:
        print(f"copilot: failed: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("copilot: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
