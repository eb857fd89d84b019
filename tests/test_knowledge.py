"""Knowledge-base loading: validation errors name file and line; chunks keep question and answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kb_helpers import ENTRIES, write_kb

from copilot.errors import KnowledgeError, UserError
from copilot.knowledge import chunk_entry, load_knowledge, read_knowledge, section, stable_id

REPO = Path(__file__).resolve().parent.parent

GOOD_FRONT = "---\nid: kb-x\ntitle: X\nkind: faq\n---\nQuestion?\n\nAnswer.\n"


def _one(tmp_path: Path, name: str, text: str | bytes) -> Path:
    kb = tmp_path / "kb"
    kb.mkdir(exist_ok=True)
    path = kb / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return kb


def _error(tmp_path: Path, name: str, text: str | bytes) -> KnowledgeError:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(_one(tmp_path, name, text))
    return info.value


def test_loads_markdown_and_tables(tmp_path: Path) -> None:
    entries = {e.id: e for e in load_knowledge(write_kb(tmp_path))}
    assert set(entries) == {"kb-wifi", "kb-flicker", "kb-refund", "kb-crisis-policy", "kb-brand-voice", "kb-ship",
                            "kb-track"}
    assert entries["kb-flicker"].official is False
    assert entries["kb-wifi"].products == ("bulb",)
    assert entries["kb-ship"].question == "Where do you ship?"
    assert entries["kb-ship"].tags == ("orders", "shipping")
    assert entries["kb-track"].tags == ("shipping", "orders")  # the category joins the tags
    assert entries["kb-wifi"].updated == "2026-01-02"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("no front matter\n", 1, "missing front matter"),
        ("---\nid: kb-x\ntitle: X\n", 1, "not closed"),
        ("---\nid: kb-x\ntitle: [unclosed\nkind: faq\n---\nbody\n", 4, "invalid YAML"),
        ("---\nid: kb-x\ntitle: X\nkind: faq\ncolour: red\n---\nbody\n", 5, "unknown key"),
        ("---\ntitle: X\nkind: faq\n---\nbody\n", 2, "id: is required"),
        ("---\nid: kb-x\ntitle: X\nkind: recipe\n---\nbody\n", 4, "kind: must be one of"),
        ("---\nid: has space\ntitle: X\nkind: faq\n---\nbody\n", 2, "id: must be letters"),
        ("---\nid: kb-x\ntitle: X\nkind: faq\n---\n\n", 6, "no body"),
        ("---\n- a\n- b\n---\nbody\n", 2, "must be a mapping"),
        ("---\nid: kb-x\ntitle: X\nkind: faq\nofficial: maybe\n---\nbody\n", 5, "official"),
    ],
)
def test_markdown_errors_name_file_and_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    err = _error(tmp_path, "entry.md", text)
    assert err.path.endswith("entry.md")
    assert err.line == line
    assert needle in err.reason
    assert f"entry.md:{line}:" in str(err)


def test_not_utf8(tmp_path: Path) -> None:
    assert "not UTF-8" in _error(tmp_path, "entry.md", b"---\nid: \xff\n---\n").reason


@pytest.mark.parametrize(
    ("name", "text", "line", "needle"),
    [
        ("t.csv", "question,reply\nq,a\n", 1, "missing column(s) answer"),
        ("t.csv", "question,answer\nq1,a1\nq2,\n", 3, "missing 'answer'"),
        ("t.csv", 'question,answer\n"multi\nline q",a1\n,a2\n', 4, "missing 'question'"),
        ("t.csv", "question,answer\n", 1, "no rows"),
        ("t.jsonl", '{"question": "q", "answer": "a"}\n{"question": "q2", \n', 2, "invalid JSON"),
        ("t.jsonl", '{"question": "q", "answer": "a"}\n["q", "a"]\n', 2, "must be an object"),
        ("t.jsonl", '{"question": "q", "answer": "a", "kind": "poem"}\n', 1, "kind 'poem'"),
        ("t.json", '{"question": "q"}', 1, "must be a list"),
        ("t.json", '[\n  {"question": "q", "answer": "a"},\n  {"question": "q2"}\n]', 3, "missing 'answer'"),
        ("t.json", '[{"question": "q", "answer": "a",}]', 1, "invalid JSON"),
        ("t.csv", "id,question,answer\nbad id,q,a\n", 2, "must be letters"),
    ],
)
def test_table_errors_name_file_and_line(tmp_path: Path, name: str, text: str, line: int, needle: str) -> None:
    err = _error(tmp_path, name, text)
    assert err.line == line, str(err)
    assert needle in err.reason


def test_duplicate_markdown_ids_name_both_places(tmp_path: Path) -> None:
    kb = write_kb(tmp_path, {"a.md": GOOD_FRONT, "b.md": GOOD_FRONT.replace("Answer.", "Another answer.")})
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(kb)
    assert "duplicate id 'kb-x'" in str(info.value)
    assert "a.md:1" in str(info.value) and "b.md" in str(info.value)


def _rows(*rows: tuple[str, str]) -> str:
    return "".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in rows)


def test_an_faq_export_with_repeated_questions_loads_and_reports_them(tmp_path: Path) -> None:
    kb = write_kb(tmp_path, {"export.jsonl": _rows(
        ("How do I open an account?", "Visit any branch with ID."),
        ("How do I open an account?", "Visit any branch with ID. "),  # the same answer: merged
        ("how do I  open an account?", "Apply online in the app."),  # another answer: kept, renamed
        ("Can I close my account?", "Yes, in the app."),
    )})

    knowledge = read_knowledge(kb)
    mine = [e for e in knowledge.entries if e.source.endswith("export.jsonl")]
    base = stable_id("How do I open an account?")

    assert [e.body for e in mine] == ["Visit any branch with ID.", "Apply online in the app.", "Yes, in the app."]
    assert len({e.id for e in knowledge.entries}) == len(knowledge.entries)
    assert mine[0].id == base and mine[1].id.startswith(base + ".")
    assert (knowledge.merged, knowledge.renamed) == (1, 1)
    merged, renamed = (d.message() for d in knowledge.duplicates)
    assert merged.startswith("kb/export.jsonl:2: merged into") and "export.jsonl:1" in merged
    assert renamed.startswith("kb/export.jsonl:3:") and repr(mine[1].id) in renamed
    # the new id follows the answer, so a re-ingest (or reordered export) keeps it
    assert read_knowledge(kb).entries == knowledge.entries


def test_a_table_row_never_takes_a_markdown_entrys_id(tmp_path: Path) -> None:
    kb = write_kb(tmp_path, {"a-table.jsonl": json.dumps({"id": "kb-x", "question": "q", "answer": "a"}) + "\n",
                             "z.md": GOOD_FRONT})
    entries = {e.source.rsplit("/", 1)[-1]: e for e in load_knowledge(kb)}
    assert entries["z.md"].id == "kb-x"
    assert entries["a-table.jsonl"].id.startswith("kb-x.")


def test_missing_and_empty_knowledge_base(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_knowledge(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no entries"):
        load_knowledge(tmp_path / "empty")


def test_stable_ids_follow_the_question_not_the_answer(tmp_path: Path) -> None:
    kb = write_kb(tmp_path, {"t.csv": "question,answer\nHow do I reset?,Hold the button.\n"})
    first = load_knowledge(kb)[0].id
    (kb / "t.csv").write_text("question,answer\nHow do I reset?,Hold the button for 5 seconds.\n")
    assert load_knowledge(kb)[0].id == first == stable_id("how do I  reset?")


def test_chunks_keep_the_question_with_every_part() -> None:
    from copilot.types import Entry

    body = "\n\n".join(f"Paragraph {i}. " + "word " * 60 for i in range(12))
    entry = Entry(id="kb-long", title="Why is my hub offline?", kind="fix", body=body)
    chunks = chunk_entry(entry)
    body_chunks = [c for c in chunks if c.metadata["role"] == "body"]
    assert len(body_chunks) > 1
    assert all(c.text.startswith("Why is my hub offline?") for c in chunks)
    assert all(len(c.text) < 1600 for c in body_chunks)
    assert chunks[0].id == "kb-long#t" and chunks[0].text == "Why is my hub offline?"
    assert len({c.hash for c in chunks}) == len(chunks)


def test_sections_of_special_entries(tmp_path: Path) -> None:
    entries = {e.id: e for e in load_knowledge(write_kb(tmp_path))}
    assert section(entries["kb-crisis-policy"], "Holding message").startswith("We're so sorry")
    assert section(entries["kb-crisis-policy"], "Safety holding message").startswith("Please stop")
    assert section(entries["kb-brand-voice"], "Missing") is None


def test_sample_knowledge_base_is_complete() -> None:
    entries = load_knowledge(REPO / "knowledge")
    kinds = {e.kind for e in entries}
    assert len(entries) >= 40
    assert {"faq", "fix", "workaround", "policy", "guideline"} <= kinds
    ids = {e.id for e in entries}
    assert {"kb-brand-voice", "kb-crisis-policy", "kb-channel-etiquette"} <= ids
    assert any(not e.official for e in entries)
    by_id = {e.id: e for e in entries}
    assert section(by_id["kb-crisis-policy"], "Holding message")
    assert section(by_id["kb-brand-voice"], "In short")


def test_fixture_entries_are_all_valid(tmp_path: Path) -> None:
    assert len(load_knowledge(write_kb(tmp_path))) == len(ENTRIES) + 1  # the CSV holds two rows
