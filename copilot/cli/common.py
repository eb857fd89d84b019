"""Helpers shared by the CLI's sub-command modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from copilot.config import Settings, load_settings
from copilot.pipeline import Pipeline, build_pipeline


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from environment and config file, with the command's own flags on top."""
    kb = getattr(args, "kb", None)
    if kb:
        overrides.setdefault("kb_dir", Path(kb))
    return load_settings(**overrides)


def pipeline_from(args: argparse.Namespace, **overrides: Any) -> Pipeline:
    return build_pipeline(settings_from(args, **overrides))


def progress_bar(desc: str, enabled: bool = True) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm progress callback on stderr, and a function that closes it."""
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if not enabled or total == 0:
            return
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=desc, unit="chunk", file=sys.stderr, leave=False)
        bar["bar"].n = done
        bar["bar"].refresh()

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
