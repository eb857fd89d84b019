"""Run records with FakeChat and HashEmbeddings: every file written, one row per case (a case that raised
included), the report shows charts and escapes customer text, and the team's state is untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _eval_support import EXPLODE, KNOWLEDGE, REPO, ExplodingChat, LabelTriager, support_rows, write_jsonl
from fakes import FakeChat, HashEmbeddings

from copilot.config import Settings
from copilot.errors import UserError
from copilot.evaluation.runs import Backends, run_dataset
from copilot.prompts import load_prompts

FLICKER_REPLY = json.dumps(
    {
        "sources": ["kb-fix-bulb-flicker-dimmer"],
        "reply": "So sorry about the flicker! Lumio bulbs dim themselves electronically, so an in-wall "
        "dimmer causes "
        "flicker and buzzing. Please dim in the app instead. Still flickering? Reply here and we'll sort it.",
    }
)
PRAISE_REPLY = json.dumps(
    {"sources": [], "reply": "Thank you so much, that made our day! We're here if you need anything else."}
)


@pytest.fixture()
def support_file(tmp_path: Path) -> Path:
    rows = support_rows("sup-001", "sup-047", "sup-063", "sup-065")
    boom = dict(rows[0], id="sup-boom", message=rows[0]["message"] + f" {EXPLODE}", tags=["outage"])
    rows[2]["message"] += " <b>bold</b>"  # spam, so never drafted: only the report shows it
    return write_jsonl(tmp_path / "cases.jsonl", [rows[0], boom, *rows[1:]])


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "team",
        kb_dir=KNOWLEDGE,
        openai_api_key="sk-very-secret-key",
        webhook_url="https://hooks:hunter2@hooks.example/post",
        webhook_secret="whsec-123",
    )


def test_a_support_run_writes_a_complete_record(tmp_path: Path, support_file: Path) -> None:
    settings = _settings(tmp_path)
    triager = LabelTriager(support_file, wrong={support_rows("sup-065")[0]["message"]: "neutral"})
    backends = Backends(
        chat=ExplodingChat(replies=[FLICKER_REPLY, PRAISE_REPLY]), embedder=HashEmbeddings(), triager=triager
    )
    result = run_dataset(settings, support_file, out_root=tmp_path / "runs", backends=backends)
    run = result.path
    assert run is not None and run.parent == tmp_path / "runs"
    assert {p.name for p in run.iterdir()} == {"config.json", "results.jsonl", "summary.json", "report.html"}

    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["sup-001", "sup-boom", "sup-047", "sup-063", "sup-065"]
    boom = rows[1]
    assert boom["error"].startswith("ProviderError: the chat model failed: connection reset by peer")
    assert boom["passed"] is False and boom["score"] == 0.0 and boom["failed"] == ["error"]
    first, crisis, spam, praise = rows[0], rows[2], rows[3], rows[4]
    assert first["draft"]["cited_ids"] == ["kb-fix-bulb-flicker-dimmer"] and first["passed"] is True
    assert first["scores"]["groundedness"]["passed"] is True
    assert first["sources"][0]["id"] == "kb-fix-bulb-flicker-dimmer"
    assert crisis["draft"]["status"] == "escalated" and crisis["scores"]["escalation"]["passed"] is True
    assert spam["draft"]["status"] == "skipped" and spam["scores"]["no_reply"]["passed"] is True
    assert praise["scores"]["triage_sentiment"]["passed"] is False

    summary = json.loads((run / "summary.json").read_text())
    assert summary["n"] == 5 and summary["n_errors"] == 1 and summary["errors"] == ["sup-boom"]
    assert summary["n_passed"] == sum(r["passed"] for r in rows)
    assert summary["triage"]["sentiment"]["accuracy"] == 0.75  # 3 of the 4 drafted cases
    assert summary["triage"]["kind"]["accuracy"] == 1.0
    assert summary["crisis_recall"] == 1.0 and summary["false_escalation_rate"] == 0.0
    # sup-001 and the crisis have required phrases (both present); the case that raised counts as a miss.
    assert summary["scores"]["must_include"] == {"n": 3, "mean": 0.6667, "pass_rate": 0.6667}
    assert summary["metrics"]["pass_rate"] == summary["pass_rate"]
    assert summary["metric_n"]["pass_rate"] == 5 and summary["metric_n"]["crisis_recall"] == 1
    assert summary["metric_n"]["must_include.pass_rate"] == 3

    config = json.loads((run / "config.json").read_text())
    assert config["chat"] == "fake-chat" and config["embedder"] == "hash-bow-256"
    assert config["dataset"]["n_cases"] == 5 and config["dataset"]["kind"] == "support"
    assert config["prompts"]["draft/user.j2"] == load_prompts().source_hash("draft/user.j2")
    assert config["settings"]["openai_api_key"] == "***"
    assert config["settings"]["webhook_url"] == "https://hooks:***@hooks.example/post"
    assert config["settings"]["webhook_secret"] == "***"
    assert config["ingest"]["entries"] > 50 and config["finished"] >= config["started"]
    for path in run.iterdir():
        text = path.read_text()
        assert "sk-very-secret-key" not in text and "hunter2" not in text and "whsec-123" not in text

    html = (run / "report.html").read_text()
    assert html.count('data-chart="') >= 3 and "data:image/png;base64," in html
    assert html.index('data-case="sup-boom"') < html.index('data-case="sup-001"')  # worst first
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert all(f'data-case="{r["id"]}"' in html for r in rows)

    # Nothing went to the team's queue or gap log: the run had its own workspace.
    team = settings.data_dir
    assert not (team / "copilot.db").exists() and not (team / "knowledge_gaps.jsonl").exists()
    assert (team / "eval" / "index").is_dir()


def test_a_retrieval_run_on_a_faq_folder(tmp_path: Path) -> None:
    folder = tmp_path / "faqset"
    folder.mkdir()
    (folder / "faq.csv").write_text(
        "id,question,answer\n"
        "1,How do I reset my router?,Hold the reset button for ten seconds.\n"
        "2,Which payment cards are accepted?,We accept Visa and Mastercard.\n"
        "3,Do you deliver on weekends?,Deliveries run Monday to Friday only.\n"
    )
    write_jsonl(
        folder / "cases.jsonl",
        [
            {"id": "q1", "query": "how do I reset my router", "relevant_ids": ["1"]},
            {"id": "q2", "query": "which payment cards are accepted", "relevant_ids": ["2"]},
            {"id": "q3", "query": "zebra xylophone quantum", "relevant_ids": []},
        ],
    )
    result = run_dataset(
        Settings(data_dir=tmp_path / "team"),
        folder,
        out_root=tmp_path / "runs",
        backends=Backends(embedder=HashEmbeddings()),
    )
    summary = result.summary
    assert summary["kind"] == "retrieval" and summary["n"] == 3 and summary["n_errors"] == 0
    assert summary["hit@5"] == 1.0 and summary["mrr"] == 1.0 and summary["abstain_accuracy"] == 1.0
    assert summary["metrics"]["hit@5"] == 1.0 and summary["pass_rate"] == 1.0
    rows = [json.loads(line) for line in (result.path / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"]
    assert rows[0]["retrieved"][0]["id"] == "1" and rows[0]["retrieved"][0]["relevant"] is True
    assert rows[2]["grounded"] is False and rows[2]["passed"] is True
    assert result.config["chat"] is None and result.config["kb"]["path"].endswith("faq.csv")
    assert 'data-chart="ranks"' in (result.path / "report.html").read_text()


def test_the_covid_set_runs_from_its_folder(tmp_path: Path) -> None:
    result = run_dataset(
        Settings(data_dir=tmp_path / "team"),
        REPO / "evals/datasets/covid",
        limit=8,
        out_root=tmp_path / "runs",
        backends=Backends(embedder=HashEmbeddings()),
    )
    assert result.summary["n"] == 8 and result.config["dataset"]["name"] == "covid"
    assert result.config["ingest"]["entries"] == 129
    assert len((result.path / "results.jsonl").read_text().splitlines()) == 8
    assert {"hit@5", "mrr", "ndcg@5", "latency_ms_p50", "latency_ms_p95"} <= set(result.summary)


def test_unknown_case_ids_and_bad_limits_are_user_errors(tmp_path: Path, support_file: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(UserError, match="no cases with id sup-999"):
        run_dataset(settings, support_file, out_root=None, case_ids=["sup-001", "sup-999"])
    with pytest.raises(UserError, match="--limit must be at least 1"):
        run_dataset(settings, support_file, out_root=None, limit=0)
    bad = write_jsonl(tmp_path / "bad.jsonl", [dict(support_rows("sup-001")[0], expected_ids=["kb-gone"])])
    with pytest.raises(UserError, match=r"bad.jsonl:1: expected_ids kb-gone not in the knowledge base"):
        run_dataset(settings, bad, out_root=None, backends=Backends(embedder=HashEmbeddings()))


def test_a_judged_run_records_verdicts_and_unreadable_ones(tmp_path: Path, support_file: Path) -> None:
    verdict = (
        "EMPATHY: 4\nHELPFULNESS: 3\nFAITHFULNESS: 5\nREASON: Kind and grounded, but no clear next step."
    )
    judge = FakeChat(replies=[verdict, "no idea", "still no idea", verdict])
    backends = Backends(
        chat=ExplodingChat(replies=[FLICKER_REPLY, PRAISE_REPLY]),
        embedder=HashEmbeddings(),
        triager=LabelTriager(support_file),
        judge_chat=judge,
    )
    result = run_dataset(
        _settings(tmp_path), support_file, out_root=tmp_path / "runs", judge=True, backends=backends
    )
    judged = {r["id"]: r["judge"] for r in result.rows}
    # Drafts with text are judged in case order: sup-001, then the crisis (unreadable twice), then the praise.
    assert judged["sup-001"]["faithfulness"] == 5 and judged["sup-001"]["attempts"] == 1
    assert judged["sup-047"]["error"].startswith("unreadable verdict") and judged["sup-047"]["attempts"] == 2
    assert judged["sup-065"]["empathy"] == 4
    assert judged["sup-boom"] is None and judged["sup-063"] is None  # raised; skipped (no text)
    summary = result.summary
    assert summary["judge"] == {
        "empathy": 4.0,
        "helpfulness": 3.0,
        "faithfulness": 5.0,
        "n": 2,
        "n_errors": 1,
    }
    assert summary["metrics"]["judge.faithfulness"] == 5.0
    assert (
        result.config["judge"]["chat"] == "fake-chat"
        and "judge/user.j2" in result.config["judge"]["templates"]
    )
    html = (result.path / "report.html").read_text()
    assert "faithfulness 5: Kind and grounded" in html and "unreadable verdict" in html
