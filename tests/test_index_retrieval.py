"""Ingest and hybrid retrieval against a real on-disk Chroma and a real Chroma server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fakes import HashEmbeddings
from kb_helpers import write_kb

from copilot.cli import main
from copilot.config import Settings
from copilot.errors import KnowledgeError
from copilot.pipeline import build_pipeline
from copilot.retrieve import Filters

REPO = Path(__file__).resolve().parent.parent


def _pipeline(tmp_path: Path, kb: Path, **overrides: object):
    settings = Settings(data_dir=tmp_path / "data", kb_dir=kb, **overrides)
    return build_pipeline(settings, embedder=HashEmbeddings())


def test_incremental_reingest_add_change_delete(tmp_path: Path) -> None:
    kb = write_kb(tmp_path)
    pipe = _pipeline(tmp_path, kb)
    first = pipe.ingest()
    assert first.entries == 7 and first.added == first.chunks and first.removed == 0
    again = pipe.ingest()
    assert (again.added, again.changed, again.removed, again.unchanged) == (0, 0, 0, first.chunks)

    wifi = kb / "fixes" / "wifi.md"
    wifi.write_text(wifi.read_text().replace("5 seconds", "10 seconds"))
    (kb / "policies" / "refund.md").unlink()
    (kb / "faq" / "more.jsonl").write_text(json.dumps(
        {"id": "kb-gift", "question": "Do you sell gift cards?", "answer": "Yes, in the online shop."}) + "\n")
    third = pipe.ingest()
    assert third.changed == 1  # only the body chunk of kb-wifi changed; its question vector did not
    assert third.removed == 2  # kb-refund's question vector and body chunk
    assert third.added == 2
    hits = pipe.retriever.search("refund policy original payment method", k=7).ids
    assert "kb-refund" not in hits
    wifi_hit = pipe.retriever.search("reset the bulb, it won't connect to wifi", k=1).passages[0]
    assert wifi_hit.id == "kb-wifi" and "10 seconds" in wifi_hit.text
    assert pipe.retriever.search("gift cards", k=1).ids == ["kb-gift"]


def test_a_bad_file_leaves_the_index_untouched(tmp_path: Path) -> None:
    kb = write_kb(tmp_path)
    pipe = _pipeline(tmp_path, kb)
    pipe.ingest()
    before = pipe.index.count()
    (kb / "fixes" / "wifi.md").write_text("---\nid: kb-wifi\ntitle: X\nkind: faq\n---\nNew body\n")
    (kb / "broken.md").write_text("---\nid: kb-broken\nkind: nope\n---\nbody\n")
    with pytest.raises(KnowledgeError, match="broken.md"):
        pipe.ingest()
    assert pipe.index.count() == before
    assert "2.4 GHz" in pipe.retriever.search("bulb will not connect to wifi", k=1).passages[0].text


def test_filters_kind_product_tag_and_official(tmp_path: Path) -> None:
    pipe = _pipeline(tmp_path, write_kb(tmp_path))
    pipe.ingest()
    query = "light flickers when dimmed, bulb wifi"
    assert {p.kind for p in pipe.retriever.search(query, filters=Filters(kinds=("fix",))).passages} == {"fix"}
    unofficial = pipe.retriever.search(query, k=7).ids
    assert "kb-flicker" in unofficial
    assert "kb-flicker" not in pipe.retriever.search(query, k=7, filters=Filters(official_only=True)).ids
    assert pipe.retriever.search(query, filters=Filters(products=("strip",))).ids == ["kb-flicker"]
    assert set(pipe.retriever.search("order", filters=Filters(tags=("orders",))).ids) == {"kb-ship", "kb-track"}
    assert "kb-brand-voice" not in pipe.retriever.search(
        "brand voice warm", k=7, filters=Filters(exclude_kinds=("guideline",))).ids


def test_score_floor_abstains_on_unrelated_questions(tmp_path: Path) -> None:
    pipe = _pipeline(tmp_path, write_kb(tmp_path))
    pipe.ingest()
    off_topic = pipe.retriever.search("what is the capital of mongolia")
    assert not off_topic.grounded
    assert pipe.retriever.grounded_passages(off_topic) == []
    on_topic = pipe.retriever.search("how do I track my order")
    assert on_topic.grounded and on_topic.passages[0].id == "kb-track"


def test_empty_query_and_empty_index(tmp_path: Path) -> None:
    pipe = _pipeline(tmp_path, write_kb(tmp_path))
    assert pipe.retriever.search("wifi").passages == ()
    pipe.ingest()
    assert pipe.retriever.search("   ").passages == ()


def test_minilm_hybrid_finds_sample_entries(tmp_path: Path) -> None:
    """The real embedder on the sample knowledge base: paraphrased questions find their entry."""
    from copilot.models.embeddings import MiniLMEmbeddings

    settings = Settings(data_dir=tmp_path / "data", kb_dir=REPO / "knowledge")
    pipe = build_pipeline(settings, embedder=MiniLMEmbeddings())
    pipe.ingest()
    got = pipe.retriever.search("my new bulb won't connect to the wifi during setup", k=3)
    assert got.grounded
    assert "kb-fix-bulb-wont-pair" in got.ids
    assert not pipe.retriever.search("best recipe for lasagne with spinach").grounded


def test_hybrid_never_loses_to_its_dense_half_on_the_shipped_set(tmp_path: Path) -> None:
    """The fusion's lexical half and question vector must add to the plain one-vector ranking, not cost."""
    from copilot.evaluation.retrieval import evaluate_retrieval, load_retrieval_cases
    from copilot.models.embeddings import MiniLMEmbeddings

    settings = Settings(data_dir=tmp_path / "data", kb_dir=REPO / "knowledge")
    pipe = build_pipeline(settings, embedder=MiniLMEmbeddings())
    pipe.ingest()
    cases = load_retrieval_cases(REPO / "evals" / "datasets" / "kb_retrieval.jsonl")
    scores = {mode: evaluate_retrieval(pipe.retriever, cases, k=5, mode=mode)[0]
              for mode in ("hybrid", "dense", "single")}
    for baseline in ("dense", "single"):
        assert scores["hybrid"]["hit@5"] >= scores[baseline]["hit@5"], scores
        assert scores["hybrid"]["mrr"] >= scores[baseline]["mrr"], scores


