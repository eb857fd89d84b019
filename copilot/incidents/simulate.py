"""A simulated outage for the benchmark and the tests: a burst of messages about one problem, written many
ways in six languages on every channel, mixed with ordinary traffic (real BANKING77 questions and everyday
smart-home questions), each labelled with whether it is about the outage and whether the outage's reply would
fit it (a refund demand, a second problem, personal data or a crisis need their own).

    messages = simulate_outage(n_outage=2000, n_ordinary=3000, seed=7)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources

from copilot.types import Inbound

CHANNELS = ("twitter", "facebook", "instagram", "forum", "email", "chat")

_OUTAGE = {
    "en": {
        "subject": ["my hub", "the Lumio hub", "our hub", "hub", "my Lumio bridge", "the hub in the kitchen"],
        "problem": ["is offline", "shows as unreachable in the app", "won't connect", "keeps dropping offline",
                    "has gone offline", "says 'hub unreachable'", "is not responding", "disconnected again"],
        "since": ["since this morning", "for the last hour", "since 9am", "all of a sudden", "again", "right now",
                  "since about 20 minutes", ""],
        "after": ["and none of my lights respond from the app", "so the app can't control anything",
                  "I've restarted it twice", "the light on it is blinking amber", "is it down for everyone?",
                  "is there an outage?", "", "what's going on?", "can't turn anything on"],
        "emotion": ["", "So annoying.", "Seriously??", "Please fix this.", "Ugh.", "Not again 😤", "Help!"],
    },
    "es": {
        "subject": ["mi hub", "el hub de Lumio", "el hub", "nuestro hub"],
        "problem": ["está desconectado", "aparece como no disponible en la app", "no conecta", "se desconecta todo el rato",
                    "no responde"],
        "since": ["desde esta mañana", "desde hace una hora", "otra vez", "de repente", ""],
        "after": ["y no puedo controlar las luces desde la app", "¿está caído para todos?", "ya lo reinicié dos veces",
                  "¿hay una caída del servicio?", ""],
        "emotion": ["", "Qué pesadez.", "¡Arreglenlo por favor!", "¿En serio?"],
    },
    "fr": {
        "subject": ["mon hub", "le hub Lumio", "le hub", "notre hub"],
        "problem": ["est hors ligne", "apparaît injoignable dans l'appli", "ne se connecte plus", "se déconnecte sans arrêt",
                    "ne répond plus"],
        "since": ["depuis ce matin", "depuis une heure", "encore", "d'un coup", ""],
        "after": ["et je ne peux plus piloter les lampes depuis l'appli", "c'est en panne pour tout le monde ?",
                  "je l'ai redémarré deux fois", "il y a une panne ?", ""],
        "emotion": ["", "Pénible.", "Merci de régler ça !", "Sérieusement ?"],
    },
    "de": {
        "subject": ["mein Hub", "der Lumio Hub", "der Hub", "unser Hub"],
        "problem": ["ist offline", "wird in der App als nicht erreichbar angezeigt", "verbindet sich nicht",
                    "fliegt ständig raus", "reagiert nicht mehr"],
        "since": ["seit heute früh", "seit einer Stunde", "schon wieder", "plötzlich", ""],
        "after": ["und ich kann keine Lampe mehr über die App steuern", "ist das bei allen so?",
                  "hab ihn schon zweimal neu gestartet", "gibt es eine Störung?", ""],
        "emotion": ["", "Nervig.", "Bitte beheben!", "Echt jetzt?"],
    },
    "pt": {
        "subject": ["o meu hub", "o hub da Lumio", "o hub", "nosso hub"],
        "problem": ["está offline", "aparece como indisponível na app", "não conecta", "desconecta toda hora",
                    "não responde"],
        "since": ["desde hoje de manhã", "há uma hora", "de novo", "de repente", ""],
        "after": ["e não consigo controlar as luzes pela app", "está fora do ar para todos?", "já reiniciei duas vezes",
                  "há alguma falha no serviço?", ""],
        "emotion": ["", "Que chatice.", "Resolvam por favor!", "Sério?"],
    },
    "it": {
        "subject": ["il mio hub", "l'hub Lumio", "l'hub", "il nostro hub"],
        "problem": ["è offline", "risulta irraggiungibile nell'app", "non si connette", "si disconnette di continuo",
                    "non risponde"],
        "since": ["da stamattina", "da un'ora", "di nuovo", "all'improvviso", ""],
        "after": ["e non riesco a controllare le luci dall'app", "è giù per tutti?", "l'ho già riavviato due volte",
                  "c'è un disservizio?", ""],
        "emotion": ["", "Che noia.", "Sistematelo per favore!", "Sul serio?"],
    },
}
_LANGUAGE_SHARE = (("en", 0.6), ("es", 0.1), ("fr", 0.08), ("de", 0.08), ("pt", 0.07), ("it", 0.07))

# Members whose reply must be their own (label: the reason's first word, as ``left_out_reason`` writes it).
_EXTRA = [
    ("refund", "This is the second outage this month, I want a refund for my Lumio Plus subscription."),
    ("refund", "I expect compensation for this, my schedules all failed."),
    ("personal", "My account email is jo.bloggs@example.com if you need it to check."),
    ("second", "Also, separately, my order LM-48213 never arrived and the tracking page has not moved for a week."),
    ("second", "On another note the colour of the new strip light is much greener than the bulbs in the living room."),
]
_CRISIS = [("the hub being offline means my mum's fall alarm light didn't go off, she is on the floor and not answering, "
           "I'm calling an ambulance"), ("with the hub down the smoke alarm light isn't working and there's smoke coming "
           "from the plug socket right now")]

_ORDINARY = [
    "How do I cut the light strip to fit under my kitchen cabinets?",
    "Does the colour bulb work with Google Home without a hub?",
    "When will my order ship? I ordered on Monday.",
    "Can I share control of the lights with my partner's phone?",
    "What's the difference between Lumio Plus and the free app?",
    "My bulb flickers when I dim it from the wall switch.",
    "Is there a way to set a sunrise alarm with the bulbs?",
    "Love the new firmware, the fade is so smooth now!",
    "Alexa says the device is unresponsive but the app works fine.",
    "How do I delete my account and my data?",
    "Do you ship to Ireland before Christmas?",
    "The Android app crashes when I open the schedules tab.",
    "Can I use the bulbs in an outdoor lantern?",
    "Which hub firmware version fixes the pairing problem?",
    "How many bulbs can one hub handle?",
    "My new bulb won't pair, it just blinks three times.",
    "Is the strip light safe to leave on overnight?",
    "Thanks for the quick help yesterday, all working now.",
    "How do I reset the app password?",
    "Does the hub support Matter yet?",
]


@dataclass(frozen=True)
class SimulatedMessage:
    inbound: Inbound
    about_outage: bool
    own_reply: str | None  # why the outage's reply would not fit it ("refund", "personal", "second", "crisis")
    at: datetime
    language: str = "en"


def _outage_text(rng: random.Random, language: str) -> str:
    parts = _OUTAGE[language]
    subject = rng.choice(parts["subject"])
    text = f"{subject} {rng.choice(parts['problem'])} {rng.choice(parts['since'])}".strip()
    after = rng.choice(parts["after"])
    text = f"{text}, {after}" if after and not after.endswith("?") else (f"{text}. {after}" if after else text)
    text = text[0].upper() + text[1:]
    emotion = rng.choice(parts["emotion"])
    if not text.endswith(("?", "!", ".")):
        text += "."
    return f"{text} {emotion}".strip()


def _ordinary_texts() -> list[str]:
    path = resources.files("copilot") / "data" / "triage_banking77_ordinary.jsonl"
    banking = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return _ORDINARY + banking


def simulate_outage(*, n_outage: int = 2000, n_ordinary: int = 3000, start: datetime, minutes: float = 60.0,
                    ramp_minutes: float = 10.0, extra_share: float = 0.06, crisis_share: float = 0.002,
                    seed: int = 7) -> list[SimulatedMessage]:
    """The messages of one hour, in arrival order: ordinary traffic throughout, the outage's messages from
    ``start`` ramping up over ``ramp_minutes`` (its first minutes are a trickle, as real outages are)."""
    rng = random.Random(seed)
    ordinary = _ordinary_texts()
    out: list[SimulatedMessage] = []
    for n in range(n_ordinary):
        at = start + timedelta(minutes=rng.uniform(0, minutes))
        text = rng.choice(ordinary)
        channel = rng.choice(CHANNELS)
        out.append(SimulatedMessage(Inbound(text=text, channel=channel, author=f"customer{n}", id=f"ord-{n}"),
                                    False, None, at))
    languages, weights = zip(*_LANGUAGE_SHARE, strict=True)
    for n in range(n_outage):
        # The ramp: arrival times drawn so the rate grows over the first ramp_minutes, then stays high.
        u = rng.random()
        ramp_share = ramp_minutes / (2 * minutes - ramp_minutes)
        offset = ramp_minutes * (u / ramp_share) ** 0.5 if u < ramp_share else \
            ramp_minutes + (minutes - ramp_minutes) * (u - ramp_share) / (1 - ramp_share)
        at = start + timedelta(minutes=offset)
        language = rng.choices(languages, weights)[0]
        text = _outage_text(rng, language)
        own: str | None = None
        roll = rng.random()
        if roll < crisis_share:
            text, own = f"{text} {rng.choice(_CRISIS)}", "crisis"
        elif roll < crisis_share + extra_share and language == "en":
            label, extra = rng.choice(_EXTRA)
            text, own = f"{text} {extra}", label
        channel = rng.choice(CHANNELS)
        handle = f"user{n}" if channel in ("twitter", "instagram") else f"Customer {n}"
        out.append(SimulatedMessage(Inbound(text=text, channel=channel, author=handle, id=f"out-{n}"),
                                    True, own, at, language))
    return sorted(out, key=lambda m: m.at)
