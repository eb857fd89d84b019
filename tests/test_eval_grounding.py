"""Groundedness on hand-made drafts: supported sentences pass, invented ones and new numbers fail."""

from __future__ import annotations

import pytest
from fakes import HashEmbeddings

from copilot.evaluation.grounding import Grounder

PASSAGES = {
    "kb-wifi": (
        "Bulb won't connect to Wi-Fi\nMake sure your phone is on the 2.4 GHz network. "
        "Hold the bulb's reset for 5 seconds until it blinks blue. Then add it again in the app."
    ),
    "kb-refund": (
        "How do refunds work?\nRefunds go back to the original payment method within 5-10 business days."
    ),
}
MESSAGE = "my bulb won't join the wifi during setup, so annoying"


@pytest.fixture()
def grounder() -> Grounder:
    return Grounder(HashEmbeddings(), extra_filler=("Lumio", "The Lumio Support Team"))


def test_sentences_taken_from_the_cited_passage_are_supported(grounder: Grounder) -> None:
    text = (
        "@sam So sorry about that! Make sure your phone is on the 2.4 GHz network, then hold the reset for "
        "5 seconds until it blinks blue. We're here if you need anything else."
    )
    score, detail = grounder.score(text, {"kb-wifi": PASSAGES["kb-wifi"]}, MESSAGE)
    assert score.value == 1.0 and score.passed is True
    claims = [d for d in detail if d.claim]
    assert len(claims) == 1 and claims[0].coverage == 1.0 and claims[0].best_id == "kb-wifi"
    # Acknowledgement and offer carry no claim.
    assert [d.claim for d in detail] == [False, True, False]


def test_an_invented_sentence_fails(grounder: Grounder) -> None:
    text = (
        "Sorry about that! Make sure your phone is on the 2.4 GHz network. "
        "Our engineers will replace your router with a premium mesh system at no cost."
    )
    score, detail = grounder.score(text, {"kb-wifi": PASSAGES["kb-wifi"]}, MESSAGE)
    assert score.value == 0.5 and score.passed is False
    assert "premium mesh system" in score.detail
    invented = detail[-1]
    assert invented.claim and not invented.supported and invented.coverage < 0.6


def test_a_number_no_source_gives_fails_even_when_the_words_match(grounder: Grounder) -> None:
    text = "Hold the bulb's reset for 15 seconds until it blinks blue."
    score, detail = grounder.score(text, {"kb-wifi": PASSAGES["kb-wifi"]}, MESSAGE)
    assert score.passed is False and detail[0].new_numbers == ("15",)
    assert "numbers 15" in score.detail
    # The customer's own numbers may be repeated.
    ok, _ = grounder.score(
        "Hold the reset for 15 seconds.",
        {"kb-wifi": PASSAGES["kb-wifi"]},
        "I held the reset for 15 seconds already",
    )
    assert ok.passed is True


def test_facts_without_any_cited_passage_are_unsupported(grounder: Grounder) -> None:
    score, _ = grounder.score(
        "Refunds go back to the original payment method within 5-10 business days.", {}, "where is my refund"
    )
    assert score.value == 0.0 and score.passed is False
    # ...and the same sentence with its passage cited is supported.
    cited, _ = grounder.score(
        "Refunds go back to the original payment method within 5-10 business days.",
        {"kb-refund": PASSAGES["kb-refund"]},
        "where is my refund",
    )
    assert cited.passed is True


def test_a_reply_with_no_claims_is_fully_grounded(grounder: Grounder) -> None:
    text = "@zero.waste.zoe Thanks for asking, happy to help. We'll come back to you with a proper answer."
    score, detail = grounder.score(text, {}, "is the packaging recyclable??")
    assert score.value == 1.0 and score.detail == "no factual claims"
    assert not any(d.claim for d in detail)
    assert grounder.score("", {}, "hi")[0].value is None


def test_embedding_similarity_alone_can_support_a_sentence() -> None:
    # With lexical coverage switched off, support comes only from the cosine to a passage sentence.
    cosine_only = Grounder(HashEmbeddings(), min_coverage=1.01, min_cosine=0.6)
    near = "Hold the reset of the bulb for 5 seconds until it blinks blue"
    far = "Our warehouse ships parcels by courier overnight"
    near_score, near_detail = cosine_only.score(near, {"kb-wifi": PASSAGES["kb-wifi"]}, "help")
    far_score, far_detail = cosine_only.score(far, {"kb-wifi": PASSAGES["kb-wifi"]}, "help")
    assert near_detail[0].cosine >= 0.6 and near_score.passed is True
    assert far_detail[0].cosine < 0.6 and far_score.passed is False


def test_a_reply_in_another_language_than_its_passages_is_not_scored(grounder: Grounder) -> None:
    text = "Lo sentimos mucho. Comprueba que la banda de 2,4 GHz esté activa y vuelve a añadir la bombilla."
    score, detail = grounder.score(text, {"kb-wifi": PASSAGES["kb-wifi"]}, "mi bombilla no se conecta")
    assert score.value is None and "languages differ" in score.detail and detail == []
