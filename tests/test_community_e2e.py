"""Community drafting with the embedded chat model and the MiniLM embedder (slow: ``-m e2e``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _community_support import copy_kb, inbound_case, labels
from rapidfuzz import fuzz

from copilot.cli import main
from copilot.community.drafting import content_problems
from copilot.community.promoters import draft_outreach, scan_promoters
from copilot.community.proposals import draft_proposals, validate_entry_text
from copilot.config import Settings
from copilot.pii import find_pii
from copilot.pipeline import build_pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, embedded_model_path: Path) -> Path:
    data = tmp_path_factory.mktemp("community-e2e")
    kb = copy_kb(data)
    build_pipeline(Settings(data_dir=data / "data", kb_dir=kb, model_path=embedded_model_path)).ingest()
    return data


def pipeline(data_dir: Path, model: Path):  # type: ignore[no-untyped-def]
    return build_pipeline(Settings(data_dir=data_dir / "data", kb_dir=data_dir / "knowledge", model_path=model))


def test_cli_starters_gives_five_distinct_starters_in_the_queue(
        data_dir: Path, embedded_model_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COPILOT_DATA_DIR", str(data_dir / "data"))
    monkeypatch.setenv("COPILOT_KB_DIR", str(data_dir / "knowledge"))
    monkeypatch.setenv("COPILOT_MODEL_PATH", str(embedded_model_path))
    monkeypatch.setenv("COPILOT_CONFIG", str(data_dir / "absent.toml"))
    assert main(["community", "starters", "--n", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    items = [pipeline(data_dir, embedded_model_path).queue.get(i) for i in out["items"]]
    assert len(items) == 5 and all(i.kind == "starter" and i.status == "pending" for i in items)
    texts = [i.text for i in items]
    assert all(fuzz.token_sort_ratio(a, b) < 85 for n, a in enumerate(texts) for b in texts[n + 1:])
    for text in texts:
        assert 40 <= len(text) <= 500 and not find_pii(text) and "@" not in text
    models = {i.draft["model"] for i in items}
    assert models == {embedded_model_path.name}


def test_outreach_with_the_embedded_model(data_dir: Path, embedded_model_path: Path) -> None:
    pipe = pipeline(data_dir, embedded_model_path)
    for text in ("Love my lumio-strip behind the TV, the colours are gorgeous!",
                 "The sunrise scene on my lumio-strip is the best way to wake up",
                 "Another cosy evening with the warm-white scene on the strip, thank you Lumio"):
        inbound_case(pipe, text, author="@sunny_scenes", channel="instagram", triage=labels("praise", "positive", 0.8))
    scan_promoters(pipe, by="casey")
    item = draft_outreach(pipe, "@sunny_scenes", kind="thanks", by="casey")
    assert item.kind == "outreach" and item.author == "@sunny_scenes" and len(item.text) <= 500
    assert not find_pii(item.text) and ("sunny_scenes" in item.text.lower() or "strip" in item.text.lower())
    assert not content_problems(item.text, limit=500, facts="sunny_scenes lumio-strip 3 positive posts",
                                allow_handles=["sunny_scenes"])


def test_faq_proposal_with_the_embedded_model(data_dir: Path, embedded_model_path: Path) -> None:
    pipe = pipeline(data_dir, embedded_model_path)
    inbound_case(pipe, "Can I use the lumio-strip outside on my covered balcony?",
                 reply="@sam Thanks for asking! I've passed it to our team to check.",
                 approve="@sam Thanks for asking! The lumio-strip is for indoor use, so put it in an outdoor-rated "
                         "aluminium channel and keep the power supply indoors.", knowledge_gap=True)
    [draft] = draft_proposals(pipe, min_size=1).drafts
    entry = validate_entry_text(draft.text, pipe.settings.kb_dir)
    assert entry.kind in ("faq", "fix") and entry.id.startswith("kb-") and "indoor" in entry.body


def test_drafting_with_a_tone_example_still_gives_a_grounded_reply(data_dir: Path, embedded_model_path: Path) -> None:
    pipe = pipeline(data_dir, embedded_model_path)
    inbound_case(pipe, "my lumio hub is offline again and my lights don't respond", author="@sam",
                 channel="twitter", triage=labels("complaint", "negative", -0.6), reply="@sam Sorry! Unplug the hub.",
                 approve="@sam So sorry about the hub, that's no fun. Unplug it for 30 seconds and give it 2 minutes.")
    from copilot.types import Inbound

    message = Inbound(text="hub offline, lights not responding", channel="twitter", author="@jo")
    assert pipe.tone_examples.example_for(message, labels("complaint", "negative", -0.6))
    draft = pipe.drafter.draft(message)
    assert draft.status == "pending" and draft.text.startswith("@jo ") and len(draft.text) <= 280
    assert set(draft.cited_ids) <= set(draft.retrieved_ids)

