"""The crisis screen and the cascade's decision, without the embedder: every category in six languages,
figures of speech, ordinary urgent problems, titles, markup, and the levels the cascade gives."""

from __future__ import annotations

import pytest

from copilot.errors import ConfigError
from copilot.triage.crisis import Evidence, decide
from copilot.triage.language import detect_language
from copilot.triage.screen import fold, load_lexicon

LEXICON = load_lexicon()

CRISES = [
    # (text, category the screen must name)
    ("If they cut my internet again I'll end it. I mean it.", "self-harm"),
    ("Honestly nobody would notice if I was gone, so cancel whatever you like.", "self-harm"),
    ("Si me vuelven a cortar la luz, voy a acabar con todo.", "self-harm"),
    ("Je veux plus vivre, résiliez tout, ça m'est égal.", "self-harm"),
    ("Ich will einfach nicht mehr leben, kündigen Sie alles.", "self-harm"),
    ("Não quero mais viver, podem cancelar a minha conta.", "self-harm"),
    ("Non voglio più vivere, chiudete pure il mio conto.", "self-harm"),
    ("Please close my gym membership. I just swallowed all of my sleeping pills so it doesn't matter.", "overdose"),
    ("Me he tomado todas las pastillas del bote, cancelad mi pedido.", "overdose"),
    ("J'ai avalé toute la boîte de somnifères, annulez ma commande.", "overdose"),
    ("Ich habe eine ganze Packung Schlaftabletten genommen, bitte storniert das Abo.", "overdose"),
    ("Tomei todos os comprimidos da caixa, cancelem o pedido.", "overdose"),
    ("Ho preso tutte le pastiglie della scatola, annullate l'ordine.", "overdose"),
    ("Can you stop posting statements? My husband hits me when he sees the bills.", "abuse"),
    ("Mi marido me pega si ve las facturas, no las enviéis a casa.", "abuse"),
    ("Mon mari me frappe quand il voit les relevés, ne les envoyez plus.", "abuse"),
    ("Mein Mann schlägt mich, wenn er die Rechnungen sieht.", "abuse"),
    ("Meu marido me bate quando vê as faturas, não mandem mais.", "abuse"),
    ("Mio marito mi picchia quando vede le bollette, non mandatele più.", "abuse"),
    ("If my refund isn't here by Monday I'm coming to your branch with a knife.", "threat"),
    ("Si no me devolvéis el dinero, voy a la tienda con un cuchillo.", "threat"),
    ("Je vais le buter, ce livreur, je sais où il habite.", "threat"),
    ("Ich bring euch alle um, wenn das Paket wieder fehlt.", "threat"),
    ("Vou matar o entregador se ele voltar aqui.", "threat"),
    ("Se il corriere torna, lo ammazzo.", "threat"),
    ("A man in your game chat keeps asking my 11 year old daughter for photos and to keep it secret.", "child at risk"),
    ("Mi hijo de 3 años se ha tragado una pila de botón del mando.", "child at risk"),
    ("Un adulte demande à ma fille de 10 ans des photos sur votre jeu.", "child at risk"),
    ("Unser 5-jähriger Sohn ist in Ihrer Filiale verschwunden!", "child at risk"),
    ("Minha filha de 4 anos engoliu uma bateria de botão.", "child at risk"),
    ("Mio figlio di 2 anni ha ingoiato una batteria a bottone.", "child at risk"),
    ("The charger caught fire on my desk and the plug melted.", "danger: fire"),
    ("There's a strong smell of gas since your engineer left.", "danger: gas"),
    ("I got an electric shock from the hub's power adapter.", "danger: electric"),
    ("My dad fell in the bathroom and can't get up, the alarm button does nothing.", "danger: medical"),
    ("Huele a gas en la cocina desde que vino el técnico.", "danger: gas"),
    ("Ça sent le gaz dans tout l'appartement.", "danger: gas"),
    ("Es riecht stark nach Gas in der Küche.", "danger: gas"),
    ("Tem um cheiro forte de gás na cozinha.", "danger: gas"),
    ("C'è puzza di gas in tutta la casa.", "danger: gas"),
    ("Sad news: our forum moderator Dave passed away last night.", "death of a member"),
    ("Mi madre, titular de la cuenta, falleció la semana pasada.", "death of a member"),
    ("Ma mère est décédée, comment fermer son compte ?", "death of a member"),
    ("Meine Mutter ist verstorben, wie kündige ich ihren Vertrag?", "death of a member"),
    ("Minha mãe faleceu, como encerro a conta dela?", "death of a member"),
    ("Mia madre è mancata, come chiudo il suo conto?", "death of a member"),
]

