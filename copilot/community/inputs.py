"""What the community commands read: the period a run covers (``--since``), the knowledge base's entries,
and the texts recently drafted in the queue."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from copilot.errors import UserError
from copilot.knowledge import iter_files, load_knowledge
from copilot.types import Entry

_SINCE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def now_utc() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def parse_since(value: str | datetime | timedelta, now: datetime) -> datetime:
    """A period start from ``7d``, ``12h``, ``2w``, ``90m``, an ISO date or datetime, or a timedelta."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, timedelta):
        return now - value
    match = _SINCE.match(value or "")
    if match:
        amount = int(match.group(1))
        if amount <= 0:
            raise UserError(f"--since {value!r} must be a positive period such as 7d")
        return now - timedelta(**{_UNITS[match.group(2).lower()]: amount})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UserError(f"--since {value!r}: use a period like 7d, 24h, 2w or a date like 2026-11-01") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def recent_texts(queue: Any, kind: str, since: datetime, limit: int = 500) -> list[str]:
    """Texts of queue items of one kind drafted since a time, newest first (every status)."""
    return [item.text for item in queue.items_drafted(kind=kind, since=since, newest_first=True, limit=limit)
            if item.text]


def load_entries(kb_dir: Path) -> list[Entry]:
    """The knowledge base's entries; none for a missing or empty folder (a broken file is still an error)."""
    kb_dir = Path(kb_dir)
    if not kb_dir.exists() or (kb_dir.is_dir() and next(iter_files(kb_dir), None) is None):
        return []
    return load_knowledge(kb_dir)
