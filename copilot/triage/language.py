"""A light, deterministic language detector: the writing system first, then function-word profiles.

Returns ISO 639-1 codes. Social messages are short and full of handles, links and emoji, so the
detector strips those, and a text without clear evidence for another language is ``"en"`` (the
support team's working language), never a guess from two words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

DEFAULT_LANGUAGE = "en"

# The most frequent function words of each language: a short text in that language almost always
# contains several. Words shared by many languages still count; the profile with the most hits wins.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        ["the", "and", "is", "are", "was", "were", "to", "of", "in", "it", "that", "this", "for", "on", "with", "you", "my", "i", "me", "your", "have", "has", "had", "not", "but", "be", "do", "does", "did", "can", "can't", "don't", "it's", "i'm", "what", "why", "how", "when", "where", "there", "they", "we", "our", "just", "so", "at", "an", "will", "would", "could", "should", "no", "yes", "please", "thanks", "thank", "from", "get", "got", "been", "about", "again", "still"]
    ),
    "es": frozenset(
        ["el", "la", "los", "las", "de", "del", "que", "y", "en", "un", "una", "es", "por", "con", "no", "para", "se", "su", "al", "lo", "como", "más", "pero", "mi", "me", "muy", "ya", "está", "están", "hay", "gracias", "hola", "tengo", "tiene", "porque", "cuando", "donde", "qué", "cómo", "mis", "nos", "sus", "este", "esta", "también", "desde", "hasta", "sin", "sobre", "todo", "nada", "ayuda", "pedido", "te", "si", "puedo", "puede", "puedes", "son", "ser", "hace", "van", "estás", "estoy", "sería", "cada", "ahora", "bien", "nuestro", "nuestra", "usted", "ustedes", "hacer"]
    ),
    "fr": frozenset(
        ["le", "la", "les", "de", "des", "du", "un", "une", "et", "est", "en", "que", "qui", "pas", "pour", "sur", "dans", "avec", "ne", "je", "vous", "il", "elle", "nous", "mon", "ma", "mes", "ce", "cette", "sont", "au", "aux", "ou", "mais", "plus", "très", "merci", "bonjour", "j'ai", "c'est", "suis", "avez", "depuis", "toujours", "rien", "aide", "commande", "encore", "votre", "vos", "peut", "peux", "quand", "faire", "fait", "être", "ils", "elles", "vont", "chez", "qu'on", "qu'il", "comment", "pourquoi", "où", "aussi", "déjà", "dois", "doit", "faut", "est-ce"]
    ),
    "de": frozenset(
        ["der", "die", "das", "und", "ist", "nicht", "ein", "eine", "zu", "den", "von", "mit", "sich", "des", "auf", "für", "im", "dem", "an", "auch", "es", "ich", "sie", "wir", "ihr", "mein", "meine", "ist", "sind", "war", "aber", "oder", "wie", "was", "noch", "nur", "schon", "bei", "nach", "danke", "bitte", "hallo", "habe", "haben", "kein", "keine", "immer", "seit", "bestellung", "hilfe"]
    ),
    "it": frozenset(
        ["il", "lo", "la", "i", "gli", "le", "di", "da", "che", "e", "è", "un", "una", "per", "non", "con", "mi", "mio", "mia", "sono", "ho", "ha", "ma", "come", "più", "anche", "del", "della", "nel", "alla", "questo", "questa", "grazie", "ciao", "ancora", "sempre", "niente", "aiuto", "ordine", "perché", "quando", "dove", "cosa", "molto"]
    ),
    "pt": frozenset(
        ["o", "a", "os", "as", "de", "do", "da", "dos", "das", "que", "e", "é", "um", "uma", "para", "com", "não", "no", "na", "em", "por", "mais", "mas", "meu", "minha", "eu", "você", "está", "estão", "tem", "tenho", "obrigado", "obrigada", "olá", "isso", "isto", "muito", "também", "ainda", "sempre", "nada", "ajuda", "pedido", "quando", "onde", "como", "porque"]
    ),
    "nl": frozenset(
        ["de", "het", "een", "en", "is", "van", "in", "dat", "niet", "ik", "je", "u", "op", "te", "met", "voor", "zijn", "er", "maar", "ook", "als", "bij", "nog", "wel", "mijn", "jullie", "hebben", "heb", "was", "aan", "om", "wat", "hoe", "waarom", "dank", "bedankt", "hallo", "graag", "geen", "altijd", "bestelling", "hulp"]
    ),
    "sv": frozenset(
        ["och", "i", "att", "det", "som", "en", "är", "på", "för", "med", "jag", "har", "inte", "av", "till", "den", "de", "om", "min", "mitt", "var", "kan", "men", "så", "vi", "ni", "tack", "hej", "också", "bara", "ännu", "alltid", "ingen", "hjälp", "beställning"]
    ),
    "da": frozenset(
        ["og", "i", "at", "det", "som", "en", "er", "på", "for", "med", "jeg", "har", "ikke", "af", "til", "den", "de", "om", "min", "mit", "var", "kan", "men", "så", "vi", "i", "tak", "hej", "også", "bare", "endnu", "altid", "ingen", "hjælp", "bestilling"]
    ),
    "pl": frozenset(
        ["i", "w", "nie", "na", "że", "się", "z", "do", "to", "jest", "jak", "ale", "co", "mi", "mój", "moja", "moje", "czy", "już", "dla", "tak", "jeszcze", "ze", "po", "od", "przez", "dziękuję", "cześć", "proszę", "mam", "ma", "zamówienie", "pomoc", "zawsze", "nic", "bardzo"]
    ),
    "tr": frozenset(
        ["ve", "bir", "bu", "da", "de", "için", "ile", "ne", "ben", "sen", "siz", "çok", "var", "yok", "ama", "gibi", "daha", "mi", "mı", "mu", "mü", "değil", "teşekkürler", "merhaba", "lütfen", "sipariş", "yardım", "hala", "her", "şey", "neden", "nasıl"]
    ),
    "id": frozenset(
        ["dan", "yang", "di", "ke", "dari", "ini", "itu", "tidak", "saya", "anda", "kami", "ada", "untuk", "dengan", "akan", "sudah", "belum", "bisa", "juga", "atau", "tapi", "terima", "kasih", "tolong", "pesanan", "bantuan", "kenapa", "bagaimana", "masih"]
    ),
}

# Letters that only (or mostly) one of the Latin-script languages uses.
_MARKERS: dict[str, str] = {
    "ñ": "es", "¿": "es", "¡": "es",
    "ç": "fr", "œ": "fr", "è": "fr", "ê": "fr", "à": "fr", "ù": "fr", "î": "fr", "ô": "fr",
    "ß": "de", "ä": "de", "ö": "de", "ü": "de",
    "ã": "pt", "õ": "pt",
    "å": "sv",
    "ø": "da", "æ": "da",
    "ą": "pl", "ę": "pl", "ł": "pl", "ż": "pl", "ś": "pl", "ć": "pl", "ń": "pl", "ź": "pl",
    "ğ": "tr", "ş": "tr", "ı": "tr",
}

_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#][\w_]+|\S+@\S+\.\w+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _script_language(text: str) -> str | None:
    """The language implied by a non-Latin writing system, if letters of one dominate."""
    counts: dict[str, int] = {}
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        code = ord(ch)
        if 0x3040 <= code <= 0x30FF:
            lang = "ja"
        elif 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
            lang = "ko"
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
            lang = "zh"
        elif 0x0400 <= code <= 0x04FF:
            lang = "uk" if ch in "іїєґІЇЄҐ" else "ru"
        elif 0x0600 <= code <= 0x06FF:
            lang = "ar"
        elif 0x0590 <= code <= 0x05FF:
            lang = "he"
        elif 0x0370 <= code <= 0x03FF:
            lang = "el"
        elif 0x0900 <= code <= 0x097F:
            lang = "hi"
        elif 0x0E00 <= code <= 0x0E7F:
            lang = "th"
        else:
            continue
        counts[lang] = counts.get(lang, 0) + 1
    if not counts or sum(counts.values()) < 0.5 * letters:
        return None
    if counts.get("ja") and counts.get("zh"):
        counts["ja"] += counts.pop("zh")  # Japanese mixes kana and kanji
    if counts.get("uk") and counts.get("ru"):
        counts["uk"] += counts.pop("ru")  # one Ukrainian-only letter settles it
    return max(counts, key=lambda k: counts[k])


_LANGID_LANGUAGES = sorted(_STOPWORDS)
_LANGID_CONFIDENCE = 0.85


@lru_cache(maxsize=1)
def _identifier() -> Any:
    """py3langid's model restricted to the profiled languages, loaded once; None when it is not installed."""
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError:  # an optional second opinion: the function words alone still decide
        return None
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(_LANGID_LANGUAGES)
    return identifier