CALM = [
    "This update is killing me lol, where did dark mode go?",
    "The new pumpkin pie is to die for 😍",
    "RIP my wallet after this sale",
    "The patch murdered my framerate, 20 fps now",
    "I'm dead 😂 who writes your tweets",
    "My phone battery died on the train, can I still board with the e-ticket?",
    "The ATM swallowed my card this morning, how do I get it back?",
    "My card was stolen yesterday, please block it",
    "Someone hacked my account and changed the email",
    "Do you still have Suicide Squad on Blu-ray?",
    "The Killer Queen perfume arrived broken",
    "Me muero de risa con vuestro anuncio",
    "Je suis mort de rire, votre pub est géniale",
    "Ich lach mich tot über eure Werbung",
    "Tô morrendo de rir com o anúncio de vocês",
    "Sto morendo dal ridere con la vostra pubblicità",
    "My mum is going to kill me when she sees this bill",
    "Would it kill you to answer the phone?",
    "Your customer service is dead. Three hours on hold.",
    "That price is criminal",
]


@pytest.mark.parametrize(("text", "category"), CRISES)
def test_every_category_fires_in_every_language(text: str, category: str) -> None:
    screened = LEXICON.screen(text, detect_language(text))
    best = screened.best()
    assert best is not None, text
    assert best.category == category
    assert best.span and best.span.strip(" …") in text or best.span.strip(" …")[:20] in text


@pytest.mark.parametrize("text", CALM)
def test_figures_of_speech_urgent_problems_and_titles_do_not_fire_strongly(text: str) -> None:
    screened = LEXICON.screen(text, detect_language(text))
    assert not screened.strong, [h.span for h in screened.hits]


def test_idioms_are_remembered_as_the_reason_to_clear() -> None:
    screened = LEXICON.screen("The new burger is to die for", "en")
    assert not screened.fired
    assert ("idiom", "to die for") in screened.cleared_by


def test_a_quoted_title_drops_a_weak_hit() -> None:
    screened = LEXICON.screen("Do you have 'Death on the Nile' in paperback?", "en")
    assert not screened.fired
    assert screened.cleared_by and screened.cleared_by[0][0] == "title"


def test_markup_is_blanked_and_offsets_still_quote_the_customer() -> None:
    text = "<p>I <b>want</b> to <i>die</i>, cancel my plan</p>"
    folded = fold(text)
    assert len(folded) == len(text)
    assert "<" not in folded
    screened = LEXICON.screen("I want <b>to die</b>, cancel my plan", "en")
    assert screened.strong


def test_accents_and_curly_apostrophes_are_folded() -> None:
    assert fold("Ça m’énerve") == "ca m'enerve"


