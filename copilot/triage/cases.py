"""Labelled triage messages from a team's files (JSONL, JSON or CSV), with forgiving column names.

A case file has a text column plus any of ``kind``, ``sentiment``, ``crisis`` and ``private_info``.
Common aliases map onto these (``airline_sentiment`` -> sentiment, ``message`` -> text), so a customer's
labelled history loads as is; the result says which columns were used and which were ignored. Label
values are normalised (``pos`` -> positive, ``feature request`` -> feedback, ``yes`` -> true); a value that
cannot be read is an error naming the file and line.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.errors import UserError
from copilot.types import MESSAGE_KINDS, SENTIMENTS, Inbound

LABEL_FIELDS: tuple[str, ...] = ("kind", "sentiment", "crisis", "private_info")
CRISIS_CATEGORIES: tuple[str, ...] = (
    "self-harm", "overdose", "abuse", "threat", "child at risk", "danger", "death of a member",
)
NO_CRISIS = "none"
GENERIC_CRISIS = "crisis"  # a team file that only says "yes, a crisis"

# field -> accepted column names, canonical first (compared after lower-casing, spaces/dashes -> "_").
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "text": ("text", "message", "message_text", "body", "content", "tweet", "tweet_text", "comment", "post",
             "utterance", "query", "msg", "inbound", "customer_message", "review", "review_text"),
    "id": ("id", "message_id", "tweet_id", "case_id", "ticket_id", "row_id", "_id"),
    "kind": ("kind", "message_kind", "message_type", "kind_label", "type", "triage_kind"),
    "sentiment": ("sentiment", "airline_sentiment", "sentiment_label", "polarity", "tone", "label_sentiment"),
    "crisis": ("crisis", "is_crisis", "crisis_category", "crisis_reason", "crisis_type", "escalate"),
    "private_info": ("private_info", "private", "pii", "needs_private", "needs_dm", "private_channel",
                     "move_to_dm", "confidential"),
    "channel": ("channel", "platform", "source_channel"),
    "author": ("author", "user", "username", "handle", "screen_name", "user_name"),
    "followers": ("followers", "author_followers", "followers_count", "follower_count", "user_followers"),
    "waiting_minutes": ("waiting_minutes", "wait_minutes", "waiting", "age_minutes", "minutes_waiting"),
    "language": ("language", "lang", "language_code", "locale"),
    "group": ("group", "subset", "slice", "case_group"),
}
_GENERIC_LABEL_COLUMNS = ("label", "labels", "class", "target", "category", "y")

_SENTIMENT_VALUES = {
    "negative": "negative", "neg": "negative", "-1": "negative", "very negative": "negative",
    "very_negative": "negative", "bad": "negative",
    "neutral": "neutral", "neu": "neutral", "0": "neutral", "none": "neutral", "mixed": "neutral",
    "positive": "positive", "pos": "positive", "1": "positive", "+1": "positive", "very positive": "positive",
    "very_positive": "positive", "good": "positive",
}
_KIND_VALUES = {
    "complaint": "complaint", "complaints": "complaint", "problem": "complaint", "issue": "complaint",
    "question": "question", "questions": "question", "inquiry": "question", "enquiry": "question",
    "query": "question", "support request": "question", "how to": "question",
    "feedback": "feedback", "feature request": "feedback", "feature": "feedback", "suggestion": "feedback",
    "idea": "feedback", "feedback or feature request": "feedback",
    "praise": "praise", "promoter": "praise", "compliment": "praise", "praise/promoter": "praise",
    "conversation": "conversation", "general": "conversation", "industry": "conversation", "chat": "conversation",
    "general conversation": "conversation", "industry conversation": "conversation", "other": "conversation",
    "industry or general conversation": "conversation", "community": "conversation",
    "crisis": "crisis", "emergency": "crisis",
    "spam": "spam", "abuse": "spam", "spam or abuse": "spam", "spam/abuse": "spam", "junk": "spam",
    "troll": "spam",
}
_CRISIS_VALUES = {
    "self-harm": "self-harm", "self harm": "self-harm", "selfharm": "self-harm", "suicide": "self-harm",
    "suicidal": "self-harm",
    "overdose": "overdose", "poisoning": "overdose", "drug overdose": "overdose",
    "abuse": "abuse", "abuse or violence": "abuse", "abuse/violence": "abuse", "domestic abuse": "abuse",
    "domestic violence": "abuse", "coercion": "abuse", "stalking": "abuse", "sexual abuse": "abuse",
    "threat": "threat", "threats": "threat", "violence": "threat", "threat of violence": "threat",
    "death of a member": "death of a member", "death in the community": "death of a member",
    "death": "death of a member", "bereavement": "death of a member",
    "danger": "danger", "safety": "danger", "health": "danger", "health or safety": "danger",
    "danger to health or safety": "danger", "product safety": "danger", "medical": "danger",
    "medical emergency": "danger", "fire": "danger", "gas": "danger", "electric": "danger",
    "child at risk": "child at risk", "child": "child at risk", "child safety": "child at risk",
    "safeguarding": "child at risk", "child abuse": "child at risk",
}
_TRUE = {"true", "yes", "y", "1", "t", "x"}
_FALSE = {"false", "no", "n", "0", "f", "none", ""}


@dataclass(frozen=True)
class Case:
    """One message with whatever labels its file had (``None``: not labelled)."""

    inbound: Inbound
    line: int
    kind: str | None = None
    sentiment: str | None = None
    crisis: str | None = None  # "none", a crisis category, or "crisis" when only a yes/no was given
    private_info: bool | None = None
    language: str | None = None  # the gold language, when the file says (for per-language scores)
    group: str | None = None  # a slice name for reports ("hyperbole", "urgent", ...)

    @property
    def text(self) -> str:
        return self.inbound.text

    def label(self, name: str) -> Any:
        """The value of one label field (``None`` when unlabelled)."""
        return getattr(self, name)


@dataclass(frozen=True)
class CaseSet:
    """The cases of one file, and how its columns were read."""

    path: str
    cases: tuple[Case, ...]
    columns: dict[str, str]  # field -> the file's column that fed it
    ignored: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def label_fields(self) -> list[str]:
        """The label fields with at least one labelled case."""
        return [f for f in LABEL_FIELDS if any(c.label(f) is not None for c in self.cases)]

    def describe(self) -> dict[str, Any]:
        """A summary for reports: file, size, columns used and ignored."""
        return {
            "path": self.path,
            "n": len(self.cases),
            "columns": dict(self.columns),
            "ignored_columns": list(self.ignored),
            "labels": {f: sum(1 for c in self.cases if c.label(f) is not None) for f in self.label_fields},
            **({"notes": list(self.notes)} if self.notes else {}),
        }


def _norm_column(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _norm_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"[\s_]+", " ", str(value).strip().lower())


def normalise_sentiment(value: Any) -> str:
    """A sentiment label (``negative``, ``neutral``, ``positive``) from a common spelling."""
    key = _norm_value(value)
    if key in _SENTIMENT_VALUES:
        return _SENTIMENT_VALUES[key]
    raise ValueError(f"sentiment {value!r} is not one of {', '.join(SENTIMENTS)}")


def normalise_kind(value: Any) -> str:
    """A message kind (see ``copilot.types.MESSAGE_KINDS``) from a common spelling."""
    key = _norm_value(value)
    if key in _KIND_VALUES:
        return _KIND_VALUES[key]
    raise ValueError(f"kind {value!r} is not one of {', '.join(MESSAGE_KINDS)} (or a common alias)")


def normalise_crisis(value: Any) -> str:
    """``none``, a crisis category, or ``crisis`` (a plain yes) from a yes/no or a category name."""
    key = _norm_value(value)
    if key in _FALSE:
        return NO_CRISIS
    if key in _TRUE:
        return GENERIC_CRISIS
    if key.startswith(("safety:", "danger:")):
        return "danger"
    if key in _CRISIS_VALUES:
        return _CRISIS_VALUES[key]
    raise ValueError(
        f"crisis {value!r} is neither yes/no nor one of {', '.join(CRISIS_CATEGORIES)}"
    )


def normalise_bool(value: Any, name: str) -> bool:
    """A yes/no label."""
    key = _norm_value(value)
    if key in _TRUE:
        return True
    if key in _FALSE - {"none", ""}:
        return False
    raise ValueError(f"{name} {value!r} is not true/false (or yes/no, 1/0)")


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, row)`` pairs from a JSONL, JSON or CSV/TSV file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            with path.open(encoding="utf-8-sig") as handle:
                for line_no, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise UserError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from None
                    if not isinstance(row, dict):
                        raise UserError(f"{path}:{line_no}: expected a JSON object per line")
                    yield line_no, row
        elif suffix == ".json":
            try:
                data = json.loads(path.read_text(encoding="utf-8-sig"))
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
            if not isinstance(data, list):
                raise UserError(f"{path}: expected a JSON list of objects")
            for i, row in enumerate(data, 1):
                if not isinstance(row, dict):
                    raise UserError(f"{path}: item {i} is not a JSON object")
                yield i, row
        elif suffix in (".csv", ".tsv"):
            with path.open(encoding="utf-8-sig", newline="") as handle:
                reader = csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ",")
                header: list[str] | None = None
                start = 1
                try:
                    for record in reader:
                        if header is None:
                            header = record
                            start = reader.line_num + 1
                            continue
                        line_no, start = start, reader.line_num + 1
                        if not any(cell.strip() for cell in record):
                            continue
                        if len(record) != len(header):
                            raise UserError(
                                f"{path}:{line_no}: {len(record)} fields where the header has {len(header)}"
                            )
                        yield line_no, dict(zip(header, record, strict=True))
                except csv.Error as exc:
                    raise UserError(f"{path}:{reader.line_num}: unreadable CSV ({exc})") from None
                if header is None:
                    raise UserError(f"{path}: the file is empty")
        else:
            raise UserError(f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl, .json or .csv")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a case file") from None


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    """Lift nested label objects (``{"expected": {"kind": ...}}``) into dotted columns (``expected.kind``)."""
    if not any(isinstance(v, dict) for v in row.values()):
        return row
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                flat[f"{key}.{inner}"] = inner_value
        else:
            flat[key] = value
    return flat


def _map_columns(path: Path, names: list[str], sample: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """Which of the file's columns feed which field; the rest are ignored."""
    by_norm: dict[str, str] = {}
    for name in names:
        by_norm.setdefault(_norm_column(name), name)
    for name in names:  # a nested label ("expected.kind") answers to its own name too, if that is free
        if "." in name:
            by_norm.setdefault(_norm_column(name.rsplit(".", 1)[1]), name)
    mapping: dict[str, str] = {}
    for target, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in by_norm and by_norm[alias] not in mapping.values():
                mapping[target] = by_norm[alias]
                break
    # A generic "label" column feeds sentiment or kind, whichever vocabulary all of its values fit.
    for generic in _GENERIC_LABEL_COLUMNS:
        column = by_norm.get(generic)
        if column is None or column in mapping.values():
            continue
        values = {_norm_value(row.get(column, "")) for row in sample} - {""}
        for target, vocab in (("sentiment", _SENTIMENT_VALUES), ("kind", _KIND_VALUES)):
            if target not in mapping and values and values <= set(vocab):
                mapping[target] = column
                break
    if "text" not in mapping:
        raise UserError(
            f"{path}: no text column (looked for {', '.join(COLUMN_ALIASES['text'])}); "
            f"columns: {', '.join(names) or '(none)'}"
        )
    ignored = [n for n in names if n not in mapping.values()]
    return mapping, ignored


