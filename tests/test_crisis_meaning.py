"""The meaning screen: fitted on labelled messages, it reads crises by their n-grams and embedding in any
language; how its reading changes the cascade's call (flag, clear, hold at possible); saved and loaded
with the model; and through the fitted seed triager, crises worded so no listed phrase fires."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _triage_support import fake_seed_dir, seed_model  # noqa: F401  (a fixture)
from fakes import HashEmbeddings

from copilot.triage.crisis import CrisisCall, Evidence, decide, with_meaning
from copilot.triage.meaning import (
    DOUBT_BELOW,
    ESCALATE_FROM,
    FIGURE_DOUBT_BELOW,
    FIGURE_FLAG_AT,
    FLAG_AT,
    MeaningRead,
    MeaningScreen,
    fit_meaning,
)
from copilot.triage.model import TriageModel
from copilot.triage.screen import load_lexicon
from copilot.triage.triager import Triager
from copilot.types import Inbound

LEXICON = load_lexicon()


@pytest.fixture(scope="module")
def model(fake_seed_dir: Path) -> TriageModel:  # noqa: F811
    return seed_model(fake_seed_dir)

TRAIN = [
    ("quiero morirme, ya no aguanto", "self-harm"),
    ("me quiero morir esta noche", "self-harm"),
    ("je veux mourir, je n'en peux plus", "self-harm"),
    ("ich will sterben, ich kann nicht mehr", "self-harm"),
    ("voglio morire, non ce la faccio più", "self-harm"),
    ("quero morrer, não aguento mais", "self-harm"),
    ("mi padre falleció ayer", "death of a member"),
    ("mon père est décédé hier", "death of a member"),
    ("il mio papà è deceduto ieri", "death of a member"),
    ("meu pai faleceu ontem", "death of a member"),
    ("¿cuándo llega mi pedido?", "none"),
    ("quand arrive ma commande ?", "none"),
    ("wann kommt meine Bestellung?", "none"),
    ("quando arriva il mio ordine?", "none"),
    ("quando chega o meu pedido?", "none"),
    ("how do I change my password", "none"),
    ("can I pay by card", "none"),
    ("el envío llegó roto", "none"),
]


def _fitted() -> MeaningScreen:
    texts = [t for t, _ in TRAIN]
    return fit_meaning(np.zeros((len(texts), 4), dtype=np.float32), texts, [label for _, label in TRAIN])


def test_the_screen_learns_from_character_ngrams_across_languages() -> None:
    screen = _fitted()
    reads = screen.read(np.zeros((3, 4), dtype=np.float32),
                        ["ya no aguanto, me quiero morir", "mi abuelo falleció", "¿cuándo llega el pedido?"])
    assert reads[0].p > reads[2].p and reads[1].p > reads[2].p
    assert reads[0].category == "self-harm"
    assert reads[1].category == "death of a member"


def test_the_span_is_the_sentence_that_reads_most_like_a_crisis() -> None:
    screen = _fitted()
    text = "Hola, tengo una duda sobre la factura del mes. Ya no aguanto, quiero morirme. Gracias por todo."
    assert screen._span(text, 0.0) == "Ya no aguanto, quiero morirme."


def test_fitting_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="crises and ordinary"):
        fit_meaning(np.zeros((2, 4), dtype=np.float32), ["a", "b"], ["none", "none"])


def _evidence(text: str, language: str, p: float) -> Evidence:
    return Evidence(LEXICON.screen(text, language), language, 0.0, 0.0, False, None, None,
                    MeaningRead(p, "self-harm", text))


def test_a_message_nothing_else_stopped_is_possible_on_its_meaning() -> None:
    text = "I have said goodbye to my cat and given my sister the spare key, you can close the account."
    evidence = _evidence(text, "en", 0.9)
    assert decide(text, evidence, 0.0, 0.05).level is None
    call = with_meaning(text, decide(text, evidence, 0.0, 0.05), evidence, "self-harm")
    assert call.level == "possible" and call.reason == "self-harm" and call.span == text
    assert "meaning" in (call.note or "")
    low = _evidence(text, "en", FLAG_AT - 0.01)
    assert with_meaning(text, decide(text, low, 0.0, 0.05), low).level is None


def test_a_weak_hit_read_as_everyday_is_cleared_with_a_note() -> None:
    text = "the fire alarm on the new hub keeps beeping, how do I reset it"
    evidence = _evidence(text, "en", DOUBT_BELOW / 2)
    before = CrisisCall("possible", "danger: fire", "fire alarm", None, 0.3)
    after = with_meaning(text, before, evidence)
    assert after.level is None and "everyday" in (after.note or "")
    assert with_meaning(text, before, _evidence(text, "en", DOUBT_BELOW)).level == "possible"


def test_outside_the_six_languages_a_phrase_hit_is_never_cleared() -> None:
    text = "ik wil niet meer leven"
    before = CrisisCall("possible", "self-harm", text, None, 0.3)
    assert with_meaning(text, before, _evidence(text, "nl", 0.0)).level == "possible"


def test_an_escalation_on_a_phrase_the_screen_doubts_is_held_at_possible_never_cleared_without_a_cue() -> None:
    text = "mia madre è morta lunedì, come disdico la sua linea?"
    crisis = CrisisCall("crisis", "death of a member", text, None, 0.5)
    doubted = (DOUBT_BELOW + ESCALATE_FROM) / 2
    held = with_meaning(text, crisis, _evidence(text, "it", doubted))
    assert held.level == "possible" and held.reason == "death of a member" and "person decides" in (held.note or "")
    assert with_meaning(text, crisis, _evidence(text, "it", DOUBT_BELOW / 2)).level == "possible"
    assert with_meaning(text, crisis, _evidence(text, "it", max(ESCALATE_FROM, 0.5))).level == "crisis"
    joke = "I'm going to kill myself if the hold music plays again lol"
    cleared = with_meaning(joke, CrisisCall("crisis", "self-harm", joke, None, 0.5),
                           _evidence(joke, "en", FIGURE_DOUBT_BELOW / 2))
    assert cleared.level is None and "figure of speech" in (cleared.note or "")


def test_a_figure_of_speech_cue_raises_the_bar_for_the_meaning_screen() -> None:
    text = "my team got wiped on the last boss again lol, any tips for the second phase?"
    between = (FLAG_AT + FIGURE_FLAG_AT) / 2
    assert with_meaning(text, CrisisCall(None, None, None, None, 0.0), _evidence(text, "en", between)).level is None
    earnest = "not joking: I have the pills counted out and tonight is the night"
    call = with_meaning(earnest, CrisisCall(None, None, None, None, 0.0), _evidence(earnest, "en", FLAG_AT))
    assert call.level == "possible"
    hit = "ese jefe final me ha matado 30 veces, me quiero morir jajaja"
    possible = CrisisCall("possible", "self-harm", "me quiero morir", None, 0.3)
    p = (DOUBT_BELOW + FIGURE_DOUBT_BELOW) / 2
    assert with_meaning(hit, possible, _evidence(hit, "es", p)).level is None
    assert with_meaning(hit, possible, _evidence(hit, "es", FIGURE_DOUBT_BELOW)).level == "possible"


def test_the_screen_is_saved_and_loaded_with_the_model(tmp_path: Path, model: TriageModel) -> None:
    assert model.meaning is not None
    model.save(tmp_path, "copy")
    loaded = TriageModel.load(tmp_path, "copy")
    assert loaded.meaning is not None
    texts = ["me quiero morir", "¿cuándo llega mi pedido?"]
    embedding = np.asarray(HashEmbeddings().embed_documents(texts), dtype=np.float32)
    assert [r.p for r in loaded.meaning.read(embedding, texts)] == pytest.approx(
        [r.p for r in model.meaning.read(embedding, texts)])


# Worded so that no listed phrase fires (checked below): conditional, passive and indirect statements.
UNLISTED = [
    ("Kündigt bitte alles, nach Freitag ist hier niemand mehr, der es braucht.", "self-harm"),
    ("Cancelem tudo, depois de sexta não vai haver mais ninguém aqui para usar.", "self-harm"),
    ("Disdite tutto, dopo venerdì qui non ci sarà più nessuno a usarlo.", "self-harm"),
    ("Mi novio revisa mi móvil y si ve que hablo con vosotros me castiga sin comer.", "abuse"),
]


@pytest.mark.parametrize(("text", "reason"), UNLISTED)
def test_the_seed_triager_flags_crises_no_phrase_lists(text: str, reason: str, model: TriageModel) -> None:
    from copilot.triage.language import detect_language

    assert not LEXICON.screen(text, detect_language(text)).fired
    triager = Triager(HashEmbeddings(), model)
    label = triager.triage(Inbound(text=text))
    assert label.crisis_level in ("crisis", "possible"), text
    assert label.crisis_reason == reason and label.crisis_span


def test_the_seed_triager_leaves_ordinary_messages_alone(model: TriageModel) -> None:
    triager = Triager(HashEmbeddings(), model)
    calm = ["When will my new card arrive?", "¿Puedo cambiar la dirección de envío de mi pedido?",
            "Est-ce que je peux payer en trois fois ?", "Wie ändere ich mein Passwort?"]
    assert [t.crisis_level for t in triager.triage_batch([Inbound(text=t) for t in calm])] == [None] * 4
