"""Moves drafts kept in ``pending.jsonl`` (one ``Draft.to_dict()`` a line) into the queue, exactly once.

The file's hash is recorded in the same transaction as its drafts, so a crash between the import and
the rename to ``pending.imported.jsonl`` never imports it twice. A bad line stops the import with its
file and line number; nothing is half-imported.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copilot.errors import UserError

if TYPE_CHECKING:
    from copilot.queue.store import ReviewQueue

IMPORTED_SUFFIX = ".imported.jsonl"


def read_pending(path: Path, raw: bytes) -> list[dict[str, Any]]:
    """The drafts in a pending file's bytes, checked enough to become queue items."""
    rows: list[dict[str, Any]] = []
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: not JSON ({exc.msg}); fix or remove the line") from exc
        problem = _problem(data)
        if problem:
            raise UserError(f"{path}:{number}: {problem}; fix or remove the line")
        rows.append(data)
    return rows


def _problem(data: Any) -> str | None:
    if not isinstance(data, dict):
        return "not a draft object"
    if not isinstance(data.get("text"), str):
        return "the draft has no text"
    if not isinstance(data.get("inbound"), dict) or not isinstance(data["inbound"].get("text"), str):
        return "the draft has no inbound message"
    if not isinstance(data.get("triage"), dict):
        return "the draft has no triage"
    return None


def import_pending_file(queue: ReviewQueue, path: Path) -> int:
    """Import ``path`` into the queue if it exists, then rename it; return how many drafts were added."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0  # nothing kept, or a concurrent open moved it in already
    rows = read_pending(path, raw)
    added = queue.import_drafts(rows, sha256=hashlib.sha256(raw).hexdigest(), source=path.name)
    target = path.with_name(path.name.removesuffix(".jsonl") + IMPORTED_SUFFIX)
    if target.exists():  # an earlier import's file: keep both
        stamp = hashlib.sha256(raw).hexdigest()[:12]
        target = path.with_name(f"{path.name.removesuffix('.jsonl')}.{stamp}{IMPORTED_SUFFIX}")
    try:
        path.rename(target)
    except FileNotFoundError:
        pass  # a concurrent open renamed it first; the recorded hash kept the import single
    return added
