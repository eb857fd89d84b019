"""The knowledge-gap log: questions a draft found no grounded answer for, one JSON line each.

The drafter writes it; the Knowledge screen, the FAQ proposals and the insights report read it through
:class:`GapLog`, so every reader sees the same records and the same warnings about lines it could not use.
Texts are redacted before they are written, and again when read (a log written by an older version may
hold raw text).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.pii import redact

GAP_LOG = "knowledge_gaps.jsonl"
_WRITE_LOCK = threading.Lock()


@dataclass(frozen=True)
class GapRecord:
    """One logged question, and where it is in the log (``knowledge_gaps.jsonl:12``)."""

    text: str
    at: dt.datetime | None
    channel: str
    kind: str
    best_id: str | None
    best_score: float | None
    where: str

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "time": self.at.isoformat() if self.at else None, "channel": self.channel,
                "kind": self.kind, "best_id": self.best_id, "best_score": self.best_score, "where": self.where}


class GapLog:
    """The log file in a data directory: append one record, read them all back validated."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / GAP_LOG

    def record(self, text: str, *, channel: str, kind: str, best_id: str | None = None,
               best_score: float | None = None, at: dt.datetime | None = None) -> None:
        """Append a question; ``text`` must already be redacted (the drafter redacts a message once)."""
        line = json.dumps({"time": (at or dt.datetime.now(dt.UTC)).isoformat(), "text": text,
                           "channel": channel, "kind": kind, "best_id": best_id, "best_score": best_score},
                          ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _WRITE_LOCK, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)  # one write per record, so a reader never sees half of one from this process

    def read(self, since: dt.datetime | None = None,
             until: dt.datetime | None = None) -> tuple[list[GapRecord], list[str]]:
        """The records (oldest first) logged in ``[since, until)``, and one warning per malformed line.

        The file is never changed: a bad line stays for a person to look at.
        """
        records: list[GapRecord] = []
        warnings: list[str] = []
        if not self.path.is_file():
            return records, warnings
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{self.path.name}:{number}"
            try:
                record = _parse(json.loads(line), where)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                warnings.append(f"{where}: skipped a malformed line ({type(exc).__name__})")
                continue
            if record is None:
                continue
            if record.at is not None and ((since and record.at < since) or (until and record.at >= until)):
                continue
            records.append(record)
        return records, warnings


def _parse(raw: Any, where: str) -> GapRecord | None:
    if not isinstance(raw, dict):
        raise TypeError("not a JSON object")
    text = " ".join(str(raw["text"]).split())
    if not text:
        return None
    at = dt.datetime.fromisoformat(raw["time"]) if raw.get("time") else None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    score = raw.get("best_score")
    return GapRecord(text=redact(text), at=at, channel=str(raw.get("channel") or ""), kind=str(raw.get("kind") or ""),
                     best_id=str(raw["best_id"]) if raw.get("best_id") else None,
                     best_score=float(score) if score is not None else None, where=where)
