"""The community events calendar (``knowledge/events.yaml``): load, validate, and pick upcoming events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from copilot.config import CHANNELS
from copilot.errors import KnowledgeError

EVENT_KINDS = ("ama", "launch", "challenge", "meetup", "webinar")
CALENDAR_FILES = ("events.yaml", "events.yml")


class _EventRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date
    title: str = Field(min_length=1)
    kind: Literal["ama", "launch", "challenge", "meetup", "webinar"]
    description: str = Field(min_length=1)
    channels: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Event:
    """One dated community event."""

    date: dt.date
    title: str
    kind: str
    description: str
    channels: tuple[str, ...]

    @property
    def when(self) -> str:
        """The date as people write it: ``15 January``."""
        return f"{self.date.day} {self.date.strftime('%B')}"

    def facts(self) -> str:
        """What a post may say about the event."""
        return f"{self.title} on {self.when} ({self.date.isoformat()}): {self.description}"


def calendar_path(kb_dir: Path) -> Path | None:
    """The calendar file of a knowledge base folder, if it has one."""
    for name in CALENDAR_FILES:
        path = Path(kb_dir) / name
        if path.is_file():
            return path
    return None


def load_events(kb_dir: Path) -> list[Event]:
    """Every event in the knowledge base's calendar, by date; none if there is no calendar."""
    path = calendar_path(kb_dir)
    if path is None:
        return []
    try:
        rows = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise KnowledgeError(str(path), mark.line + 1 if mark else None,
                             f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(rows, list):
        raise KnowledgeError(str(path), 1, "the calendar must be a YAML list of events")
    lines = _item_lines(path.read_text(encoding="utf-8"))
    events: list[Event] = []
    for index, row in enumerate(rows):
        line = lines[index] if index < len(lines) else None
        try:
            event = _EventRow.model_validate(row)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "event"
            raise KnowledgeError(str(path), line, f"event {index + 1}: {field}: {err['msg']}") from exc
        unknown = [c for c in event.channels if c not in CHANNELS]
        if unknown:
            raise KnowledgeError(str(path), line, f"event {index + 1}: unknown channel(s) {', '.join(unknown)}")
        events.append(Event(event.date, event.title.strip(), event.kind, event.description.strip(),
                            tuple(event.channels)))
    return sorted(events, key=lambda e: (e.date, e.title))


def upcoming(events: list[Event], today: dt.date, *, days: int = 60, channel: str | None = None,
             kinds: tuple[str, ...] = ()) -> list[Event]:
    """Events from today to ``days`` ahead, on a channel (events without channels fit every channel)."""
    end = today + dt.timedelta(days=days)
    return [e for e in events if today <= e.date <= end and (not channel or not e.channels or channel in e.channels)
            and (not kinds or e.kind in kinds)]


def _item_lines(text: str) -> list[int]:
    return [number for number, line in enumerate(text.splitlines(), start=1) if line.startswith("- ")]
