"""``copilot queue ...``, ``copilot publish``, ``copilot users ...`` (with API tokens) and ``copilot bench queue``.

Every change names its actor with ``--by NAME``. While no user exists anyone may act (single-user mode);
once one exists, NAME must be a user whose role allows the action (see ``copilot.queue.users``).
``--version`` is the version you reviewed; without it the current version is read in the same command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from copilot.actions import Actions
from copilot.cli import emit
from copilot.cli.progress import progress_bar
from copilot.config import load_settings
from copilot.errors import NotFoundError, UserError
from copilot.index import IngestReport
from copilot.queue.records import CASE_STATUSES, ITEM_KINDS, ROLES, AuditEvent, ReviewItem
from copilot.queue.store import ReviewQueue, open_queue, requires_individual_decision

DEFAULT_LIST = "pending,escalated"


def register(commands: Any, groups: dict[str, Any]) -> None:
    """Add the queue, publish, users and ``bench queue`` commands."""
    queue = commands.add_parser("queue", help="the review queue: list, show, approve, edit, reject, reopen, assign")
    actions = queue.add_subparsers(dest="queue_command", metavar="ACTION", parser_class=type(queue))
    actions.required = True

    p = actions.add_parser("list", help="items by urgency (escalated first)")
    p.add_argument("--status", default=DEFAULT_LIST, help=f"comma-separated statuses or 'all' (default {DEFAULT_LIST})")
    p.add_argument("--kind", choices=ITEM_KINDS)
    p.add_argument("--limit", type=int, default=100)
    _json(p).set_defaults(func=_list)

    p = actions.add_parser("show", help="one item with its audit trail")
    p.add_argument("id", type=int)
    _json(p).set_defaults(func=_show)

    p = actions.add_parser("approve", help="approve an item for posting, optionally with a final edit")
    _change(p)
    _text(p, required=False)
    p.set_defaults(func=_approve)

    p = actions.add_parser("edit", help="change a pending draft's text")
    _change(p)
    _text(p, required=True)
    p.set_defaults(func=_edit)

    p = actions.add_parser("reject", help="reject a draft, with a reason")
    _change(p)
    p.add_argument("--reason", required=True)
    p.set_defaults(func=_reject)

    p = actions.add_parser("reopen", help="bring a rejected draft back to pending")
    _change(p)
    p.set_defaults(func=_reopen)

    p = actions.add_parser("assign", help="give an item and its case an owner")
    p.add_argument("id", type=int)
    p.add_argument("assignee")
    p.add_argument("--by", required=True, help="who does it")
    _json(p).set_defaults(func=_assign)

    p = actions.add_parser("cases", help="cases: inbound messages with owner and status")
    p.add_argument("--status", choices=CASE_STATUSES)
    p.add_argument("--limit", type=int, default=100)
    _json(p).set_defaults(func=_cases)

    p = commands.add_parser("publish", help="post every approved, unposted message (and retry failed ones)")
    p.add_argument("--by", required=True, help="who publishes (a reviewer or admin once users exist)")
    p.add_argument("--recover-after", type=float, default=None, metavar="SECONDS",
                   help="take over claims older than this (default: the publish_lease_s setting)")
    _json(p).set_defaults(func=_publish)

    users = commands.add_parser("users", help="users and roles (agent, reviewer, admin)")
    user_actions = users.add_subparsers(dest="users_command", metavar="ACTION", parser_class=type(users))
    user_actions.required = True
    p = user_actions.add_parser("add", help="add a user (the first must be an admin)")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--password-stdin", action="store_true", help="read a login password from standard input")
    p.add_argument("--by", help="the admin adding the user (not needed for the first user)")
    _json(p).set_defaults(func=_users_add)
    p = user_actions.add_parser("list", help="every user and role")
    _json(p).set_defaults(func=_users_list)
    p = user_actions.add_parser("passwd", help="set a login password (your own, or anyone's as an admin)")
    p.add_argument("name")
    p.add_argument("--by", help="who does it (default: NAME itself; an admin for someone else)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=_users_passwd)
    p = user_actions.add_parser("token", help="make an HTTP API token for a user (printed once, never again)")
    p.add_argument("name")
    p.add_argument("--by", help="who makes it (default: NAME itself; an admin for someone else)")
    p.add_argument("--label", help="what the token is for, e.g. the script or host using it")
    _json(p).set_defaults(func=_users_token)
    p = user_actions.add_parser("tokens", help="every HTTP API token (without the secrets)")
    p.add_argument("--user", help="only this user's tokens")
    _json(p).set_defaults(func=_users_tokens)
    p = user_actions.add_parser("revoke-token", help="revoke an HTTP API token at once")
    p.add_argument("id", type=int)
    p.add_argument("--by", help="who revokes it (default: the token's owner; an admin for anyone's)")
    _json(p).set_defaults(func=_users_revoke_token)

    p = groups["bench"].add_parser("queue", help="queue throughput (approve+publish/s) on SQLite and PostgreSQL")
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    p.add_argument("--pg-url", help="a PostgreSQL URL (default: database_url if it is PostgreSQL); "
                                    "the benchmark works in a temporary schema")
    p.add_argument("--workers", default="1,8,32", help="comma-separated worker process counts")
    p.add_argument("--items", type=int, default=320)
    _json(p).set_defaults(func=_bench)


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _change(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", type=int)
    parser.add_argument("--by", required=True, help="who does it")
    parser.add_argument("--version", type=int, help="the version you reviewed (default: the current one)")
    _json(parser)


def _text(parser: argparse.ArgumentParser, *, required: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--text", help="the new text")
    group.add_argument("--text-file", type=Path, help="read the new text from a file ('-' for standard input)")


def _read_text(args: argparse.Namespace) -> str | None:
    if args.text is not None:
        return str(args.text)
    if args.text_file is None:
        return None
    if str(args.text_file) == "-":
        return sys.stdin.read()
    try:
        return args.text_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {args.text_file}: {exc.strerror}") from exc


def _with_queue(action: Callable[[ReviewQueue], Any]) -> Any:
    with open_queue(load_settings()) as queue:
        return action(queue)


def _with_actions(args: argparse.Namespace, action: Callable[[Actions, ReviewQueue], Any]) -> Any:
    """Run one action on the configured queue; an approved FAQ proposal is re-indexed with a progress bar."""
    settings = load_settings()
    with open_queue(settings) as queue:

        def reindex() -> IngestReport:
            from copilot.pipeline import build_pipeline  # the embedding model loads only for a written entry

            update, close = progress_bar("re-indexing", enabled=not getattr(args, "json", False))
            try:
                return build_pipeline(settings, queue=queue).ingest(progress=update)
            finally:
                close()

        return action(Actions(settings, queue, reindex=reindex), queue)


def _version(queue: ReviewQueue, args: argparse.Namespace) -> int:
    return int(args.version) if args.version is not None else queue.get(args.id).version


# Text output ------------------------------------------------------------------------------------------


def _ago(when: datetime | None) -> str:
    if when is None:
        return "-"
    seconds = max(0.0, (datetime.now(UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _line(item: ReviewItem) -> str:
    preview = " ".join(item.text.split())
    preview = preview[:60] + ("..." if len(preview) > 60 else "") if preview else "(no text yet: write the reply)"
    return (
        f"{item.id:>5}  {item.status:<9} {item.kind:<12} P{item.priority}  {item.channel:<9} "
        f"{(item.author or '-')[:16]:<16} {(item.assignee or '-')[:12]:<12} {_ago(item.received_at):>4}  "
        f"v{item.version}  {preview}"
    )


def _crisis_line(item: ReviewItem) -> str:
    """The crisis screen's verdict on an item that a person must decide on its own, else ""."""
    if not requires_individual_decision(item):
        return ""
    level = "possible crisis" if item.crisis_level == "possible" else "CRISIS"
    span = " ".join((item.crisis_span or "").split())
    return (f"{level}: {item.crisis_reason or 'unspecified'}" + (f' ("{span}")' if span else "")
            + "; decide it on its own, never in a batch")