def _langid(text: str) -> tuple[str, float] | None:
    """A character n-gram model's guess and its probability, or None."""
    identifier = _identifier()
    if identifier is None:
        return None
    code, probability = identifier.classify(text)
    return str(code), float(probability)


def detect_language(text: str, default: str = DEFAULT_LANGUAGE) -> str:
    """The ISO 639-1 code of ``text``'s language; ``default`` when the text is too short to tell.

    Function words and marker letters decide when their evidence is clear; when it is thin or two
    languages tie (short questions such as "¿Te puedes vacunar si estás embarazada?"), a character
    n-gram model decides if it is confident, else the default stands.
    """
    cleaned = _NOISE.sub(" ", text)
    scripted = _script_language(cleaned)
    if scripted:
        return scripted
    words = [w.lower() for w in _WORD.findall(unicodedata.normalize("NFC", cleaned))]
    if len(words) < 3:
        return default
    scores = {lang: sum(1.0 for w in words if w in vocab) for lang, vocab in _STOPWORDS.items()}
    lowered = cleaned.lower()
    for ch, lang in _MARKERS.items():
        if ch in lowered:
            scores[lang] += 0.75 * min(lowered.count(ch), 3)
    ranked = sorted(scores, key=lambda k: -scores[k])
    best, runner_up = ranked[0], ranked[1]
    margin = scores[best] - scores[runner_up]
    if best == default and margin >= 1.0:
        return default
    # Another language must beat the default, and be backed by more than a single word; it is clear
    # when it also leads the runner-up by a word.
    beats_default = best != default and scores[best] >= 2.0 and scores[best] > 1.25 * scores.get(default, 0.0)
    guess = _langid(cleaned)
    confident = guess is not None and guess[1] >= _LANGID_CONFIDENCE
    if beats_default and margin >= 1.0:
        # Single letters ("a", "o", "e") and shared words can outvote the default in a terse English
        # post ("a 2 hour flight turns into a 3:30 ordeal"); a confident n-gram model overrules them.
        return default if confident and guess[0] == default else best  # type: ignore[index]
    if confident:
        return guess[0]  # type: ignore[index]
    return best if beats_default else default
