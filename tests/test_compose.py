"""The composed draft: facts chosen from the passage, the model's opening checked, fixed parts per language."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeChat, HashEmbeddings
from kb_helpers import write_kb
from test_draft import FixedTriager, labels

from copilot.compose import (
    after_greeting,
    answer_units,
    build_phrase_book,
    clean_opener,
    load_phrase_book,
    opener_problems,
    select_facts,
)
from copilot.config import Settings
from copilot.pipeline import build_pipeline
from copilot.types import Inbound, Passage, Triage

HUB = """First, look at the hub's LED:

- Solid green: online. Pull down in the app to refresh.
- Solid amber: the hub has power but no internet.
- Blinking amber: pairing mode; it has lost its network settings.

Then:

1. Check that your internet works on another device.
2. Unplug the hub for 30 seconds, plug it back in and wait 2 minutes.
3. On Wi-Fi, make sure the 2.4 GHz band is on and the password hasn't changed.
4. If it blinks red 3 times, hold the back button for 10 seconds to reset it."""
PASSAGE = Passage(id="kb-hub", chunk_id="kb-hub#0", title="Hub offline", text="Hub offline\n" + HUB, kind="fix",
                  official=True, score=0.8)


def test_only_the_named_situation_line_is_kept_and_comes_first() -> None:
    facts = select_facts(PASSAGE, HUB, "my hub is offline again, the light is solid amber", 1000)
    text = facts.render(inline=True)
    assert text.startswith("Solid amber: the hub has power but no internet.")
    assert "Blinking amber" not in text and "Solid green" not in text
    assert "1) Check that your internet works" in text and "2) Unplug the hub" in text
    assert "look at the hub's LED" not in text  # an introduction line is no fact


def test_a_step_the_customer_already_took_is_left_out() -> None:
    message = "Hub offline, solid amber. I already rebooted the hub twice, still nothing."
    facts = select_facts(PASSAGE, HUB, message, 1000)
    assert "Unplug the hub" not in facts.render(inline=True)
    assert any("Unplug the hub" in s for s in facts.skipped_tried)


def test_a_matching_condition_is_the_first_step() -> None:
    facts = select_facts(PASSAGE, HUB, "the hub blinks red 3 times after setup", 1000)
    assert facts.units[0].text.startswith("If it blinks red 3 times")


@pytest.mark.parametrize("budget", [60, 120, 200])
def test_facts_are_whole_sentences_within_the_budget(budget: int) -> None:
    facts = select_facts(PASSAGE, HUB, "hub offline", budget)
    text = facts.render(inline=True)
    assert len(text) <= budget + 10 and text.endswith(".")
    assert facts.units  # never nothing


def test_tables_become_labelled_rows() -> None:
    units = answer_units("| Light | Meaning |\n| --- | --- |\n| Solid amber | No internet |\n| Solid red | Fault |")
    assert [(u.label, u.text) for u in units] == [("Solid amber", "No internet"), ("Solid red", "Fault")]


@pytest.mark.parametrize(("opening", "reason"), [
    ("Dear [Customer's Name], I hope this message finds you well.", "letter template"),
    ("Sorry about that, we're working on a fix and it will be available soon.", "promises"),
    ("Sorry your hub keeps dropping out, that must be", "cut off"),
    ("Sorry, I didn't understand your message.", "did not understand"),
    ("Sorry, I'm not sure what you're trying to say.", "did not understand"),
    ("I'm sorry, but I can't assist with that.", "refuses"),
    ("We will refund you in full.", "offers refund"),
])
def test_unusable_openings_are_named(opening: str, reason: str) -> None:
    problems = opener_problems(opening, message="my hub is offline", language="en")
    assert any(word in " ".join(problems) for word in reason.split()[-1:]), problems


@pytest.mark.parametrize(("opening", "language"), [
    ("Lo siento, pero no puedo ayudarte con eso.", "es"),
    ("Hola, lo siento, pero no puedo seguir la estructura de la respuesta proporcionada.", "es"),
    ("Je suis désolé, mais je ne peux pas vous aider avec cette question.", "fr"),
    ("Es tut mir leid, aber ich kann dir dabei nicht helfen.", "de"),
    ("Desculpe, mas não posso ajudar com isso.", "pt"),
    ("Mi dispiace, ma non posso aiutarti con questo.", "it"),
])
def test_refusals_in_other_languages_are_refused(opening: str, language: str) -> None:
    problems = opener_problems(opening, message="¿puedo vacunarme?", language=language)
    assert any("refuses" in p for p in problems), problems


def test_a_good_opening_passes_and_a_wrong_language_does_not() -> None:
    assert opener_problems("Sorry your hub keeps going offline, that's really frustrating.",
                           message="my hub is offline AGAIN", language="en") == []
    problems = opener_problems("Sorry your hub keeps going offline, that's really frustrating.",
                               message="mi hub está desconectado otra vez", language="es")
    assert any("Spanish" in p for p in problems)


def test_the_opening_is_cleaned_of_labels_greetings_and_restatements() -> None:
    raw = 'Opening: "Hi Sam, sorry your order arrived broken, that is awful. The box was crushed in transit."'
    assert clean_opener(raw) == "sorry your order arrived broken, that is awful."


def test_the_phrase_book_has_every_part_in_six_languages() -> None:
    book = load_phrase_book()
    for lang in ("en", "es", "fr", "de", "pt", "it"):
        for key in ("no_answer", "crisis", "offer", "lead", "ack_complaint", "private"):
            assert book.get(lang, key), (lang, key)
    assert book.language("xx") == "en"
    with pytest.raises(ValueError, match="lacks"):
        build_phrase_book({"en": {"greeting": "Hi"}})


def make(tmp_path: Path, replies: list[str], triage: Triage, entries: dict[str, str] | None = None):
    settings = Settings(data_dir=tmp_path / "data", kb_dir=write_kb(tmp_path, entries), draft_mode="compose")
    pipe = build_pipeline(settings, chat=FakeChat(replies=replies), embedder=HashEmbeddings(),
                          triager=FixedTriager(triage))
    pipe.ingest()
    return pipe


def test_a_composed_draft_is_the_opening_plus_the_passage_steps(tmp_path: Path) -> None:
    pipe = make(tmp_path, ["Sorry your bulb won't join the Wi-Fi, that's a frustrating start."], labels())
    draft = pipe.drafter.draft(Inbound(text="my bulb will not connect to the wifi during setup, so annoying",
                                       channel="facebook"))
    assert draft.text.startswith("Sorry your bulb won't join the Wi-Fi")
    assert "Make sure your phone is on the 2.4 GHz network" in draft.text
    assert draft.cited_ids == ("kb-wifi",) and draft.status == "pending" and not draft.needs_attention


def test_a_letter_template_opening_is_retried_then_replaced(tmp_path: Path) -> None:
    pipe = make(tmp_path, ["Dear [Customer's Name], I hope this message finds you well."], labels())
    draft = pipe.drafter.draft(Inbound(text="my bulb will not connect to the wifi during setup", channel="facebook"))
    assert "Dear" not in draft.text and "[" not in draft.text
    assert draft.text.startswith("I'm really sorry about this")
    assert any("letter template" in f for f in draft.flags)


def test_a_spanish_message_gets_spanish_fixed_parts(tmp_path: Path) -> None:
    pipe = make(tmp_path, ["Lo sentimos mucho, que la bombilla no se conecte es muy frustrante."],
                labels(language="es"))
    draft = pipe.drafter.draft(Inbound(text="mi bombilla no se conecta al wifi durante la configuración",
                                       channel="chat"))
    assert draft.text.startswith("Lo sentimos mucho")
    rest = draft.text.removeprefix("Lo sentimos mucho, que la bombilla no se conecte es muy frustrante.")
    assert "nuestro equipo" in rest or "Aquí estamos" in rest or "ayudarte" in rest
    assert not any(english in rest for english in ("We're here", "our team", "Here's what"))


def test_two_unanswered_customers_get_different_texts(tmp_path: Path) -> None:
    pipe = make(tmp_path, ["Sorry your parcel arrived crushed, what a disappointment.",
                           "Sorry the delivery driver left your box in the rain, that's not okay."], labels())
    first = pipe.drafter.draft(Inbound(text="zzqx parcel crushed qqq", channel="chat"))
    second = pipe.drafter.draft(Inbound(text="zzqx driver rain box qqq", channel="chat"))
    assert first.knowledge_gap and second.knowledge_gap
    assert first.text != second.text and "passed it to our team" in first.text


def test_a_rewrite_that_fails_says_why_in_words_for_the_agent(tmp_path: Path) -> None:
    from copilot.errors import ProviderError

    pipe = make(tmp_path, [("Keep every fact, step and link exactly as it is. Add no new facts, promises or "
                           "personal data.")], labels())
    with pytest.raises(ProviderError) as failure:
        pipe.drafter.rewrite("Sorry about that! Reply here and we'll help.", "warmer", channel="chat")
    message = str(failure.value)
    assert "draft is unchanged" in message and "Edit the draft by hand" in message
    assert "write only the reply" not in message.lower()  # words for the model never reach the agent


def test_a_translation_in_the_wrong_language_is_refused(tmp_path: Path) -> None:
    from copilot.errors import ProviderError

    pipe = make(tmp_path, ["Sorry about that! Reply here and we will help you with it."], labels())
    with pytest.raises(ProviderError, match="language asked for"):
        pipe.drafter.rewrite("Sorry about that! Reply here and we'll help.", "translate", channel="chat",
                             language="Spanish")


def test_a_knowledge_base_without_a_voice_entry_gets_a_neutral_sign_off(tmp_path: Path) -> None:
    from kb_helpers import ENTRIES

    no_voice = {path: text for path, text in ENTRIES.items() if "kb-brand-voice" not in text}
    pipe = make(tmp_path, ["Thanks for asking, happy to look into this with you."],
                labels("question", sentiment="neutral"), no_voice)
    draft = pipe.drafter.draft(Inbound(text="zzqx what is the qqq policy", channel="email"))
    assert draft.text.rstrip().endswith("The support team") and "Lumio" not in draft.text
    assert "Holding message" not in draft.text  # the crisis policy is never drafted from as an answer


@pytest.mark.parametrize(("text", "problem"), [
    ("Dear [Customer's Name], I hope this message finds you well. Reply here.", "letter template"),
    ("Sorry about that. Set the Wi-Fi channel to 1 or 11 instead of", "cut off"),
    ("Sorry about that. We're working on fixing it and will make it available soon.", "unsupported commitment"),
    ("The bulb flickers, buzzes or keeps going offline when it's on a dimmer switch. Reply here.",
     "restates the problem"),
])
def test_the_reviewer_check_names_what_a_reviewer_would_rewrite(text: str, problem: str) -> None:
    from copilot.evaluation.scorers import reviewer_check

    source = ("The bulb flickers, buzzes or keeps going offline when it's on a dimmer switch.\n\n"
              "1. Turn the dimmer up to 100%.")
    score = reviewer_check(text, "my bulb flickers on the dimmer, fix it", [source])
    assert score.passed is False and problem in score.detail
    good = reviewer_check("Sorry about the flicker! Turn the dimmer up to 100%. Reply here if it continues.",
                          "my bulb flickers on the dimmer, fix it", [source])
    assert good.passed is True


def test_a_spanish_crisis_gets_the_holding_message_in_spanish(tmp_path: Path) -> None:
    pipe = make(tmp_path, ["unused"], labels("crisis", crisis=True, crisis_level="crisis",
                                             crisis_reason="self-harm", language="es"))
    draft = pipe.drafter.draft(Inbound(text="ya no quiero seguir viviendo", channel="chat"))
    assert draft.status == "escalated" and "Lo sentimos muchísimo" in draft.text


def test_an_opening_that_acknowledges_nothing_is_refused() -> None:
    book = load_phrase_book()
    problems = opener_problems("No hay personas que deberían vacunarse.", message="¿Hay personas que no deberían "
                               "vacunarse?", language="es", ack_words=book.get("es", "ack_words"))
    assert any("acknowledge" in p for p in problems)


@pytest.mark.parametrize(("opener", "language", "message", "expected"), [
    ("Thanks for telling us.", "en", "", "thanks for telling us."),
    ("Sorry the hub is still amber.", "en", "", "sorry the hub is still amber."),
    ("I'm sorry to hear that.", "en", "", "I'm sorry to hear that."),
    ("Lumio hubs can be tricky.", "en", "my new Lumio hub is amber", "Lumio hubs can be tricky."),
    ("SMS codes can be slow.", "en", "", "SMS codes can be slow."),
    ("Gracias por escribirnos.", "es", "", "gracias por escribirnos."),
    ("Merci pour votre message.", "fr", "", "merci pour votre message."),
    ("Danke für Ihre Nachricht.", "de", "", "Danke für Ihre Nachricht."),
])
def test_the_opening_reads_on_after_the_greeting(opener: str, language: str, message: str, expected: str) -> None:
    assert after_greeting(opener, language, message) == expected


def test_a_sign_off_line_is_not_a_cut_off_sentence() -> None:
    from copilot.evaluation.scorers import reviewer_check

    signed = "Hola, gracias por tu pregunta.\n\nPuedes vacunarte.\n\nEl equipo de soporte"
    assert reviewer_check(signed, "¿puedo vacunarme?", []).passed is True
    cut = "Hola, gracias por tu pregunta.\n\nPuedes vacunarte si tu médico lo\n\nEl equipo de soporte"
    assert "cut off" in reviewer_check(cut, "¿puedo vacunarme?", []).detail


def test_the_neutral_sign_off_is_in_the_customer_language(tmp_path: Path) -> None:
    from kb_helpers import ENTRIES

    no_voice = {path: text for path, text in ENTRIES.items() if "kb-brand-voice" not in text}
    pipe = make(tmp_path, ["Merci pour votre question, je regarde ça avec vous."],
                labels("question", sentiment="neutral", language="fr"), no_voice)
    draft = pipe.drafter.draft(Inbound(text="zzqx quelle est la politique qqq", channel="email"))
    assert draft.text.rstrip().endswith("L'équipe support")
    assert pipe.drafter.signature("xx") == "The support team"


SPANISH_STEPS = ("1) Asegúrate de que tu teléfono está en la red de 2.4 GHz. 2) Mantén pulsado el reinicio de la "
                 "bombilla 5 segundos hasta que parpadee en azul. 3) Vuelve a añadirla en la app.")


def _translating(tmp_path: Path, translation: str):
    from fakes import FakeChat

    class ByPrompt(FakeChat):
        def _next(self, messages, kwargs):  # type: ignore[no-untyped-def]
            self.seen.append(list(messages))
            prompt = str(messages[-1].content)
            if "Translate the text below" in prompt:
                return translation
            if "Translate this customer message" in prompt:
                return "my bulb will not connect to the wifi during setup"
            return "Lo sentimos mucho, que la bombilla no se conecte es muy frustrante."

    settings = Settings(data_dir=tmp_path / "data", kb_dir=write_kb(tmp_path), draft_mode="compose",
                        translate_facts=True)
    pipe = build_pipeline(settings, chat=ByPrompt(), embedder=HashEmbeddings(),
                          triager=FixedTriager(labels(language="es")))
    pipe.ingest()
    return pipe.drafter.draft(Inbound(text="mi bombilla no se conecta al wifi durante la configuración",
                                      channel="chat"))


def test_translated_facts_replace_the_english_when_they_keep_every_number(tmp_path: Path) -> None:
    draft = _translating(tmp_path, SPANISH_STEPS)
    assert "Asegúrate de que tu teléfono está en la red de 2.4 GHz" in draft.text
    assert "Make sure" not in draft.text and "en inglés" not in draft.text
    assert "Make sure your phone is on the 2.4 GHz network" in draft.grounding_text
    assert any("translated from the knowledge base" in f for f in draft.flags)


def test_a_translation_that_adds_a_number_keeps_the_english_with_a_note(tmp_path: Path) -> None:
    draft = _translating(tmp_path, SPANISH_STEPS.replace("5 segundos", "5 a 10 segundos"))
    assert "Make sure your phone is on the 2.4 GHz network" in draft.text and "en inglés" in draft.text
    assert draft.grounding_text == ""
    assert any("adds numbers: 10" in f for f in draft.flags)


@pytest.mark.parametrize(("translated", "problem"), [
    ("Reinicia el hub durante 5 segundos y espera a que la luz se ponga verde.", None),
    ("Reinicia el hub durante unos segundos y espera a que la luz se ponga verde.", "lost numbers"),
    ("Reinicia el hub durante 5 segundos y espera a que la luz se ponga", "cut off"),
    ("Restart the hub for 5 seconds and then wait until the light is green.", "not in Spanish"),
    ("Reinicia el hub durante 5 segundos.\nY espera a que la luz se ponga verde.", "changed the lines"),
])
def test_translation_problems(translated: str, problem: str | None) -> None:
    from copilot.compose import translation_problems

    source = "Restart the hub for 5 seconds and wait until the light turns green."
    problems = translation_problems(source, translated, "es")
    assert (not problems) if problem is None else any(problem in p for p in problems), problems


@pytest.mark.parametrize("opening", ["Sorry, I didn't provide any opening in English.",
                                     "Hi, sorry, I did not provide an opening line for your message."])
def test_an_opening_about_its_own_instructions_is_refused(opening: str) -> None:
    problems = opener_problems(opening, message="still amber after the restart", language="en")
    assert any("did not understand" in p for p in problems)