def _items_text(items: list[ReviewItem]) -> str:
    if not items:
        return "no items"
    head = f"{'id':>5}  {'status':<9} {'kind':<12} prio {'channel':<9} {'author':<16} {'assignee':<12} wait  ver"
    lines = [head]
    for item in items:
        lines.append(_line(item))
        if crisis := _crisis_line(item):
            lines.append(f"{'':>7}{crisis}")
    return "\n".join(lines)


def _item_text(item: ReviewItem, events: list[AuditEvent] | None = None) -> str:
    lines = [
        f"item {item.id} ({item.kind}) {item.status}, version {item.version}, priority {item.priority}",
        (f"channel {item.channel}, author {item.author or '-'}, assignee {item.assignee or '-'}, "
         f"case {item.case_id or '-'}"),
        _crisis_line(item),
        f"crisis screen: {item.crisis_note}" if item.crisis_note else "",
        f"inbound: {item.inbound_text}" if item.inbound_text else "",
        f"text: {item.text}",
    ]
    if item.text != item.original_text:
        lines.append(f"drafted as: {item.original_text}")
    if item.edit_distance is not None:
        lines.append(f"edit distance from the draft: {item.edit_distance}")
    if item.reject_reason:
        lines.append(f"rejected: {item.reject_reason}")
    if item.error:
        lines.append(f"last error: {item.error}")
    for event in events or []:
        change = f"{event.from_status or '-'} -> {event.to_status}" if event.from_status != event.to_status else ""
        extra = ", ".join(f"{k}={v}" for k, v in event.detail.items())
        lines.append(f"  {event.at:%Y-%m-%d %H:%M:%S} {event.action:<8} by {event.actor:<12} {change} {extra}".rstrip())
    return "\n".join(line for line in lines if line)


