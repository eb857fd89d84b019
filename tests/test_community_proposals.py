"""Knowledge gaps and FAQ proposals with fake models: collect, cluster, draft, approve, write, re-index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _community_support import build_index_template, copy_kb, days_ago, inbound_case, make_pipeline
from fakes import FakeChat, HashEmbeddings
from fastapi.testclient import TestClient

import copilot.pipeline
from copilot.api.app import build_api
from copilot.cli import main
from copilot.community.proposals import (
    PLACEHOLDER,
    collect_gaps,
    draft_proposals,
    generate_proposals,
    validate_entry_text,
)
from copilot.errors import UserError
from copilot.knowledge import load_knowledge
from copilot.pipeline import Pipeline, build_pipeline
from copilot.ui import handlers

NO_ANSWER = ("@sam Thanks for asking! I don't want to guess on this one, so I've passed it to our team to check. "
             "We'll come back to you with a proper answer.")
TEAM_FIX = ("@sam Thanks for asking! The lumio-strip is for indoor use, so put it in an outdoor-rated aluminium "
            "channel and keep the power supply indoors.")
ENTRY = ("TITLE: Using a lumio-strip outdoors\nQUESTION: Can I use a lumio-strip outside on my balcony?\n"
         "ANSWER: The lumio-strip is for indoor use. On a covered balcony, put it in an outdoor-rated aluminium "
         "channel and keep the power supply indoors.")
BALCONY = ["Can I use the lumio-strip outside on my balcony in the rain?",
           "Can the lumio-strip go outside on a balcony?",
           "Is the lumio-strip ok outside on the balcony?"]
SOLAR = ["Do the bulbs work on a solar battery during a power cut?",
         "Will the bulbs work on my solar battery in a power cut?"]


@pytest.fixture(scope="module")
def index_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_index_template(tmp_path_factory.mktemp("proposals-index"))


def log_gaps(pipe, texts: list[str], *, extra: str = "") -> None:  # type: ignore[no-untyped-def]
    """Gap records as the drafter writes them, with the entry that came closest (and did not answer)."""
    path = pipe.settings.data_dir / "knowledge_gaps.jsonl"
    lines = []
    for text in texts:
        best = pipe.retriever.search(text).passages[0]
        lines.append(json.dumps({"time": days_ago(3).isoformat(), "text": text, "channel": "forum",
                                 "kind": "question", "best_id": best.id, "best_score": 0.3}))
    with path.open("a") as handle:
        handle.write("\n".join(lines) + "\n" + extra)


def resolved_gap(pipe) -> None:  # type: ignore[no-untyped-def]
    inbound_case(pipe, "Can I use the lumio-strip outside on my covered balcony? My email is sam@example.com",
                 reply=NO_ANSWER, approve=TEAM_FIX, knowledge_gap=True)


def test_gaps_come_from_the_log_and_from_fixes_people_added(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path))
    log_gaps(pipe, BALCONY[:2], extra="{torn line\n")
    resolved_gap(pipe)
    inbound_case(pipe, "Bulb will not pair", reply="@sam Sorry! Reset it.", approve="@sam Sorry! Reset it. Thanks!")
    questions, warnings = collect_gaps(pipe)
    assert [q.source for q in questions] == ["gap", "gap", "resolved"]
    assert warnings == ["knowledge_gaps.jsonl:3: skipped a malformed line (JSONDecodeError)"]
    resolved = questions[-1]
    assert "sam@example.com" not in resolved.text and "[email]" in resolved.text
    assert resolved.answer.startswith("The lumio-strip is for indoor use") and "@sam" not in resolved.answer


def test_answered_cluster_becomes_a_valid_entry_in_the_queue(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path), chat=FakeChat(replies=[ENTRY]))
    log_gaps(pipe, BALCONY)
    resolved_gap(pipe)
    [item] = generate_proposals(pipe, by="kim")
    assert item.kind == "faq_proposal" and item.status == "pending" and item.case_id is None
    entry = validate_entry_text(item.text, pipe.settings.kb_dir)
    assert entry.id == "kb-using-a-lumio-strip-outdoors" and entry.kind == "fix" and entry.official
    assert entry.title == "Using a lumio-strip outdoors" and "lumio-strip" in entry.products
    assert entry.body.startswith("Can I use a lumio-strip outside on my balcony?")
    assert "outdoor-rated aluminium channel" in entry.body
    assert item.inbound_text.startswith("Can I use the lumio-strip outside on my covered balcony?")
    assert "Asked 4 time(s)" in item.inbound_text
    prompt = pipe.chat.seen[0][1].content
    assert "<answer>The lumio-strip is for indoor use" in prompt and "sam@example.com" not in prompt
    assert draft_proposals(pipe).drafts == ()  # proposed already: not again


def test_invented_facts_fall_back_to_the_team_answer(tmp_path: Path, index_template: Path) -> None:
    invented = json.dumps({"title": "Outdoor strips", "question": "Can I use a strip outside?",
                           "answer": "Yes, it is rated IP65 and lasts 10 years outdoors and we give a free replacement."})
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path), chat=FakeChat(replies=[invented]))
    resolved_gap(pipe)
    [draft] = draft_proposals(pipe, min_size=1).drafts
    [fallback] = [f for f in draft.flags if f.startswith("fallback:")]
    assert "states 10" in fallback and "free" in fallback and draft.needs_attention
    entry = validate_entry_text(draft.text, pipe.settings.kb_dir)
    assert "The lumio-strip is for indoor use" in entry.body and "IP65" not in draft.text


def test_unanswered_cluster_needs_an_answer_before_approval(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path), chat=FakeChat())
    log_gaps(pipe, SOLAR + ["Is there a bulb for my garden shed?"])
    run = draft_proposals(pipe)
    [draft] = run.drafts
    assert PLACEHOLDER in draft.text and pipe.chat.seen == []  # nobody answered: no model call, no invention
    assert any(s["reason"].startswith("asked 1 time") for s in run.skipped)
    item = pipe.queue.submit(draft, by="kim")
    with pytest.raises(UserError, match=PLACEHOLDER):
        pipe.actions.approve_proposal(item.id, by="rita", version=item.version)
    assert pipe.queue.get(item.id).status == "pending"
    answered = draft.text.replace(
        f"{PLACEHOLDER}: write the answer or fix here (in the format of docs/knowledge-base.md) before approving.",
        "Yes: the bulbs run on any home battery that keeps the mains circuit powered.")
    report = pipe.actions.approve_proposal(item.id, by="rita", version=item.version, text=answered)
    [applied] = report.applied
    path = Path(applied.path)
    assert path.parent == pipe.settings.kb_dir / "faq" and path.read_text() == answered + ("" if answered.endswith(
        "\n") else "\n")
    assert applied.entry_id in {e.id for e in load_knowledge(pipe.settings.kb_dir)}
    assert report.ingest["added"] >= 1
    hits = pipe.retriever.search("bulbs solar battery power cut").ids
    assert applied.entry_id in hits
    assert pipe.queue.get(item.id).status == "approved"
    assert pipe.actions.apply_proposals(by="rita").applied == ()  # applied once


def test_questions_the_knowledge_base_answers_now_are_skipped(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path), chat=FakeChat())
    path = pipe.settings.data_dir / "knowledge_gaps.jsonl"  # logged before kb-wifi-2-4ghz was written
    path.write_text("".join(json.dumps({"time": days_ago(9).isoformat(), "text": text, "best_id": None}) + "\n"
                            for text in ("Do Lumio devices work on 5 GHz Wi-Fi?",
                                         "Do Lumio devices work on 5 GHz Wi-Fi networks?")))
    run = draft_proposals(pipe)
    assert run.drafts == () and "the knowledge base now answers it (kb-wifi-2-4ghz)" in run.skipped[0]["reason"]


def test_apply_reports_an_invalid_entry_and_writes_nothing(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path), chat=FakeChat(replies=[ENTRY]))
    resolved_gap(pipe)
    [item] = generate_proposals(pipe, by="kim", min_size=1)
    broken = item.text.replace("kind: fix", "kind: rumour")
    pipe.queue.approve(item.id, by="rita", version=item.version, text=broken)
    before = sorted(p.name for p in pipe.settings.kb_dir.rglob("*.md"))
    report = pipe.actions.apply_proposals(by="rita")
    assert report.applied == () and report.ingest == {}
    [(item_id, error)] = report.errors
    assert item_id == item.id and "kind: must be one of" in error and "write the entry by hand" in error
    assert sorted(p.name for p in pipe.settings.kb_dir.rglob("*.md")) == before


def test_duplicate_id_is_refused(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path), chat=FakeChat(replies=[ENTRY]))
    resolved_gap(pipe)
    [item] = generate_proposals(pipe, by="kim", min_size=1)
    clash = item.text.replace("id: kb-using-a-lumio-strip-outdoors", "id: kb-strip-cutting")
    with pytest.raises(UserError, match="kb-strip-cutting already exists in knowledge/faq/strip-cutting.md"):
        pipe.actions.approve_proposal(item.id, by="rita", version=item.version, text=clash)


def test_nothing_to_propose(tmp_path: Path, index_template: Path) -> None:
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path), chat=FakeChat())
    run = draft_proposals(pipe)
    assert (run.drafts, run.questions, run.clusters, run.warnings) == ((), 0, 0, ())
    assert pipe.actions.apply_proposals(by="rita").applied == ()
    with pytest.raises(UserError, match="not approved, unapplied FAQ proposals"):
        pipe.actions.apply_proposals(by="rita", item_ids=[42])


def test_cli_gaps_proposals_and_apply(tmp_path: Path, index_template: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path), chat=FakeChat(replies=[ENTRY]))
    monkeypatch.setattr("copilot.cli.community_cmd.pipeline_from", lambda args, **kw: pipe)
    log_gaps(pipe, BALCONY)
    resolved_gap(pipe)
    assert main(["community", "gaps", "--json"]) == 0
    gaps = json.loads(capsys.readouterr().out)
    assert gaps["questions"] == 4 and gaps["clusters"][0]["size"] == 4 and gaps["clusters"][0]["answered"] == 1
    assert main(["community", "proposals", "--json", "--by", "kim"]) == 0
    [item_id] = json.loads(capsys.readouterr().out)["items"]
    assert main(["community", "apply-proposals", "--by", "rita"]) == 0
    assert "no approved proposals" in capsys.readouterr().out
    item = pipe.queue.get(item_id)
    pipe.queue.approve(item_id, by="rita", version=item.version)
    assert main(["community", "apply-proposals", "--by", "rita", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["applied"][0]["entry_id"] == "kb-using-a-lumio-strip-outdoors"
    assert (pipe.settings.kb_dir / "fixes" / "using-a-lumio-strip-outdoors.md").is_file()


# Every entry point approves through the one action layer: the CLI's `queue approve` and the API's approve write
# an FAQ proposal into the knowledge base exactly as the web app's Approve does, and refuse an unanswered one alike.

def _approve_in_cli(pipe: Pipeline, item_id: int, version: int, text: str | None) -> None:
    args = ["queue", "approve", str(item_id), "--by", "rita", "--version", str(version)]
    if text is not None:
        path = pipe.settings.data_dir / "final.md"
        path.write_text(text, encoding="utf-8")
        args += ["--text-file", str(path)]
    if main(args) != 0:
        raise UserError("the CLI refused the approval")


def _approve_in_web_app(pipe: Pipeline, item_id: int, version: int, text: str | None) -> None:
    handlers.approve(pipe, "rita", item_id, version, text)


def _approve_by_action(pipe: Pipeline, item_id: int, version: int, text: str | None) -> None:
    pipe.actions.approve(item_id, by="rita", version=version, text=text)


def _approve_in_api(pipe: Pipeline, item_id: int, version: int, text: str | None) -> None:
    _, token = pipe.queue.create_token("rita", label="test")
    body = {"version": version, **({"text": text} if text is not None else {})}
    response = TestClient(build_api(pipe)).post(f"/api/v1/items/{item_id}/approve", json=body,
                                                headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise UserError(response.json()["error"]["reason"])


ENTRY_POINTS = {"cli": _approve_in_cli, "web app": _approve_in_web_app, "api": _approve_in_api,
                "action": _approve_by_action}


@pytest.fixture
def cli_pipe(tmp_path: Path, index_template: Path, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """A pipeline with a reviewer, and the CLI pointed at the same data, knowledge base and hash embeddings."""
    pipe = make_pipeline(tmp_path, index_template, kb=copy_kb(tmp_path), chat=FakeChat())
    pipe.queue.add_user("rita", "admin", password="correct horse battery")
    pipe.queue.add_user("kim", "agent", password="correct horse battery", by="rita")
    monkeypatch.setenv("COPILOT_DATA_DIR", str(pipe.settings.data_dir))
    monkeypatch.setenv("COPILOT_KB_DIR", str(pipe.settings.kb_dir))
    real = copilot.pipeline.build_pipeline
    monkeypatch.setattr(copilot.pipeline, "build_pipeline",
                        lambda settings, **kw: real(settings, **{"embedder": HashEmbeddings(), **kw}))
    return pipe


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_every_entry_point_writes_an_approved_proposal_into_the_knowledge_base(cli_pipe: Pipeline,
                                                                                entry_point: str) -> None:
    log_gaps(cli_pipe, SOLAR + ["Is there a bulb for my garden shed?"])
    [draft] = draft_proposals(cli_pipe).drafts
    item = cli_pipe.queue.submit(draft, by="kim")
    approve = ENTRY_POINTS[entry_point]
    with pytest.raises(UserError):  # unanswered: refused before the approval, wherever it came from
        approve(cli_pipe, item.id, item.version, None)
    assert cli_pipe.queue.get(item.id).status == "pending" and not list(cli_pipe.settings.kb_dir.rglob("*solar*"))
    answered = draft.text.replace(
        f"{PLACEHOLDER}: write the answer or fix here (in the format of docs/knowledge-base.md) before approving.",
        "Yes: the bulbs run on any home battery that keeps the mains circuit powered.")
    approve(cli_pipe, item.id, item.version, answered)
    assert cli_pipe.queue.get(item.id).status == "approved"
    [written] = [e for e in load_knowledge(cli_pipe.settings.kb_dir) if "home battery" in e.body]
    fresh = build_pipeline(cli_pipe.settings, embedder=HashEmbeddings())
    assert written.id in fresh.retriever.search("bulbs solar battery power cut").ids  # re-indexed
    assert cli_pipe.actions.apply_proposals(by="rita").applied == ()  # written once
