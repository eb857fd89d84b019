"""``copilot ui``: the web app, on the embedded defaults, with logins checked against the queue's users."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from copilot.cli.args import settings_from
from copilot.errors import UserError
from copilot.pipeline import Pipeline, build_pipeline

if TYPE_CHECKING:
    from copilot.ui.warmup import Warmup


def register(commands: Any, groups: dict[str, Any]) -> None:
    p = commands.add_parser("ui", help="start the web app (Gradio) for agents, reviewers and admins")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--kb", help="knowledge-base folder (default: settings kb_dir)")
    p.add_argument("--no-ingest", action="store_true", help="don't re-index the knowledge base at start")
    p.set_defaults(func=run_ui)


def greet_first_admin(pipeline: Pipeline, url: str) -> None:
    """Create the first-run admin (printing how to log in), or remind that its password is still the first."""
    from copilot.ui.auth import ensure_admin, initial_password_pending, password_file

    first = ensure_admin(pipeline.queue, pipeline.settings)
    if first is not None:
        print(first.message(url), file=sys.stderr, flush=True)
    elif initial_password_pending(pipeline.settings, "admin"):
        print(f"The first-run admin password is still in {password_file(pipeline.settings)}: log in as admin and "
              "change it.", file=sys.stderr, flush=True)


def leave_if_loading(warmup: Warmup) -> None:
    """A model still loading in native code aborts the interpreter's teardown ("terminate called ..."): leave at
    once instead; everything the app wrote is committed already."""
    if warmup.pending():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def run_ui(args: argparse.Namespace) -> int:
    from copilot.ui.app import launch
    from copilot.ui.warmup import Warmup

    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {args.port}")
    settings = settings_from(args)
    pipeline = build_pipeline(settings)
    url = f"http://{args.host}:{args.port}"
    greet_first_admin(pipeline, url)
    warmup = Warmup(pipeline, ingest=not args.no_ingest)
    try:
        demo = launch(pipeline, host=args.host, port=args.port, warmup=warmup, block=False, quiet=True)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    # The page is up; the index, the triager and the chat model load behind it (started only now, so their
    # imports don't slow the server's start on a small machine).
    warmup.start()
    print(f"copilot web app on {url} (Ctrl+C to stop); loading the models in the background", file=sys.stderr,
          flush=True)
    demo.block_thread()
    leave_if_loading(warmup)
    return 0