# Handlers ---------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    items = _with_queue(lambda q: q.list_items(status=args.status, kind=args.kind, limit=args.limit))
    emit([_item_dict(item) for item in items] if args.json else items, args.json, _items_text)
    return 0


def _show(args: argparse.Namespace) -> int:
    item, events = _with_queue(lambda q: (q.get(args.id), q.audit(args.id)))
    if args.json:
        emit({**_item_dict(item), "audit": [e.to_dict() for e in events]}, True)
    else:
        print(_item_text(item, events))
    return 0


def _item_dict(item: ReviewItem) -> dict[str, Any]:
    return {**item.to_dict(), "requires_individual_decision": requires_individual_decision(item)}


def _done(args: argparse.Namespace, item: ReviewItem, verb: str) -> int:
    emit(item.to_dict() if args.json else item, args.json,
         lambda i: f"item {i.id} {verb}: now {i.status}, version {i.version}")
    return 0


def _approve(args: argparse.Namespace) -> int:
    text = _read_text(args)
    item = _with_actions(args, lambda a, q: a.approve(args.id, by=args.by, version=_version(q, args), text=text))
    verb = "approved and written into the knowledge base" if item.kind == "faq_proposal" else "approved"
    return _done(args, item, verb)


def _edit(args: argparse.Namespace) -> int:
    text = _read_text(args) or ""
    item = _with_actions(args, lambda a, q: a.edit(args.id, text, by=args.by, version=_version(q, args)))
    return _done(args, item, "edited")


def _reject(args: argparse.Namespace) -> int:
    item = _with_actions(args, lambda a, q: a.reject(args.id, by=args.by, version=_version(q, args),
                                                     reason=args.reason))
    return _done(args, item, "rejected")


def _reopen(args: argparse.Namespace) -> int:
    item = _with_actions(args, lambda a, q: a.reopen(args.id, by=args.by, version=_version(q, args)))
    return _done(args, item, "reopened")


def _assign(args: argparse.Namespace) -> int:
    item = _with_actions(args, lambda a, q: a.assign(args.id, args.assignee, by=args.by))
    return _done(args, item, f"assigned to {args.assignee}")


def _cases(args: argparse.Namespace) -> int:
    cases = _with_queue(lambda q: q.list_cases(status=args.status, limit=args.limit))

    def text(found: list[Any]) -> str:
        if not found:
            return "no cases"
        return "\n".join(
            f"{c.id:>5}  {c.status:<8} P{c.priority}  {c.channel:<9} {(c.author or '-')[:16]:<16} "
            f"owner {(c.owner or '-')[:12]:<12} {_ago(c.received_at):>4}  {' '.join(c.text.split())[:60]}"
            for c in found
        )

    emit([c.to_dict() for c in cases] if args.json else cases, args.json, text)
    return 0


