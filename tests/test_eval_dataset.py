"""Support case files: the shipped sets are valid and complete; bad files fail naming file and line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from _eval_support import KNOWLEDGE, REPO, SUPPORT, case, write_jsonl

from copilot.config import CHANNELS
from copilot.errors import UserError
from copilot.evaluation.dataset import (
    check_known_ids,
    detect_dataset,
    load_support_cases,
    load_support_cases_with_lines,
)
from copilot.evaluation.retrieval import load_retrieval_cases
from copilot.knowledge import load_knowledge
from copilot.types import MESSAGE_KINDS


def test_shipped_support_set_covers_every_kind_channel_and_risk() -> None:
    cases = load_support_cases(SUPPORT)
    assert len(cases) >= 60
    assert set(Counter(c.expected.kind for c in cases)) == set(MESSAGE_KINDS)
    assert set(Counter(c.channel for c in cases)) == set(CHANNELS)
    tags = Counter(t for c in cases for t in c.tags)
    assert sum(c.expected.crisis for c in cases) >= 5
    assert sum(c.expected.private_info for c in cases) >= 5
    assert tags["prompt-injection"] >= 3 and tags["unanswerable"] >= 3 and tags["multilingual"] >= 3
    # Every expected id exists in the sample knowledge base.
    check_known_ids(SUPPORT, load_support_cases_with_lines(SUPPORT), load_knowledge(KNOWLEDGE))


def test_shipped_retrieval_sets_load_and_covid_keeps_its_licence() -> None:
    assert detect_dataset(REPO / "evals/datasets/kb_retrieval.jsonl").kind == "retrieval"
    covid = detect_dataset(REPO / "evals/datasets/covid")
    assert covid.kind == "retrieval" and covid.kb is not None and covid.kb.name == "faq_db.csv"
    assert covid.name == "covid"
    cases = load_retrieval_cases(covid.cases)
    ids = {e.id for e in load_knowledge(covid.kb)}
    assert len(cases) > 100 and all(set(c.relevant_ids) <= ids for c in cases)
    assert any(not c.relevant_ids for c in cases)  # unanswerable questions test abstention
    assert "Apache License" in (REPO / "evals/datasets/covid/LICENSE").read_text()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (case(colour="red"), "colour: unknown field"),
        (case(channel="myspace"), "channel: Value error, must be one of twitter"),
        (
            case(expected={"kind": "rant", "sentiment": "negative"}),
            "expected.kind: Value error, must be one of",
        ),
        (
            case(expected={"kind": "complaint", "sentiment": "negative", "mood": "bad"}),
            "expected.mood: unknown field",
        ),
        (case(message="   "), "message: Value error, must not be blank"),
        (case(must_include=["ok", " "]), "must_include: Value error, phrases must not be blank"),
        ({k: v for k, v in case().items() if k != "expected_ids"}, "expected_ids: Field required"),
    ],
)
def test_a_bad_case_names_file_line_and_field(tmp_path: Path, row: dict, message: str) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [case(id="ok-1"), row])
    with pytest.raises(UserError) as err:
        load_support_cases(path)
    assert str(err.value).startswith(f"{path}:2: ")
    assert message in str(err.value)


def test_invalid_json_duplicate_ids_and_empty_files_are_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(case()) + "\n\n{not json\n")
    with pytest.raises(UserError, match=r"bad.jsonl:3: invalid JSON"):
        load_support_cases(bad)
    dup = write_jsonl(tmp_path / "dup.jsonl", [case(), case()])
    with pytest.raises(UserError, match=r"dup.jsonl:2: duplicate id 'c-1' \(first on line 1\)"):
        load_support_cases(dup)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(UserError, match="has no cases"):
        load_support_cases(empty)
    with pytest.raises(UserError, match="not found"):
        load_support_cases(tmp_path / "missing.jsonl")


def test_unknown_expected_ids_are_named_with_their_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [case(id="a"), case(id="b", expected_ids=["kb-nope"])])
    with pytest.raises(UserError, match=r"cases.jsonl:2: expected_ids kb-nope not in the knowledge base"):
        check_known_ids(path, load_support_cases_with_lines(path), load_knowledge(KNOWLEDGE))


def test_dataset_kind_is_decided_by_fields(tmp_path: Path) -> None:
    support = write_jsonl(tmp_path / "s.jsonl", [case()])
    retrieval = write_jsonl(tmp_path / "r.jsonl", [{"query": "q", "relevant_ids": []}])
    neither = write_jsonl(tmp_path / "n.jsonl", [{"text": "hello"}])
    assert detect_dataset(support).kind == "support"
    assert detect_dataset(retrieval).kind == "retrieval" and detect_dataset(retrieval).kb is None
    with pytest.raises(UserError, match=r"n.jsonl:1: neither a support case"):
        detect_dataset(neither)
    folder = tmp_path / "faq"
    folder.mkdir()
    with pytest.raises(UserError, match="has no cases.jsonl"):
        detect_dataset(folder)
    write_jsonl(folder / "cases.jsonl", [{"query": "q", "relevant_ids": ["1"]}])
    with pytest.raises(UserError, match="has no FAQ table"):
        detect_dataset(folder)
    (folder / "faq.csv").write_text("id,question,answer\n1,Q?,A.\n")
    spec = detect_dataset(folder)
    assert spec.kind == "retrieval" and spec.kb == folder / "faq.csv" and spec.name == "faq"
