"""Applying approved FAQ proposals: validate the entry, write it into the knowledge base once, re-index."""

from __future__ import annotations

import os
import re
import tempfile
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
    from copilot.pipeline import Pipeline

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


def apply_proposals(pipeline: Pipeline, *, by: str, item_ids: list[int] | None = None,
                    reindex: bool = True) -> ApplyReport:
    """Write every approved, not yet applied proposal into the knowledge base, then re-index once."""
    queue = pipeline.queue
    queue.require(by, "publish")
    approved = [item.id for item in queue.approved_items("faq_proposal", among=item_ids)]
    done = CommunityStore.beside(queue).applied_item_ids(approved)
    ids = [item_id for item_id in approved if item_id not in done]
    if item_ids is not None:
        missing = sorted(set(item_ids) - set(ids))
        if missing:
            raise UserError(f"item(s) {', '.join(map(str, missing))} are not approved, unapplied FAQ proposals")
    applied: list[Applied] = []
    errors: list[tuple[int, str]] = []
    for item_id in ids:
        try:
            applied.append(_apply_one(pipeline, item_id, by=by))
        except UserError as exc:
            errors.append((item_id, str(exc)))
    report: dict[str, Any] = {}
    if applied and reindex:
        report = pipeline.ingest().to_dict()
    return ApplyReport(tuple(applied), tuple(errors), report)


def _apply_one(pipeline: Pipeline, item_id: int, *, by: str) -> Applied:
    item = pipeline.queue.get(item_id)
    kb_dir = pipeline.settings.kb_dir
    try:
        entry = validate_entry_text(item.text, kb_dir)
    except UserError as exc:
        raise UserError(f"proposal {item_id}: {exc}; it was approved, so write the entry by hand from "
                        f"`copilot queue show {item_id}`") from exc
    folder = KIND_FOLDERS.get(entry.kind, "proposed")
    target = kb_dir / folder / f"{entry.id.removeprefix('kb-')}.md"
    if target.exists():
        raise UserError(f"proposal {item_id}: {target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = False
    store = CommunityStore.beside(pipeline.queue)
    try:
        with store.applying_proposal(item_id, entry_id=entry.id, path=str(target), by=by):
            hidden = target.with_name(f".{target.name}.tmp")  # the loader skips hidden files
            hidden.write_text(item.text if item.text.endswith("\n") else item.text + "\n", encoding="utf-8")
            os.replace(hidden, target)
            written = True
            load_knowledge(kb_dir)  # the whole base must still load (ids unique, files valid)
    except BaseException:  # nothing recorded (already applied, id taken, a bad file): no file left behind
        if written:
            target.unlink(missing_ok=True)
        raise
    return Applied(item_id, entry.id, str(target))


def approve_proposal(pipeline: Pipeline, item_id: int, *, by: str, version: int, text: str | None = None,
                     reindex: bool = True) -> ApplyReport:
    """Approve a proposal (optionally with a final edit) and write it into the knowledge base at once.

    The entry is validated before the approval, so an invalid or unanswered proposal stays pending.
    """
    item = pipeline.queue.get(item_id)
    if item.kind != "faq_proposal":
        raise UserError(f"item {item_id} is a {item.kind}, not an FAQ proposal")
    validate_entry_text(text if text is not None else item.text, pipeline.settings.kb_dir)
    pipeline.queue.approve(item_id, by=by, version=version, text=text)
    report = apply_proposals(pipeline, by=by, item_ids=[item_id], reindex=reindex)
    if report.errors:
        raise UserError(report.errors[0][1])
    return report
