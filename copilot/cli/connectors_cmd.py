"""``copilot connectors status`` and ``copilot connectors poll``: the platforms the copilot is connected to.

Chatwoot and Discourse call the copilot (webhooks to ``copilot serve``); a mailbox is polled, here or by
``copilot serve`` itself. See docs/connectors/.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Mapping
from typing import Any

from copilot.cli import emit
from copilot.cli.args import add_json, pipeline_from
from copilot.connectors.base import Connector
from copilot.connectors.registry import CONNECTORS
from copilot.errors import UserError
from copilot.intake import Intake, IntakeReport, Mailbox

log = logging.getLogger(__name__)


def register(commands: Any, groups: dict[str, Any]) -> None:
    """Add ``connectors status`` and ``connectors poll``."""
    parser = commands.add_parser("connectors", help="the platforms the copilot is connected to (Chatwoot, "
                                                    "Discourse, email)")
    actions = parser.add_subparsers(dest="connectors_command", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    p = actions.add_parser("status", help="which connectors are configured")
    add_json(p)
    p.set_defaults(func=_status)
    p = actions.add_parser("poll", help="take the mailbox's new mail into the queue (once, or every N seconds)")
    p.add_argument("--every", type=float, help="keep polling, every this many seconds (Ctrl-C stops)")
    add_json(p)
    p.set_defaults(func=_poll)


def _status(args: argparse.Namespace) -> int:
    pipeline = pipeline_from(args)
    configured = pipeline.connectors  # builds each: a half-done configuration fails here, saying what is missing
    data = {name: {"configured": name in configured,
                   "receives": "polling (copilot connectors poll, or copilot serve)" if name == "email"
                   else f"webhooks at /webhooks/{name} (copilot serve)"} for name in CONNECTORS}
    emit(data, args.json, lambda d: "\n".join(
        f"{name:<10} {'on ' if v['configured'] else 'off'}  {v['receives'] if v['configured'] else ''}".rstrip()
        for name, v in d.items()))
    return 0


def mailbox_of(connectors: Mapping[str, Connector]) -> Mailbox:
    """The configured mailbox, or an error saying how to configure one."""
    found = connectors.get("email")
    if not isinstance(found, Mailbox):
        raise UserError("no mailbox is configured: set COPILOT_IMAP_HOST, COPILOT_IMAP_USER, COPILOT_IMAP_PASSWORD, "
                        "COPILOT_SMTP_HOST and COPILOT_EMAIL_ADDRESS (see docs/connectors/email.md)")
    return found


def poll_forever(intake: Intake, every: float, *, stop: threading.Event | None = None) -> None:
    """Poll the mailbox every ``every`` seconds until ``stop`` is set (never, without one); errors are logged
    and the next round tries again, so a mail server that is down for a while loses nothing."""
    mailbox = mailbox_of(intake.connectors)
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            report = intake.poll(mailbox)
            if report.items or report.cases:
                log.info("mailbox: %s", report.to_dict())
        except Exception:  # a poller that dies silently is worse than a logged round
            log.exception("mailbox poll failed; trying again in %.0f s", every)
        stop.wait(every)


def _poll(args: argparse.Namespace) -> int:
    if args.every is not None and args.every < 5:
        raise UserError("--every must be at least 5 seconds")
    pipeline = pipeline_from(args)
    mailbox = mailbox_of(pipeline.connectors)  # before the drafter loads its model
    if args.every:
        poll_forever(pipeline.intake, args.every)
        return 0
    report: IntakeReport = pipeline.intake.poll(mailbox)
    emit(report.to_dict(), args.json, lambda r: (
        f"{len(r['items'])} draft(s) queued, {len(r['cases'])} case(s), {r['duplicates']} already taken in"
        + "".join(f"\n  note not posted: {e}" for e in r["note_errors"])))
    return 0
