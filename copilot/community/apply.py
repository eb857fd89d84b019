"""Applying approved FAQ proposals: validate the entry, write it into the knowledge base once, re-index."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from copilot.community.inputs import load_entries
from copilot.community.store import CommunityStore
from copilot.errors import KnowledgeError, UserError
from copilot.knowledge import load_knowledge
from copilot.types import Entry

if TYPE_CHECKING:
    from copilot.index import IngestReport
    from copilot.queue.records import ReviewItem
    from copilot.queue.store import ReviewQueue

PLACEHOLDER = "ANSWER NEEDED"
KIND_FOLDERS = {"faq": "faq", "fix": "fixes", "workaround": "workarounds", "policy": "policies",
                "guideline": "guidelines", "announcement": "announcements"}


def front_matter(text: str, *, strict: bool = True) -> dict[str, Any]:
    """The YAML front matter of an entry's text (empty, or an error when ``strict``, if it has none)."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.DOTALL)
    try:
        data = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        if strict:
            raise UserError("the proposal has no valid front matter")
        return {}
    return data


@dataclass(frozen=True)
class Applied:
    """An approved proposal written into the knowledge base."""

    item_id: int
    entry_id: str
    path: str


@dataclass(frozen=True)
class ApplyReport:
    """What ``apply_proposals`` wrote, what it could not, and the re-index."""

    applied: tuple[Applied, ...] = ()
    errors: tuple[tuple[int, str], ...] = ()
    ingest: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"applied": [a.__dict__ for a in self.applied],
                "errors": [{"item_id": i, "error": e} for i, e in self.errors], "ingest": self.ingest}


def validate_entry_text(text: str, kb_dir: Path) -> Entry:
    """The entry a proposal's text defines, checked by the knowledge loader and against existing ids."""
    if PLACEHOLDER in text:
        raise UserError(f"the entry still says {PLACEHOLDER}: write the answer first")
    front = front_matter(text)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "proposal" / f"{front.get('id') or 'entry'}.md"
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        try:
            [entry] = load_knowledge(path.parent)
        except KnowledgeError as exc:
            raise UserError(f"not a valid knowledge entry: line {exc.line or '?'}: {exc.reason}") from exc
    clash = {e.id: e for e in load_entries(kb_dir)}
    if entry.id in clash:
        raise UserError(f"id {entry.id} already exists in {clash[entry.id].source}; choose another id")
    return entry


def apply_proposals(queue: ReviewQueue, kb_dir: Path, *, by: str, item_ids: list[int] | None = None,
                    reindex: Callable[[], IngestReport] | None = None) -> ApplyReport:
    """Write every approved, not yet applied proposal into ``kb_dir``, then call ``reindex`` once if any was."""
    queue.require(by, "publish")
    approved = [item.id for item in queue.approved_items("faq_proposal", among=item_ids)]
    store = CommunityStore.beside(queue)
    done = store.applied_item_ids(approved)
    ids = [item_id for item_id in approved if item_id not in done]
    if item_ids is not None:
        missing = sorted(set(item_ids) - set(ids))
        if missing:
            raise UserError(f"item(s) {', '.join(map(str, missing))} are not approved, unapplied FAQ proposals")
    applied: list[Applied] = []
    errors: list[tuple[int, str]] = []
    for item_id in ids:
        try:
            applied.append(_apply_one(queue.get(item_id), kb_dir, store, by=by))
        except UserError as exc:
            errors.append((item_id, str(exc)))
    report: dict[str, Any] = {}
    if applied and reindex is not None:
        report = reindex().to_dict()
    return ApplyReport(tuple(applied), tuple(errors), report)


def _apply_one(item: ReviewItem, kb_dir: Path, store: CommunityStore, *, by: str) -> Applied:
    try:
        entry = validate_entry_text(item.text, kb_dir)
    except UserError as exc:
        raise UserError(f"proposal {item.id}: {exc}; it was approved, so write the entry by hand from "
                        f"`copilot queue show {item.id}`") from exc
    folder = KIND_FOLDERS.get(entry.kind, "proposed")
    target = kb_dir / folder / f"{entry.id.removeprefix('kb-')}.md"
    if target.exists():
        raise UserError(f"proposal {item.id}: {target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = False
    try:
        with store.applying_proposal(item.id, entry_id=entry.id, path=str(target), by=by):
            hidden = target.with_name(f".{target.name}.tmp")  # the loader skips hidden files
            hidden.write_text(item.text if item.text.endswith("\n") else item.text + "\n", encoding="utf-8")
            os.replace(hidden, target)
            written = True
            load_knowledge(kb_dir)  # the whole base must still load (ids unique, files valid)
    except BaseException:  # nothing recorded (already applied, id taken, a bad file): no file left behind
        if written:
            target.unlink(missing_ok=True)
        raise
    return Applied(item.id, entry.id, str(target))
