"""Reading labelled triage files: column aliases, label spellings, and errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.errors import UserError
from copilot.triage.cases import (
    load_cases,
    normalise_crisis,
    normalise_kind,
    normalise_sentiment,
    read_inbound,
)
from copilot.triage.evaluate import classification_scores, split_cases


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_airline_style_csv_loads_as_is(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        "airline_sentiment,airline_sentiment_confidence,negativereason,airline,text\n"
        'negative,1,Lost Luggage,United,"@united my bag, again"\n'
        "positive,0.68,,American,@AmericanAir Thank you\n"
        "neutral,1,,Delta,When does boarding start?\n",
        encoding="utf-8",
    )
    case_set = load_cases(path)
    assert case_set.columns == {"text": "text", "sentiment": "airline_sentiment"}
    assert case_set.ignored == ("airline_sentiment_confidence", "negativereason", "airline")
    assert [c.sentiment for c in case_set.cases] == ["negative", "positive", "neutral"]
    assert case_set.cases[0].text == "@united my bag, again"
    assert case_set.label_fields == ["sentiment"]
    assert case_set.describe()["labels"] == {"sentiment": 3}


def test_aliases_and_label_spellings(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "team.jsonl", [
        {"message": "Where is my order?", "type": "Inquiry", "polarity": "neu", "needs_dm": "yes",
         "crisis_category": "", "followers": "1200", "tweet_id": 7},
        {"message": "Love it!", "type": "promoter", "polarity": "POS", "needs_dm": 0, "crisis_category": None},
        {"message": "I want to end my life", "type": "crisis", "polarity": -1, "needs_dm": "no",
         "crisis_category": "suicide"},
        {"message": "Please add dark mode", "type": "feature request", "polarity": "neutral",
         "crisis_category": "no"},
    ])
    case_set = load_cases(path)
    assert case_set.columns["text"] == "message"
    assert case_set.columns["kind"] == "type"
    first, second, third, fourth = case_set.cases
    assert (first.kind, first.sentiment, first.private_info, first.crisis) == ("question", "neutral", True, "none")
    assert first.inbound.author_followers == 1200 and first.inbound.id == "7"
    assert (second.kind, second.sentiment, second.private_info, second.crisis) == ("praise", "positive", False, "none")
    assert (third.kind, third.sentiment, third.crisis) == ("crisis", "negative", "self-harm")
    assert fourth.kind == "feedback" and fourth.private_info is None  # the key is absent: not labelled


def test_nested_expected_labels_are_read(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "support.jsonl", [
        {"id": "sup-1", "message": "hub offline again", "channel": "twitter", "author": "@dana",
         "expected": {"kind": "complaint", "sentiment": "negative", "crisis": False, "private_info": False},
         "tags": ["hub"]},
    ])
    case_set = load_cases(path)
    assert case_set.columns["kind"] == "expected.kind" and case_set.columns["crisis"] == "expected.crisis"
    case = case_set.cases[0]
    assert (case.kind, case.sentiment, case.crisis, case.private_info) == ("complaint", "negative", "none", False)
    assert case.inbound.author == "@dana" and case_set.ignored == ("tags",)


def test_generic_label_column_is_read_by_its_values(tmp_path: Path) -> None:
    sentiment = write_jsonl(tmp_path / "a.jsonl", [{"text": "great", "label": "positive"},
                                                  {"text": "bad", "label": "negative"}])
    kind = write_jsonl(tmp_path / "b.jsonl", [{"text": "hi?", "label": "question"},
                                             {"text": "broken", "label": "complaint"}])
    assert load_cases(sentiment).columns.get("sentiment") == "label"
    assert load_cases(kind).columns.get("kind") == "label"


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ('{"text": "ok", "sentiment": "positive"}\n{"text": broken\n', "bad.jsonl", "bad.jsonl:2: invalid JSON"),
        ('{"text": "ok", "sentiment": "meh"}\n', "meh.jsonl", "meh.jsonl:1: sentiment 'meh' is not one of"),
        ('{"text": "ok", "kind": "rant"}\n', "kind.jsonl", "kind.jsonl:1: kind 'rant'"),
        ('{"text": "ok", "crisis": "maybe"}\n', "crisis.jsonl", "crisis.jsonl:1: crisis 'maybe'"),
        ('{"text": "ok", "private_info": "perhaps"}\n', "p.jsonl", "p.jsonl:1: private_info 'perhaps'"),
        ('{"text": "ok"}\n{"text": "  "}\n', "empty.jsonl", "empty.jsonl:2: empty or missing text"),
        ('[1, 2]\n', "list.jsonl", "list.jsonl:1: expected a JSON object"),
        ('{"body": "ok", "followers": "many"}\n', "f.jsonl", "f.jsonl:1: followers 'many' is not a number"),
        ('{"words": "ok", "sentiment": "positive"}\n', "cols.jsonl", "cols.jsonl: no text column"),
        ("", "nothing.jsonl", "nothing.jsonl: no rows"),
        ("text,sentiment\nfine,positive\n\"unterminated,neutral\n", "q.csv", "q.csv:3"),
        ("text,sentiment\nfine,positive,extra\n", "wide.csv", "wide.csv:2: 3 fields where the header has 2"),
        ("anything", "notes.txt", "unsupported file type .txt"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, content: str, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_cases(path)


def test_missing_file_and_missing_labels(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        load_cases(tmp_path / "absent.jsonl")
    path = write_jsonl(tmp_path / "plain.jsonl", [{"text": "hello"}])
    assert load_cases(path).label_fields == []
    with pytest.raises(UserError, match="no label columns"):
        load_cases(path, require_labels=True)


def test_csv_line_numbers_count_multiline_cells(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('text,sentiment\n"line one\nline two",positive\nfine,meh\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"multi.csv:4: sentiment 'meh'"):
        load_cases(path)


def test_read_inbound_batch_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a1", "text": "hub offline", "channel": "Facebook", "author": "@sam", "followers": 10,
         "waiting_minutes": 30},
        {"id": 2, "text": "thanks!"},
    ])
    first, second = read_inbound(path)
    assert (first.id, first.channel, first.author, first.author_followers, first.waiting_minutes) == (
        "a1", "facebook", "@sam", 10, 30.0)
    assert (second.id, second.channel, second.author_followers, second.waiting_minutes) == ("2", "twitter", None, 0.0)


def test_normalisers() -> None:
    assert normalise_sentiment("Very Negative") == "negative"
    assert normalise_sentiment(1) == "positive"
    assert normalise_kind("Spam/Abuse") == "spam"
    assert normalise_kind("industry_conversation") == "conversation"
    assert normalise_crisis(True) == "crisis"
    assert normalise_crisis("safety: fire/overheating") == "danger"
    assert normalise_crisis("danger: gas") == "danger"
    assert normalise_crisis("abuse or violence") == "abuse"
    assert normalise_crisis("death in the community") == "death of a member"
    assert normalise_crisis("Overdose") == "overdose"
    assert normalise_crisis("Child at risk") == "child at risk"


def test_split_is_deterministic_stratified_and_disjoint(tmp_path: Path) -> None:
    rows = [{"text": f"message {i}", "sentiment": ["negative", "neutral", "positive"][i % 3]} for i in range(90)]
    cases = load_cases(write_jsonl(tmp_path / "s.jsonl", rows)).cases
    train, test = split_cases(cases, 0.5, seed=3)
    again_train, _ = split_cases(cases, 0.5, seed=3)
    other_train, _ = split_cases(cases, 0.5, seed=4)
    assert [c.text for c in train] == [c.text for c in again_train]
    assert [c.text for c in train] != [c.text for c in other_train]
    assert len(train) == 45 and len(test) == 45
    assert not {c.text for c in train} & {c.text for c in test}
    assert sum(c.sentiment == "positive" for c in train) == 15
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_cases(cases, 1.5, seed=0)


def test_classification_scores() -> None:
    scores = classification_scores(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert scores["accuracy"] == 0.75
    assert scores["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert scores["per_class"]["b"]["f1"] == 0.8
    assert scores["macro_f1"] == pytest.approx((0.6667 + 0.8) / 2, abs=1e-4)
