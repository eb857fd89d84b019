"""The knowledge base's special entries (brand voice, crisis policy) read by the drafters, reloaded when
the files change."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from copilot.errors import UserError
from copilot.knowledge import load_knowledge, section
from copilot.types import Entry

REFRESH_S = 2.0  # how often the files are checked for changes at most


class KnowledgeBook:
    """Entries by id, re-read from disk when a file under the knowledge base changed."""

    def __init__(self, kb_dir: Path) -> None:
        self.kb_dir = Path(kb_dir)
        self._stamp: float | None = None
        self._checked: float | None = None
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        # Checking every file's mtime on each draft is wasted work on a large knowledge base.
        now = time.monotonic()
        if self._checked is not None and now - self._checked < REFRESH_S:
            return
        self._checked = now
        if not self.kb_dir.exists():
            self._entries = {}
            return
        files = [self.kb_dir] if self.kb_dir.is_file() else list(self.kb_dir.rglob("*"))
        stamp = max((f.stat().st_mtime for f in files if f.is_file()), default=0.0)
        if stamp != self._stamp:
            try:
                self._entries = {e.id: e for e in load_knowledge(self.kb_dir)}
            except UserError:
                self._entries = {}
            self._stamp = stamp

    def entry(self, entry_id: str) -> Entry | None:
        with self._lock:
            self._refresh()
            return self._entries.get(entry_id)

    def entries(self, kind: str | None = None) -> list[Entry]:
        """Every entry (``kind``: only those), as the files are now."""
        with self._lock:
            self._refresh()
            return [e for e in self._entries.values() if kind is None or e.kind == kind]

    def section(self, entry_id: str, heading: str) -> str | None:
        entry = self.entry(entry_id)
        return section(entry, heading) if entry else None
