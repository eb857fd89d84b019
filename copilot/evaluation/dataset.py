"""Evaluation datasets: load and validate support cases, and tell a support set from a retrieval set.

A support case (one JSON object per line, documented in ``evals/datasets/README.md``) is an inbound
message with what a good draft looks like: the knowledge ids that ground it (``[]``: abstain), the triage
labels, phrases it must and must not contain, and tags. A retrieval case is ``{id?, query, relevant_ids}``.
A COVID-style folder holds a ``cases.jsonl`` of retrieval cases next to the FAQ table they refer to. A crisis
set is ``{id?, text, crisis, language?, group?}``: messages labelled ``none`` or with a crisis category.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from copilot.config import CHANNELS
from copilot.errors import UserError
from copilot.types import MESSAGE_KINDS, SENTIMENTS, Entry

DatasetKind = Literal["support", "retrieval", "crisis"]
TABLE_NAMES = ("faq_db.csv", "faq.csv", "faq.jsonl", "faq.json", "knowledge.csv", "knowledge.jsonl")


class ExpectedLabels(BaseModel):
    """The triage labels a support case expects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    sentiment: str
    crisis: bool = False
    private_info: bool = False

    @field_validator("kind")
    @classmethod
    def _kind_ok(cls, value: str) -> str:
        if value not in MESSAGE_KINDS:
            raise ValueError(f"must be one of {', '.join(MESSAGE_KINDS)}")
        return value

    @field_validator("sentiment")
    @classmethod
    def _sentiment_ok(cls, value: str) -> str:
        if value not in SENTIMENTS:
            raise ValueError(f"must be one of {', '.join(SENTIMENTS)}")
        return value


class SupportCase(BaseModel):
    """One support case: an inbound message and what a good draft for it looks like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    message: str = Field(min_length=1)
    channel: str
    author: str | None = None
    expected_ids: list[str]
    reference: str | None = None
    expected: ExpectedLabels
    must_include: list[str] = Field(default_factory=list)
    must_not_include: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @field_validator("channel")
    @classmethod
    def _channel_ok(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"must be one of {', '.join(CHANNELS)}")
        return value

    @field_validator("message")
    @classmethod
    def _message_ok(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("must_include", "must_not_include")
    @classmethod
    def _phrases_ok(cls, value: list[str]) -> list[str]:
        if any(not phrase.strip() for phrase in value):
            raise ValueError("phrases must not be blank")
        return value


@dataclass(frozen=True)
class LoadedCase:
    """A validated case and the line it came from (for messages that name file and line)."""

    case: SupportCase
    line: int


def _reason(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"])
    message = "unknown field (check the spelling)" if err["type"] == "extra_forbidden" else err["msg"]
    return f"{where}: {message}" if where else message


def json_lines(path: Path) -> Iterable[tuple[int, dict[str, object]]]:
    if not path.is_file():
        raise UserError(f"cases file {path} not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise UserError(f"{path}:{number}: each line must be a JSON object")
        yield number, row


def load_support_cases(path: Path | str) -> list[SupportCase]:
    """Support cases from a JSONL file; a bad or duplicate case is an error naming file and line."""
    return [loaded.case for loaded in load_support_cases_with_lines(path)]


def load_support_cases_with_lines(path: Path | str) -> list[LoadedCase]:
    """Like ``load_support_cases``, keeping each case's line number."""
    path = Path(path)
    loaded: list[LoadedCase] = []
    first_line: dict[str, int] = {}
    for number, row in json_lines(path):
        try:
            case = SupportCase.model_validate(row)
        except ValidationError as exc:
            raise UserError(f"{path}:{number}: {_reason(exc)}") from exc
        if case.id in first_line:
            raise UserError(
                f"{path}:{number}: duplicate id {case.id!r} (first on line {first_line[case.id]})"
            )
        first_line[case.id] = number
        loaded.append(LoadedCase(case, number))
    if not loaded:
        raise UserError(f"cases file {path} has no cases")
    return loaded


def check_known_ids(path: Path | str, loaded: list[LoadedCase], entries: Iterable[Entry]) -> None:
    """Every expected id must exist in the knowledge base; the error names file, line and id."""
    known = {entry.id for entry in entries}
    for item in loaded:
        unknown = [i for i in item.case.expected_ids if i not in known]
        if unknown:
            raise UserError(
                f"{path}:{item.line}: expected_ids {', '.join(unknown)} not in the knowledge base "
                "(was the entry renamed or removed?)"
            )


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset path holds: its kind, the cases file, and (for a folder) its own FAQ table."""

    kind: DatasetKind
    cases: Path
    kb: Path | None = None

    @property
    def name(self) -> str:
        """A short name for run records: the folder name of a dataset folder, else the file stem."""
        return self.cases.parent.name if self.kb is not None else self.cases.stem


def detect_dataset(path: Path | str) -> DatasetSpec:
    """Support set, retrieval set, or a folder with ``cases.jsonl`` and its FAQ table: decided by fields."""
    path = Path(path)
    if path.is_dir():
        cases = path / "cases.jsonl"
        if not cases.is_file():
            raise UserError(f"dataset folder {path} has no cases.jsonl")
        tables = [path / name for name in TABLE_NAMES if (path / name).is_file()]
        if not tables:
            raise UserError(f"dataset folder {path} has no FAQ table ({', '.join(TABLE_NAMES)})")
        spec = detect_dataset(cases)
        return DatasetSpec(kind=spec.kind, cases=cases, kb=tables[0])
    for number, row in json_lines(path):
        if "message" in row and "expected" in row:
            return DatasetSpec(kind="support", cases=path)
        if "query" in row and "relevant_ids" in row:
            return DatasetSpec(kind="retrieval", cases=path)
        if "crisis" in row and ("text" in row or "message" in row):
            return DatasetSpec(kind="crisis", cases=path)
        raise UserError(
            f"{path}:{number}: neither a support case (message, expected, expected_ids, ...), "
            "a retrieval case (query, relevant_ids) nor a crisis case (text, crisis)"
        )
    raise UserError(f"cases file {path} has no cases")
