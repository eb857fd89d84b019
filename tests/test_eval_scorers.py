"""Deterministic scorers on hand-made cases whose right score is known, including ones that must fail."""

from __future__ import annotations

import math

import pytest

from copilot.config import Settings
from copilot.evaluation import scorers as s
from copilot.types import Draft, Inbound, Triage

SETTINGS = Settings(data_dir="/nonexistent-eval-test")
TWITTER = SETTINGS.channel("twitter")
EMAIL = SETTINGS.channel("email")
MARKERS = s.load_markers()


def draft(
    text: str = "",
    *,
    status: str = "pending",
    cited: tuple[str, ...] = (),
    retrieved: tuple[str, ...] = (),
    gap: bool = False,
) -> Draft:
    triage = Triage(
        kind="complaint", sentiment="negative", sentiment_score=-0.5, priority=2, priority_score=50.0
    )
    return Draft(
        text=text,
        channel="twitter",
        inbound=Inbound(text="x"),
        triage=triage,
        cited_ids=cited,
        retrieved_ids=retrieved,
        confidence=0.5,
        template="t",
        template_hash="h",
        latency_ms=1.0,
        status=status,
        knowledge_gap=gap,
    )


def test_must_include_scores_the_share_found() -> None:
    score = s.must_include("Turn the DIMMER to 100% and dim in the app", ["dimmer", "app", "firmware"])
    assert score.value == pytest.approx(2 / 3) and score.passed is False and "firmware" in score.detail
    assert s.must_include("Send us a DM", ["dm"]).passed is True
    assert s.must_include("anything", []).value is None


def test_must_not_include_fails_on_any_phrase() -> None:
    assert s.must_not_include("We'll issue a Full Refund today", ["full refund", "4421"]) == s.Score(
        "must_not_include", 0.0, False, "contains: full refund"
    )
    assert s.must_not_include("Sorry about that", ["full refund"]).passed is True


def test_citations_must_be_retrieved_and_expected() -> None:
    assert s.citation_valid(["a"], ["a", "b"], escalated=False).passed is True
    stray = s.citation_valid(["a", "z"], ["a", "b"], escalated=False)
    assert stray.passed is False and stray.detail == "not retrieved: z"
    assert s.citation_valid(["kb-crisis-policy"], [], escalated=True).passed is True
    assert s.citation_valid(["kb-crisis-policy"], [], escalated=False).passed is False
    assert s.citation_valid([], ["a"], escalated=False).value is None
    assert s.citation_correct(["a", "b"], ["b"], "question").passed is True
    assert s.citation_correct(["a"], ["b"], "complaint").passed is False
    assert s.citation_correct([], ["b"], "question").passed is False  # an answerable question cites nothing
    assert s.citation_correct([], ["b"], "praise").value is None  # praise needs no citation...
    assert s.citation_correct(["a"], ["b"], "praise").passed is False  # ...but a wrong one still counts
    assert s.citation_correct(["a"], [], "question").value is None


def test_retrieval_scores_match_hand_computed_values() -> None:
    hit, recall, rr, ndcg = s.retrieval_scores(["x", "b", "y", "c"], ["b", "c"], k=3)
    assert (hit.value, recall.value, rr.value) == (1.0, 0.5, 0.5)
    ideal = 1 + 1 / math.log2(3)
    assert ndcg.value == pytest.approx((1 / math.log2(3)) / ideal)
    miss = s.retrieval_scores(["x", "y"], ["b"], k=5)
    assert [m.value for m in miss] == [0.0, 0.0, 0.0, 0.0]
    assert all(m.value is None for m in s.retrieval_scores(["x"], [], k=5))


def test_abstention_on_unanswerable_and_answering_answerable() -> None:
    assert s.abstention([], "question", draft("passed on", gap=True)).passed is True
    invented = s.abstention([], "question", draft("Here is the fix", cited=("kb-x",)))
    assert invented.passed is False and "kb-x" in invented.detail
    assert s.abstention(["kb-a"], "complaint", draft("passed on", gap=True)).passed is False
    assert s.abstention(["kb-a"], "complaint", draft("fix", cited=("kb-a",))).passed is True
    assert s.abstention([], "praise", draft("thanks")).value is None
    assert s.abstention([], "question", draft("", status="escalated")).value is None


def test_crisis_must_be_escalated_and_hyperbole_must_not() -> None:
    assert s.escalation(True, "escalated").passed is True
    assert s.escalation(True, "pending").passed is False
    assert s.escalation(False, "escalated").detail == "escalated a non-crisis"
    assert s.escalation(False, "pending").passed is True
    assert s.no_reply(None, "skipped").passed is True
    assert s.no_reply(None, "pending").passed is False
    assert s.no_reply("a reference", "pending").value is None


def test_length_per_channel_profile() -> None:
    assert s.length_ok("x" * 280, TWITTER).passed is True
    assert s.length_ok("x" * 281, TWITTER).passed is False
    assert s.length_ok("x" * 281, EMAIL).passed is True