def _optional_number(value: Any, name: str, kind: type) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = kind(float(value)) if kind is int else kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} {value!r} is not a number") from None
    if number < 0:
        raise ValueError(f"{name} {value!r} is negative")
    return number


def _case_from_row(row: dict[str, Any], columns: dict[str, str], line: int) -> Case:
    def get(name: str) -> Any:
        column = columns.get(name)
        return row.get(column) if column is not None else None

    text = get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty or missing text")
    identifier = get("id")
    channel = get("channel")
    author = get("author")
    followers = _optional_number(get("followers"), "followers", int)
    waiting = _optional_number(get("waiting_minutes"), "waiting_minutes", float)
    inbound = Inbound(
        text=text.strip(),
        channel=str(channel).strip().lower() if channel not in (None, "") else "twitter",
        author=str(author) if author not in (None, "") else None,
        id=str(identifier) if identifier not in (None, "") else None,
        author_followers=followers,
        waiting_minutes=waiting or 0.0,
    )

    def label(name: str, parse: Any) -> Any:
        column = columns.get(name)
        if column is None or column not in row:
            return None
        raw = row[column]
        if name == "crisis" and raw is None:
            return NO_CRISIS  # a null category: no crisis
        if raw is None or (isinstance(raw, str) and not raw.strip() and name != "crisis"):
            return None
        return parse(raw)

    return Case(
        inbound=inbound,
        line=line,
        kind=label("kind", normalise_kind),
        sentiment=label("sentiment", normalise_sentiment),
        # An empty cell in a crisis column means "no crisis": category columns are blank when there is none.
        crisis=label("crisis", normalise_crisis),
        private_info=label("private_info", lambda v: normalise_bool(v, "private_info")),
        language=str(get("language")).strip().lower() if get("language") not in (None, "") else None,
        group=str(get("group")).strip().lower() if get("group") not in (None, "") else None,
    )


def load_cases(path: str | Path, *, require_labels: bool = False) -> CaseSet:
    """Read a case file; a bad file or value raises ``UserError`` naming file and line."""
    path = Path(path)
    rows = [(line, _flatten(row)) for line, row in _rows(path)]
    if not rows:
        raise UserError(f"{path}: no rows")
    names: list[str] = []
    for _, row in rows:
        for key in row:
            if key not in names:
                names.append(key)
    columns, ignored = _map_columns(path, names, [row for _, row in rows[:500]])
    cases: list[Case] = []
    for line, row in rows:
        try:
            cases.append(_case_from_row(row, columns, line))
        except ValueError as exc:
            raise UserError(f"{path}:{line}: {exc}") from None
    case_set = CaseSet(path=str(path), cases=tuple(cases), columns=columns, ignored=tuple(ignored))
    if require_labels and not case_set.label_fields:
        raise UserError(
            f"{path}: no label columns (looked for {', '.join(a for f in LABEL_FIELDS for a in COLUMN_ALIASES[f])})"
        )
    return case_set


def read_inbound(path: str | Path) -> list[Inbound]:
    """Messages to triage from a JSONL (or CSV) file of ``{"id", "text", ...}`` rows."""
    return [case.inbound for case in load_cases(path).cases]