def _publish(args: argparse.Namespace) -> int:
    report = _with_actions(args, lambda a, q: a.publish(by=args.by, lease_s=args.recover_after))
    emit(report.to_dict(), args.json, lambda r: (
        f"posted {len(r['posted'])}, failed {len(r['failed'])}, already posted {len(r['duplicates'])}, "
        f"left to another publisher {len(r['skipped'])}"
        + "".join(f"\n  item {f['id']} failed: {f['error']}" for f in r["failed"])
    ))
    return 1 if report.failed else 0


def _users_add(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    user = _with_queue(lambda q: q.add_user(args.name, args.role, password=password, by=args.by))
    emit(user.to_dict() if args.json else user, args.json, lambda u: f"added {u.name} ({u.role})")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    found = _with_queue(lambda q: q.list_users())
    emit([u.to_dict() for u in found] if args.json else found, args.json, lambda us: "\n".join(
        f"{u.name:<20} {u.role:<9} {'password' if u.has_password else 'no password'}" for u in us
    ) or "no users (single-user mode: anyone may act)")
    return 0


def _users_passwd(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass(f"new password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise UserError("the passwords differ; nothing was changed")
    by = args.by or args.name
    _with_queue(lambda q: q.set_password(args.name, password, by=by))
    _forget_first_run_password(args.name)
    print(f"password of {args.name} changed")
    return 0


def _users_token(args: argparse.Namespace) -> int:
    found, token = _with_queue(lambda q: q.create_token(args.name, by=args.by, label=args.label))
    if args.json:
        emit({**found.to_dict(), "token": token}, True)
    else:
        print(token)
        print(f"API token {found.id} of {found.user} ({found.role}): shown only now, keep it secret; send it as "
              f"'Authorization: Bearer <token>'", file=sys.stderr)
    return 0


def _users_tokens(args: argparse.Namespace) -> int:
    found = _with_queue(lambda q: q.list_tokens(args.user))
    emit([t.to_dict() for t in found] if args.json else found, args.json, lambda ts: "\n".join(
        f"{t.id:>5}  {t.user:<20} {t.role:<9} {'active' if t.active else 'revoked':<8} "
        f"used {_ago(t.last_used_at):>4}  {t.label or ''}".rstrip() for t in ts
    ) or "no API tokens")
    return 0


def _users_revoke_token(args: argparse.Namespace) -> int:
    def revoke(q: ReviewQueue) -> Any:
        by = args.by
        if by is None:
            owner = next((t.user for t in q.list_tokens() if t.id == args.id), None)
            if owner is None:
                raise NotFoundError(f"no API token {args.id}")
            by = owner
        return q.revoke_token(args.id, by=by)

    found = _with_queue(revoke)
    emit(found.to_dict() if args.json else found, args.json,
         lambda t: f"API token {t.id} of {t.user} revoked")
    return 0


def _forget_first_run_password(name: str) -> None:
    """Once the first-run admin's password is changed, the file that kept it is stale: remove it."""
    from copilot.ui.auth import forget_initial_password

    forget_initial_password(load_settings(), name)


def _bench(args: argparse.Namespace) -> int:
    from copilot.queue.bench import format_table, run_queue_bench

    settings = load_settings()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    try:
        workers = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError as exc:
        raise UserError(f"--workers takes comma-separated numbers, not {args.workers!r}") from exc
    pg_url = args.pg_url
    if pg_url is None and settings.database_url and settings.database_url.startswith("postgresql"):
        pg_url = settings.database_url
    if "postgres" in backends and not pg_url:
        raise UserError("the postgres benchmark needs --pg-url URL (start one with scripts/postgres.sh)")
    rows = run_queue_bench(backends, pg_url=pg_url, workers=workers, items=args.items)
    emit([r.to_dict() for r in rows] if args.json else rows, args.json, format_table)
    bad = [r for r in rows if r.lost or r.duplicated]
    return 1 if bad else 0
