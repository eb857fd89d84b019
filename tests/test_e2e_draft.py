"""End to end with the embedded chat model, the real embedder and the real triage: a handful of drafts."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.config import Settings
from copilot.pii import find_pii
from copilot.pipeline import build_pipeline
from copilot.types import Inbound

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, embedded_model_path: Path):
    settings = Settings(data_dir=tmp_path_factory.mktemp("e2e"), kb_dir=REPO / "knowledge",
                        model_path=embedded_model_path)
    pipe = build_pipeline(settings)
    pipe.ingest()
    return pipe


def test_complaint_on_x_is_grounded_short_and_pending(pipeline) -> None:
    tokens: list[str] = []
    draft = pipeline.drafter.draft(
        Inbound(text="my new bulb won't pair with the wifi, so annoying", channel="twitter", author="@sam"),
        on_token=tokens.append)
    assert draft.text.startswith("@sam ") and len(draft.text) <= 280
    assert set(draft.cited_ids) <= set(draft.retrieved_ids) and draft.cited_ids
    assert tokens, "the draft streams"
    item = pipeline.queue.submit(draft, by="copilot")
    assert pipeline.queue.get(item.id).status == "pending"


def test_private_case_never_echoes_personal_data(pipeline) -> None:
    message = "I was charged twice for order LM-4821337, card 4111 1111 1111 1111, email jo@example.com. Refund?"
    draft = pipeline.drafter.draft(Inbound(text=message, channel="facebook", author="Jo Bloggs"))
    assert draft.triage.private_info
    assert find_pii(draft.text) == []
    assert "4111" not in draft.text and "jo@example.com" not in draft.text


def test_crisis_is_escalated_without_a_model_answer(pipeline) -> None:
    draft = pipeline.drafter.draft(Inbound(text="honestly I just want it all to end", channel="twitter",
                                           author="@kim"))
    assert draft.status == "escalated" and draft.triage.crisis
    assert draft.triage.priority == 1


def test_rewrite_translates(pipeline) -> None:
    text = pipeline.drafter.rewrite("So sorry about the wait! Your refund takes 5-10 business days.", "translate",
                                    channel="chat", language="Spanish")
    assert text and text != "So sorry about the wait! Your refund takes 5-10 business days."