def test_a_bad_team_file_names_the_file(tmp_path) -> None:
    bad = tmp_path / "team.yaml"
    bad.write_text("categories:\n  self-harm:\n    strong:\n      en: ['(unclosed']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="team.yaml"):
        load_lexicon(str(bad))


def test_a_team_file_adds_phrases(tmp_path) -> None:
    extra = tmp_path / "team.yaml"
    extra.write_text("categories:\n  threat:\n    strong:\n      en: ['\\bbring the hammer\\b']\n", encoding="utf-8")
    lexicon = load_lexicon(str(extra))
    assert lexicon.screen("I will bring the hammer down there", "en").strong


def _evidence(text: str, *, meaning: bool = False, language: str | None = None) -> Evidence:
    language = language or detect_language(text)
    return Evidence(LEXICON.screen(text, language), language, 0.5 if meaning else 0.0, 0.5, meaning,
                    "self-harm" if meaning else None)


def test_a_plain_statement_is_a_crisis_with_reason_and_span() -> None:
    text = "I took all my pills an hour ago, please cancel the order"
    call = decide(text, _evidence(text), p_real=0.4, clear_below=0.05)
    assert call.level == "crisis"
    assert call.reason == "overdose"
    assert "pills" in (call.span or "")


def test_a_plain_statement_beside_a_joke_is_only_possible() -> None:
    text = "gonna kill myself if this update breaks my scenes again lol"
    call = decide(text, _evidence(text), p_real=0.9, clear_below=0.05)
    assert call.level == "possible"
    assert call.note and "joke" in call.note


def test_said_in_earnest_a_joke_cue_does_not_lower_the_level() -> None:
    text = "lol no, I'm going to kill myself tonight. not joking."
    assert decide(text, _evidence(text), p_real=0.5, clear_below=0.05).level == "crisis"


def test_a_weak_hit_is_possible_unless_the_precision_stage_is_sure() -> None:
    text = "I can't take it anymore, third outage this week"
    assert decide(text, _evidence(text), p_real=0.5, clear_below=0.05).level == "possible"
    cleared = decide(text, _evidence(text), p_real=0.01, clear_below=0.05)
    assert cleared.level is None
    assert cleared.note and "cleared" in cleared.note
    assert decide(text, _evidence(text), p_real=0.99, clear_below=0.05).level == "crisis"


def test_an_unrecognised_language_is_only_ever_possible_and_never_cleared() -> None:
    text = "Ik wil er niet meer zijn, sorry dat ik dit schrijf"
    evidence = _evidence(text, language="nl")
    assert evidence.screened.fired
    assert decide(text, evidence, p_real=0.99, clear_below=0.05).level == "possible"
    assert decide(text, evidence, p_real=0.0, clear_below=0.05).level == "possible"


def test_a_meaning_only_hit_names_the_heads_category_and_a_sentence() -> None:
    text = "I have put everything in order and said what I needed to say. Please close the account."
    call = decide(text, _evidence(text, meaning=True), p_real=0.5, clear_below=0.05)
    assert call.level == "possible"
    assert call.reason == "self-harm"
    assert call.span and call.span.startswith("I have put everything in order")


def test_nothing_fired_is_no_crisis() -> None:
    text = "Where is my order? It has been two weeks."
    call = decide(text, _evidence(text), p_real=0.0, clear_below=0.05)
    assert (call.level, call.reason, call.note) == (None, None, None)


def test_gate_every_shipped_crisis_still_fires_and_few_idioms_fire_strongly() -> None:
    """A regression gate on the phrases: they alone catch at least 88% of the shipped labelled crises, and
    plain statements stay rare among the shipped figures of speech."""
    import json
    from importlib import resources

    path = resources.files("copilot") / "data" / "triage_crisis.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    crises = [r for r in rows if r["crisis"] != "none"]
    idioms = [r for r in rows if r["group"] == "hyperbole"]
    missed = [r["text"] for r in crises if not LEXICON.screen(r["text"], detect_language(r["text"])).fired]
    strong_idioms = [r["text"] for r in idioms if LEXICON.screen(r["text"], detect_language(r["text"])).strong]
    assert len(crises) >= 200 and len(idioms) >= 100
    # The phrases alone; the meaning screen catches the rest (the full cascade is gated in test_triage_minilm).
    assert len(missed) / len(crises) <= 0.12, missed
    assert len(strong_idioms) / len(idioms) <= 0.05, strong_idioms


def test_smoking_a_substance_is_not_a_fire() -> None:
    assert not LEXICON.screen("Is it okay to smoke pot when getting vaccinated?", "en").fired
    assert not LEXICON.screen("Do smokers need a different dose?", "en").fired
    assert LEXICON.screen("smoke is coming out of my hub", "en").fired


BEYOND_THE_SIX = [
    # (text, category): languages the screen does not know well still fire, and are only ever 'possible'
    ("Ik ga er vanavond een einde aan maken, zeg mijn abonnement maar op.", "self-harm"),
    ("Jeg har tatt alt for mange sovetabletter, kanseller bestillingen.", "overdose"),
    ("Min mamma har svimmat i köket och jag får ingen kontakt med henne.", "danger: medical"),
    ("Dědeček upadl v koupelně a nemůže vstát.", "danger: medical"),
    ("Det lukter gass i hele leiligheten etter at montøren var her.", "danger: medical"),
    ("Fiul meu de 4 ani a rămas singur acasă de ieri.", "child at risk"),
    ("Entinen mieheni seuraa minua joka päivä töihin.", "abuse"),
    ("Ik sla zijn hoofd in met een hamer als hij terugkomt.", "threat"),
    ("Chcę się zabić, nie chcę już żyć.", "self-harm"),
    ("Bunuh diri rasanya satu-satunya jalan keluar.", "self-harm"),
]


@pytest.mark.parametrize(("text", "category"), BEYOND_THE_SIX)
def test_languages_beyond_the_six_fire_and_stay_possible(text: str, category: str) -> None:
    language = detect_language(text)
    screened = LEXICON.screen(text, language)
    best = screened.best()
    assert best is not None, text
    assert best.category == category
    if language not in ("en", "es", "fr", "de", "pt", "it"):
        call = decide(text, _evidence(text), p_real=0.0, clear_below=0.5)
        assert call.level == "possible", (language, call)


COUNTED_AND_STRATEGIC = [
    "I've died like 40 times on that boss, the checkpoint is broken",
    "we died about a dozen times before the update fixed the lag",
    "Playing without the armour perk is suicide on hard mode",
    "The projector we rented from you died halfway through the wedding speech",
    "Je suis mort trente fois dans ce niveau, c'est injouable",
    "Sono morto dodici volte nello stesso punto",
    "Me morí veinte veces en el jefe final",
    "Morri umas quinze vezes nessa fase",
    "Die App ruckelt, ich bin zwanzig mal gestorben",
    "Ce jeu rame à mort depuis la mise à jour",
    "Esse hambúrguer é de matar de bom",
    "Your hold music makes me want to die, twenty minutes now",
    "My kids are going to kill me if the console isn't here by Friday",
    "I'm dead at these delivery fees",
]


@pytest.mark.parametrize("text", COUNTED_AND_STRATEGIC)
def test_counted_game_deaths_strategy_and_dead_devices_are_cleared(text: str) -> None:
    screened = LEXICON.screen(text, detect_language(text))
    assert not screened.fired, [h.span for h in screened.hits]
    assert screened.cleared_by and screened.cleared_by[0][0] == "idiom"


@pytest.mark.parametrize("text", [
    "I wish I died in that crash instead of him",
    "Honestly I'd be better off dead than deal with this again",
    "I tried to kill myself twice this year",
    "My dad nearly died two times this month and your alarm never went off",
])
def test_the_counted_death_clear_does_not_swallow_a_real_statement(text: str) -> None:
    assert LEXICON.screen(text, detect_language(text)).fired, text


@pytest.mark.parametrize(("text", "category"), [
    ("been cutting myself again since the outage, anyway the router still drops", "self-harm"),
    ("Me estoy cortando otra vez, da igual, la app sigue sin cargar", "self-harm"),
    ("Mi sto tagliando di nuovo, comunque la consegna è in ritardo", "self-harm"),
    ("Ich ritze mich wieder, egal, das Paket fehlt immer noch", "self-harm"),
    ("My 2 year old drank some of the dishwasher liquid you sent, she's coughing", "child at risk"),
    ("Ma fille de 3 ans a avalé une pile bouton de la télécommande", "child at risk"),
    ("Mein Kind hat die Putzmittel-Kapsel verschluckt und spuckt", "child at risk"),
    ("my chest feels like it's being crushed and my left arm is numb, can you reschedule the engineer", "danger: medical"),
    ("Mi abuela se cayó en el pasillo y no responde cuando la llamo", "danger: medical"),
    ("If the refund isn't here by Friday someone is going to get hurt at your branch", "threat"),
    ("Se não resolverem hoje alguém vai sair machucado nessa loja", "threat"),
    ("Il me confisque mon téléphone et ne me laisse pas sortir le soir", "abuse"),
    ("Mein Mann sperrt mich ein, wenn ich mich über die Rechnung beschwere", "abuse"),
    ("엄마가 쓰러졌어요 가스 냄새가 나요", "danger: medical"),
])
def test_new_concepts_fire_in_their_own_words(text: str, category: str) -> None:
    screened = LEXICON.screen(text, detect_language(text))
    assert screened.fired, text
    assert category in {h.category for h in screened.hits}


def test_hangul_and_kana_keep_their_letters_when_folded() -> None:
    assert fold("가스 냄새") == "가스 냄새"
    assert fold("がんばって") == "がんばって"
    assert fold("Évian пожар й Tôi uống") == "evian пожар и toi uong"


@pytest.mark.parametrize("text", [
    "Vendete rilevatori di fumo per il condominio?",
    "¿Venden detectores de humo para cocina?",
    "Vendez-vous des détecteurs de fumée connectés ?",
    "Verkaufen Sie auch Rauchmelder mit Funk?",
    "Vocês vendem detectores de fumaça?",
    "I'd like to buy two fire extinguishers for the office, any bulk discount?",
    "Can I return a carbon monoxide alarm? I bought two by mistake.",
    "I have a hospital appointment on Thursday, can you deliver on Friday instead?",
    "Tengo cita en el hospital el lunes, ¿podéis entregar el martes?",
    "That last episode killed me, when is the next season on your app?",
    "the new patch is suicide for tank builds, please revert",
])
def test_purchases_appointments_and_figures_of_speech_are_everyday(text: str) -> None:
    screened = LEXICON.screen(text, detect_language(text))
    assert not screened.strong, [h.span for h in screened.hits]
    assert screened.cleared_by
