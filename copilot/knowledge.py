"""Knowledge base: load and validate Markdown entries and FAQ tables, and cut entries into chunks."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from copilot.errors import KnowledgeError, UserError
from copilot.types import ENTRY_KINDS, Chunk, Entry

TABLE_SUFFIXES = (".csv", ".jsonl", ".json")
SKIPPED_FILES = {"events.yaml", "events.yml"}
CHUNK_CHARS = 900
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class FrontMatter(BaseModel):
    """The YAML front matter of a Markdown entry."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str = Field(min_length=1)
    kind: str
    official: bool = True
    tags: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)
    updated: dt.date | None = None
    url: str | None = None

    @field_validator("id")
    @classmethod
    def _id_ok(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError("must be letters, digits, '.', '_', ':' or '-' (no spaces), at most 128 characters")
        return value

    @field_validator("kind")
    @classmethod
    def _kind_ok(cls, value: str) -> str:
        if value not in ENTRY_KINDS:
            raise ValueError(f"must be one of {', '.join(ENTRY_KINDS)}")
        return value

    @field_validator("tags", "products", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def _key_line(front: str, key: str, first_line: int) -> int:
    """The file line where a front-matter key is written (or the start of the front matter)."""
    for offset, line in enumerate(front.splitlines()):
        if re.match(rf"^{re.escape(str(key))}\s*:", line):
            return first_line + offset
    return first_line


def _pydantic_reason(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "entry"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = f"unknown key (allowed: {', '.join(FrontMatter.model_fields)})"
    elif err["type"] == "missing":
        message = "is required"
    return field, f"{field}: {message}"


def load_markdown(path: Path, root: Path) -> Entry:
    """One Markdown entry with YAML front matter."""
    rel = _rel(path, root)
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise KnowledgeError(rel, None, f"not UTF-8 text ({exc.reason})") from exc
    lines = raw.splitlines()
    if not lines or lines[0].strip() != "---":
        raise KnowledgeError(rel, 1, "missing front matter: the file must start with a '---' line")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise KnowledgeError(rel, 1, "front matter is not closed by a '---' line") from None
    front = "\n".join(lines[1:end])
    try:
        data = yaml.safe_load(front) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise KnowledgeError(rel, line, f"invalid YAML in front matter: {problem}") from exc
    if not isinstance(data, dict):
        raise KnowledgeError(rel, 2, "front matter must be a mapping of keys to values")
    try:
        meta = FrontMatter.model_validate(data)
    except ValidationError as exc:
        field, reason = _pydantic_reason(exc)
        line = _key_line(front, field.split(".")[0], 2) if field in data or "." in field else 2
        raise KnowledgeError(rel, line, reason) from exc
    body = "\n".join(lines[end + 1 :]).strip()
    if not body:
        raise KnowledgeError(rel, end + 2, "the entry has no body (question/problem and answer/fix)")
    return Entry(
        id=meta.id, title=meta.title.strip(), kind=meta.kind, body=body, official=meta.official,
        tags=tuple(meta.tags), products=tuple(meta.products),
        updated=meta.updated.isoformat() if meta.updated else None, url=meta.url, source=rel, line=1,
    )


def _split_list(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in re.split(r"[;,|]", str(value)) if part.strip())


def stable_id(question: str) -> str:
    """A stable id from an entry's question (so editing the answer keeps the id)."""
    norm = " ".join(question.lower().split())
    return "faq-" + hashlib.sha1(norm.encode("utf-8")).hexdigest()[:10]


def _row_entry(row: dict[str, Any], rel: str, line: int) -> Entry:
    if not isinstance(row, dict):
        raise KnowledgeError(rel, line, "each row must be an object with 'question' and 'answer'")
    cols = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    question = str(cols.get("question") or "").strip()
    answer = str(cols.get("answer") or "").strip()
    if not question:
        raise KnowledgeError(rel, line, "missing 'question'")
    if not answer:
        raise KnowledgeError(rel, line, "missing 'answer'")
    raw_id = cols.get("id")
    entry_id = str(raw_id).strip() if raw_id not in (None, "") else stable_id(question)
    if not _ID_RE.match(entry_id):
        raise KnowledgeError(rel, line, f"id {entry_id!r} must be letters, digits, '.', '_', ':' or '-'")
    category = str(cols.get("category") or "").strip()
    tags = _split_list(cols.get("tags"))
    if category and category not in tags:
        tags = (category, *tags)
    kind = str(cols.get("kind") or "faq").strip().lower()
    if kind not in ENTRY_KINDS:
        raise KnowledgeError(rel, line, f"kind {kind!r} must be one of {', '.join(ENTRY_KINDS)}")
    return Entry(
        id=entry_id, title=question, kind=kind, body=answer, official=True, tags=tags,
        products=_split_list(cols.get("products")), url=(str(cols.get("url")).strip() or None)
        if cols.get("url") else None, question=question, answer=answer, source=rel, line=line,
    )


def load_table(path: Path, root: Path) -> list[Entry]:
    """FAQ rows from a CSV, JSONL or JSON table."""
    rel = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KnowledgeError(rel, None, f"not UTF-8 text ({exc.reason})") from exc
    entries: list[Entry] = []
    if path.suffix == ".csv":
        reader = csv.DictReader(text.splitlines(keepends=True))
        header = {h.strip().lower() for h in (reader.fieldnames or [])}
        missing = {"question", "answer"} - header
        if missing:
            raise KnowledgeError(rel, 1, f"missing column(s) {', '.join(sorted(missing))} in the header")
        line = 1
        for row in reader:
            entries.append(_row_entry(row, rel, line + 1))
            line = reader.line_num
    elif path.suffix == ".jsonl":
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise KnowledgeError(rel, number, f"invalid JSON: {exc.msg}") from exc
            entries.append(_row_entry(row, rel, number))
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KnowledgeError(rel, exc.lineno, f"invalid JSON: {exc.msg}") from exc
        if isinstance(rows, dict) and isinstance(rows.get("entries"), list):
            rows = rows["entries"]
        if not isinstance(rows, list):
            raise KnowledgeError(rel, 1, "a JSON table must be a list of {question, answer} objects")
        locations = _json_row_lines(text, len(rows))
        for index, row in enumerate(rows):
            entries.append(_row_entry(row, rel, locations[index]))
    if not entries:
        raise KnowledgeError(rel, 1, "the table has no rows")
    return entries


def _json_row_lines(text: str, count: int) -> list[int]:
    """Best-effort line numbers of the top-level objects of a JSON list."""
    lines: list[int] = []
    depth = 0
    in_string = escaped = False
    line = 1
    for char in text:
        if char == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            if depth == 1 and char == "{":
                lines.append(line)
            depth += 1
        elif char in "]}":
            depth -= 1
    lines += [1] * (count - len(lines))
    return lines


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent)) if root.is_dir() else str(path)
    except ValueError:
        return str(path)


def iter_files(root: Path) -> Iterator[Path]:
    """Knowledge files under a folder, in a stable order (hidden files and the calendar skipped)."""
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.name in SKIPPED_FILES:
            continue
        if path.suffix.lower() in (".md", ".markdown", *TABLE_SUFFIXES):
            yield path


@dataclass(frozen=True)
class Duplicate:
    """A table row whose id another entry already had: merged when the answers match, else kept renamed."""

    id: str
    source: str
    line: int
    first_source: str
    first_line: int
    kept_as: str | None  # the row's new id; None when it was merged into the first

    def message(self) -> str:
        where, first = f"{self.source}:{self.line}", f"{self.first_source}:{self.first_line}"
        if self.kept_as is None:
            return f"{where}: merged into {self.id!r} ({first}): same question and answer"
        return f"{where}: id {self.id!r} is already used by {first} with another answer: kept as {self.kept_as!r}"


@dataclass(frozen=True)
class KnowledgeLoad:
    """The entries of a knowledge base, and the duplicate table rows that were merged or renamed."""

    entries: list[Entry]
    duplicates: tuple[Duplicate, ...] = ()

    @property
    def merged(self) -> int:
        return sum(1 for d in self.duplicates if d.kept_as is None)

    @property
    def renamed(self) -> int:
        return len(self.duplicates) - self.merged


def _same_answer(a: Entry, b: Entry) -> bool:
    return " ".join(a.body.casefold().split()) == " ".join(b.body.casefold().split())


def _free_id(base: str, entry: Entry, taken: dict[str, Entry]) -> str:
    """A new id for a duplicate row, stable across re-ingests: derived from its answer, not its position."""
    digest = hashlib.sha1(" ".join(entry.body.split()).encode("utf-8")).hexdigest()
    for width in range(6, len(digest) + 1):
        candidate = f"{base[:120]}.{digest[:width]}"
        if candidate not in taken:
            return candidate
    raise KnowledgeError(entry.source, entry.line, f"cannot find a free id for the duplicate {base!r}")


def read_knowledge(root: Path | str) -> KnowledgeLoad:
    """Every entry of a knowledge base, validated; raises on the first bad file, naming file and line.

    Markdown entries own their ids: two with the same id are an error. FAQ exports often repeat a question;
    a table row whose id is taken is merged when its answer is the same, and otherwise kept under an id
    derived from its answer. Both cases are reported, never silent.
    """
    root = Path(root)
    if root.is_file():
        files, base = [root], root.parent
    elif root.is_dir():
        files, base = list(iter_files(root)), root
    else:
        raise UserError(f"knowledge base {root} not found")
    loaded: list[tuple[bool, list[Entry]]] = [
        (True, [load_markdown(path, base)]) if path.suffix.lower() in (".md", ".markdown")
        else (False, load_table(path, base)) for path in files]
    taken: dict[str, Entry] = {}
    for is_markdown, file_entries in loaded:  # Markdown first: a hand-written entry keeps its id
        for entry in file_entries if is_markdown else ():
            if entry.id in taken:
                first = taken[entry.id]
                raise KnowledgeError(entry.source, entry.line,
                                     f"duplicate id {entry.id!r} (first used in {first.source}:{first.line})")
            taken[entry.id] = entry
    duplicates: list[Duplicate] = []
    entries: list[Entry] = []
    for is_markdown, file_entries in loaded:
        for entry in file_entries:
            if not is_markdown:
                kept = taken.get(entry.id)
                if kept is not None and _same_answer(kept, entry):
                    duplicates.append(Duplicate(entry.id, entry.source, entry.line, kept.source, kept.line, None))
                    continue
                if kept is not None:
                    new_id = _free_id(entry.id, entry, taken)
                    duplicates.append(Duplicate(entry.id, entry.source, entry.line, kept.source, kept.line,
                                                new_id))
                    entry = replace(entry, id=new_id)
                taken[entry.id] = entry
            entries.append(entry)
    if not entries:
        raise UserError(f"knowledge base {root} has no entries (.md, .csv, .jsonl or .json files)")
    return KnowledgeLoad(entries, tuple(duplicates))


def load_knowledge(root: Path | str) -> list[Entry]:
    """Every entry of a knowledge base (see ``read_knowledge``)."""
    return read_knowledge(root).entries


def _pieces(body: str, limit: int) -> list[str]:
    """Split a body on paragraph boundaries into pieces of at most about ``limit`` characters."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
    pieces: list[str] = []
    current = ""
    for para in paragraphs:
        if current and len(current) + len(para) + 2 > limit:
            pieces.append(current)
            current = para
        else:
            current = f"{current}\n\n{para}" if current else para
        while len(current) > limit * 1.5:  # a single huge paragraph: cut on sentence ends
            cut = current.rfind(". ", 0, limit)
            cut = cut + 1 if cut > limit // 3 else limit
            pieces.append(current[:cut].strip())
            current = current[cut:].strip()
    if current:
        pieces.append(current)
    return pieces or [body]


def chunk_entry(entry: Entry, limit: int = CHUNK_CHARS) -> list[Chunk]:
    """Chunks of one entry; every chunk starts with the entry's title or question."""
    head = entry.question or entry.title
    meta: dict[str, Any] = {
        "entry_id": entry.id, "title": entry.title, "kind": entry.kind, "official": entry.official,
        "source": entry.source, "url": entry.url or "", "tags": "|".join(entry.tags),
        "products": "|".join(entry.products), "updated": entry.updated or "",
    }
    for tag in entry.tags:
        meta[f"tag:{tag.lower()}"] = True
    for product in entry.products:
        meta[f"product:{product.lower()}"] = True
    chunks = []
    # The question (or title) alone gets its own vector: a customer's message is phrased like a question,
    # and matching question to question is the strongest dense signal for FAQ-style entries.
    title_hash = hashlib.sha256(json.dumps([head, sorted(meta.items())], default=str).encode()).hexdigest()[:16]
    chunks.append(Chunk(id=f"{entry.id}#t", entry_id=entry.id, text=head, hash=title_hash,
                        metadata={**meta, "role": "title", "part": -1, "hash": title_hash}))
    pieces = _pieces(entry.body, limit)
    for number, piece in enumerate(pieces):
        text = piece if piece.startswith(head) else f"{head}\n{piece}"
        digest = hashlib.sha256(
            json.dumps([text, sorted(meta.items())], ensure_ascii=False, default=str).encode()).hexdigest()[:16]
        chunks.append(Chunk(id=f"{entry.id}#{number}", entry_id=entry.id, text=text, hash=digest,
                            metadata={**meta, "role": "body", "part": number, "parts": len(pieces),
                                      "hash": digest}))
    return chunks


def chunk_entries(entries: Iterable[Entry]) -> list[Chunk]:
    """Chunks of many entries, in order."""
    return [chunk for entry in entries for chunk in chunk_entry(entry)]


def section(entry: Entry, heading: str) -> str | None:
    """The text under a ``## heading`` of an entry's body, or None."""
    pattern = re.compile(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^##\s|\Z)", re.MULTILINE | re.DOTALL | re.IGNORECASE)
    match = pattern.search(entry.body)
    return match.group(1).strip() if match else None