def test_fusion_dense_score_weights_the_question_vector() -> None:
    from copilot.retrieve import Fusion

    fusion = Fusion(title_weight=0.25)
    assert fusion.dense(0.8, 0.4) == pytest.approx(0.5)
    assert fusion.dense(None, 0.4) == pytest.approx(0.4)  # indexed without a question vector
    assert fusion.dense(0.7, None) == pytest.approx(0.7)  # indexed without body chunks
    assert fusion.dense(None, None) == 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def chroma_server(tmp_path: Path):
    """A real ``chroma run`` server on loopback."""
    port = _free_port()
    exe = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen([str(exe), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail("chroma run exited at start")
            time.sleep(0.25)
        else:
            pytest.fail("chroma run did not answer in 30 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_retrieval_through_a_chroma_server(tmp_path: Path, chroma_server: str) -> None:
    kb = write_kb(tmp_path)
    local = _pipeline(tmp_path / "local", kb)
    local.ingest()
    remote = _pipeline(tmp_path / "remote", kb, chroma_url=chroma_server)
    report = remote.ingest()
    assert report.added == local.index.count()
    query = "bulb will not connect to wifi"
    assert remote.retriever.search(query).ids == local.retriever.search(query).ids
    # A second machine sharing the server rebuilds the lexical side from the server's documents.
    other = _pipeline(tmp_path / "other", kb, chroma_url=chroma_server)
    assert other.retriever.search(query).ids == local.retriever.search(query).ids


def test_cli_ingest_search_and_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    kb = write_kb(tmp_path)
    monkeypatch.setenv("COPILOT_DATA_DIR", str(tmp_path / "data"))
    assert main(["search", "wifi", "--kb", str(kb)]) == 1
    assert "run `copilot ingest` first" in capsys.readouterr().err
    assert main(["ingest", "--kb", str(kb), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 7
    (kb / "faq" / "export.jsonl").write_text("".join(json.dumps(row) + "\n" for row in (
        {"question": "Do you ship abroad?", "answer": "Yes, to the EU."},
        {"question": "Do you ship abroad?", "answer": "Yes, to the EU."},
        {"question": "Do you ship abroad?", "answer": "Only to the UK."})))
    assert main(["ingest", "--kb", str(kb)]) == 0
    out = capsys.readouterr().out
    assert "indexed 9 entries" in out
    assert "2 repeated FAQ rows: 1 merged (same answer), 1 kept under a new id" in out
    assert "export.jsonl:2: merged into" in out and "export.jsonl:3: id" in out
    (kb / "faq" / "export.jsonl").unlink()
    assert main(["ingest", "--kb", str(kb), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["duplicates"] == []
    assert main(["search", "bulb won't connect to wifi", "--kb", str(kb), "--json", "--k", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passages"][0]["id"] == "kb-wifi" and len(out["passages"]) == 2
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(c) for c in [
        {"query": "bulb won't connect to wifi", "relevant_ids": ["kb-wifi"]},
        {"query": "how can I follow my parcel", "relevant_ids": ["kb-track"]},
        {"query": "who won the football world cup", "relevant_ids": []},
    ]))
    assert main(["eval", "retrieval", "--kb", str(kb), "--cases", str(cases), "--json", "--k", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("n", "hit@3", "recall@3", "mrr", "ndcg@3", "abstain_accuracy", "latency_ms_p50", "latency_ms_p95"):
        assert key in summary
    assert summary["n"] == 3 and summary["hit@3"] == 1.0
    cases.write_text('{"query": ""}\n')
    assert main(["eval", "retrieval", "--kb", str(kb), "--cases", str(cases)]) == 1
    assert "cases.jsonl:1" in capsys.readouterr().err