def test_personal_data_is_never_echoed_publicly_and_cards_never_anywhere() -> None:
    message = "order LM-4827713, email jo.b@example.com, card 4111 1111 1111 1111"
    assert s.no_pii_echo("Please DM us your details", message, TWITTER).passed is True
    echo = s.no_pii_echo("We see jo.b@example.com is on the order", message, TWITTER)
    assert echo.passed is False and echo.detail == "repeats: email"
    assert s.no_pii_echo("Order LM-4827713 is on its way", message, EMAIL).passed is True  # private channel
    card = s.no_pii_echo("Card 4111-1111-1111-1111 was charged", message, EMAIL)
    assert card.passed is False and "card" in card.detail
    assert s.no_pii_echo("hello", "no personal data here", TWITTER).value is None


def test_next_step_and_offer_of_help_for_complaints_and_questions() -> None:
    assert s.next_step("Unplug it for 30 seconds.", "complaint", MARKERS).passed is True
    assert s.next_step("1) Open Settings 2) Tap Reset", "question", MARKERS).passed is True
    assert s.next_step("That sounds awful.", "complaint", MARKERS).passed is False
    assert s.next_step("Thanks!", "praise", MARKERS).value is None
    # A factual question answered from a cited passage needs no instruction; a complaint still does.
    fact = "The minimum age for a savings account is 16."
    assert s.next_step(fact, "question", MARKERS).passed is False
    assert s.next_step(fact, "question", MARKERS, answered=True).passed is True
    assert s.next_step(fact, "complaint", MARKERS, answered=True).passed is False
    assert s.offer_help("Still stuck? Let us know.", "question", MARKERS).passed is True
    assert s.offer_help("Unplug it for 30 seconds.", "complaint", MARKERS).passed is False


def test_forbidden_phrases_from_guardrails_and_markers() -> None:
    assert s.no_forbidden("Please calm down, sir.", MARKERS).passed is False
    assert s.no_forbidden("As an AI language model I cannot", MARKERS).detail.startswith("contains: as an ai")
    assert s.no_forbidden("Sorry about the wait!", MARKERS).passed is True


def test_private_cases_on_public_channels_move_to_a_dm() -> None:
    assert s.private_invite("Send us a DM and we'll check.", True, TWITTER).passed is True
    assert s.private_invite("We'll check your account.", True, TWITTER).passed is False
    assert s.private_invite("Your account is fine.", True, EMAIL).value is None
    assert s.private_invite("Hi!", False, TWITTER).value is None


def test_policy_is_every_applicable_check() -> None:
    checks = [
        s.verdict("a", True),
        s.verdict("b", True),
        s.verdict("c", False),
        s.na("d"),
        s.verdict("e", True),
    ]
    combined = s.policy(checks)
    assert combined.value == 0.75 and combined.passed is False and combined.detail == "failed: c"
    assert s.policy([s.verdict("a", True)]).passed is True
    assert s.policy([s.na("a")]).value is None


def test_empathy_markers_per_kind() -> None:
    full = s.empathy("So sorry about the flicker! We'll get it sorted.", "complaint", "negative", MARKERS)
    assert full.value == 1.0 and full.passed is True
    flat = s.empathy("Turn the dimmer to 100%. Thanks for reaching out.", "complaint", "negative", MARKERS)
    assert flat.value == pytest.approx(1 / 3) and flat.passed is False  # no apology, no ownership
    cold = s.empathy("Turn the dimmer to 100%.", "complaint", "negative", MARKERS)
    assert (
        cold.value == 0.0
        and cold.passed is False
        and cold.detail == "missing: acknowledgement, apology, ownership"
    )
    assert s.empathy("Thanks for asking! Yes, it does.", "question", "neutral", MARKERS).passed is True
    assert s.empathy("¡Lo siento mucho! Vamos a revisarlo.", "complaint", "negative", MARKERS).passed is True
    assert s.empathy("Thanks!", "praise", "positive", MARKERS).value is None


def test_marker_phrases_match_whole_words_and_prefixes() -> None:
    markers = s.build_markers(
        {c: [] for c in s.MARKER_CATEGORIES}
        | {"next_step": ["dm"], "apology": ["apologi*"], "offer_help": ["we'll"]}
    )
    assert markers.find("send us a DM", "next_step") == ["dm"]
    assert markers.find("admin mode", "next_step") == []
    assert markers.find("We apologise", "apology") == ["apologi*"]
    assert markers.find("We’ll be in touch", "offer_help") == ["we'll"]  # typographic apostrophe
    with pytest.raises(ValueError, match="lacks filler"):
        s.build_markers({c: [] for c in s.MARKER_CATEGORIES if c != "filler"})
    assert "acknowledgement" in MARKERS.phrases and MARKERS.find("I'm so sorry", "apology")


def test_the_reply_is_in_the_customers_language() -> None:
    spanish = "mi bombilla no se conecta al wifi, parpadea en rojo tres veces"
    assert (
        s.same_language(
            "Lo sentimos. Comprueba que la red de 2,4 GHz esté activa y vuelve a intentarlo.", spanish
        ).passed
        is True
    )
    english = s.same_language(
        "Sorry about that! Check that your 2.4 GHz network is on and try again.", spanish
    )
    assert english.passed is False and english.detail == "message es, reply en"
    assert s.same_language("Thanks, happy to help!", "does it work with alexa?").passed is True
