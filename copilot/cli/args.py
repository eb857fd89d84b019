"""From a sub-command's parsed arguments to settings and a pipeline, and the flags every sub-command shares."""

from __future__ import annotations

import argparse
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
    """The pipeline of ``settings_from(args, **overrides)``."""
    return build_pipeline(settings_from(args, **overrides))


def add_json(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` (print machine-readable JSON) to a sub-command."""
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
