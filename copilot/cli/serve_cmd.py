"""``copilot serve``: the web app at ``/``, the HTTP API under ``/api/v1`` and the webhooks, on one port."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from typing import Any

from copilot.cli.args import settings_from
from copilot.cli.ui_cmd import greet_first_admin, leave_if_loading
from copilot.errors import UserError
from copilot.pipeline import build_pipeline


def register(commands: Any, groups: dict[str, Any]) -> None:
    p = commands.add_parser("serve", help="serve the web app, the HTTP API (/api/v1) and the webhooks on one port")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--kb", help="knowledge-base folder (default: settings kb_dir)")
    p.add_argument("--no-ingest", action="store_true", help="don't re-index the knowledge base at start")
    p.set_defaults(func=run_serve)


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket, or a UserError that says why not (so a busy port is a clear message)."""
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {port}")
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from copilot.api.server import build_server
    from copilot.ui.warmup import Warmup

    sock = listen(args.host, args.port)
    settings = settings_from(args)
    pipeline = build_pipeline(settings)
    connectors = pipeline.connectors  # a half-configured connector stops the start here, saying what is missing
    stop_polling = threading.Event()
    url = f"http://{args.host}:{args.port}"
    greet_first_admin(pipeline, url)
    warmup = Warmup(pipeline, ingest=not args.no_ingest)
    app = build_server(pipeline, warmup=warmup)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5))

    def when_up() -> None:
        # The index, the triager and the chat model load once the server answers (their imports would slow
        # its start on a small machine); requests that need them wait a little, then get 503.
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            warmup.start()
            if "email" in connectors:  # mail is fetched, not sent to us: poll the mailbox in the background
                from copilot.cli.connectors_cmd import poll_forever

                threading.Thread(target=poll_forever, args=(pipeline.intake, settings.email_poll_s),
                                 kwargs={"stop": stop_polling}, name="copilot-mailbox", daemon=True).start()
            print(f"copilot on {url}: the web app at /, the API at /api/v1 (docs at /api/v1/docs), webhooks at "
                  "/webhooks/<platform> (Ctrl+C to stop); loading the models in the background",
                  file=sys.stderr, flush=True)

    threading.Thread(target=when_up, name="copilot-serve-up", daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn stopped cleanly and re-raised Ctrl+C: the normal way to stop a server, as for `copilot ui`
    finally:
        stop_polling.set()
    leave_if_loading(warmup)
    return 0
