"""Cheap lexical signals that sit beside the embedding: lexicon polarity, negation, punctuation, emoji,
laughter, and the cues the crisis and private-channel decisions use (hyperbole, explicit danger,
safety hazards, account-specific requests)."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import numpy as np

# Bump when the feature vector changes: fitted models are cached under a key that includes it.
FEATURE_VERSION = "lex-6"
HASH_FEATURES = 2**17  # hashed word uni- and bigrams: no vocabulary to store, nothing to fit

LEXICAL_NAMES: tuple[str, ...] = (
    "vader_compound", "vader_pos", "vader_neg", "negations", "exclamations", "question", "positive_emoji",
    "negative_emoji", "caps_ratio", "thanks", "laughter", "url", "length",
)

_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nobody|nothing|nowhere|neither|nor|cannot|without|hardly|"
    r"\w+n't|dont|cant|wont|didnt|doesnt|isnt|wasnt|havent|hasnt|aint)\b",
    re.IGNORECASE,
)
_THANKS = re.compile(r"\b(?:thanks?|thank you|thx|ty|cheers|appreciate[sd]?|grateful|kudos)\b", re.IGNORECASE)
_LAUGHTER = re.compile(r"\b(?:lol+|lmao+|lmfao|rofl|haha(?:ha)*|hehe+|jk|kidding)\b|😂|🤣|💀|😆|😹", re.IGNORECASE)
_URL = re.compile(r"https?://\S+|www\.\S+|\b\w+\.(?:com|co|ly|net|org|biz|xyz|io)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][A-Za-z']+")
_POSITIVE_EMOJI = frozenset("😀😃😄😁😊🙂😍🥰😘❤💕💖💙💚💛💜🧡👍👏🙌🎉✨🔥💯🙏😎🤩⭐🌟👌💡🎂🎄🎃🥳")
_NEGATIVE_EMOJI = frozenset("😠😡🤬😤😞😟😢😭😩😫🙄😒👎💔😕☹🙁😣😖😓😱🤦")


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


_URL_ONLY = re.compile(r"https?://\S+|www\.\S+")
_LEADING_HANDLES = re.compile(r"^(?:[.\u201c\"]?@\w+[:,]?\s*)+")


_MARKUP = re.compile(r"<[^<>]{0,400}>|&(?:[a-z]{2,8}|#\d{1,6});|\[/?[a-z]{1,10}(?:=[^\]]{0,80})?\]", re.IGNORECASE)
_ODD = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


def clean_text(text: str) -> str:
    """The message without markup (HTML tags, entities, BBCode) or invisible characters: these must not
    swing the labels."""
    return re.sub(r"\s+", " ", _MARKUP.sub(" ", _ODD.sub("", text))).strip() or text


def embedding_text(text: str) -> str:
    """The text the embedder sees: links and the leading @handles of a reply chain carry no meaning."""
    cleaned = _LEADING_HANDLES.sub("", _URL_ONLY.sub(" ", clean_text(text)))
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    return cleaned or text


def lexical_features(text: str) -> list[float]:
    """A fixed-length vector of lexical signals, each roughly in [-1, 1] (see ``LEXICAL_NAMES``)."""
    scores = _vader().polarity_scores(text)
    words = _WORD.findall(text)
    caps = sum(1 for w in words if len(w) > 2 and w.isupper())
    pos_emoji = sum(1 for ch in text if ch in _POSITIVE_EMOJI)
    neg_emoji = sum(1 for ch in text if ch in _NEGATIVE_EMOJI)
    return [
        scores["compound"],
        scores["pos"],
        scores["neg"],
        min(len(_NEGATION.findall(text)), 3) / 3.0,
        min(text.count("!"), 3) / 3.0,
        1.0 if "?" in text else 0.0,
        min(pos_emoji, 2) / 2.0,
        min(neg_emoji, 2) / 2.0,
        caps / max(len(words), 1),
        1.0 if _THANKS.search(text) else 0.0,
        1.0 if _LAUGHTER.search(text) else 0.0,
        1.0 if _URL.search(text) else 0.0,
        min(math.log1p(len(words)) / math.log(64), 1.0),
    ]


@lru_cache(maxsize=1)
def _hasher() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=HASH_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm="l2", lowercase=True,
        token_pattern=r"(?u)\b\w+\b|[!?]|[^\w\s]", dtype=np.float32,
    )


def hashed_ngrams(texts: list[str]) -> Any:
    """Hashed, L2-normalised word uni- and bigram counts (a sparse CSR matrix)."""
    return _hasher().transform(texts).tocsr()


def lexical_matrix(texts: list[str]) -> np.ndarray:
    """Lexical features for many texts as a float32 matrix."""
    if not texts:
        return np.zeros((0, len(LEXICAL_NAMES)), dtype=np.float32)
    return np.asarray([lexical_features(t) for t in texts], dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------
# Crisis cues. The classifier decides on meaning; these only guard its edges.

# Figures of speech that borrow the vocabulary of harm ("this update is killing me", "to die for").
_HYPERBOLE = re.compile(
    r"\b(?:killing\s+(?:me|it|us)|kill(?:ed)?\s+it|kill\s+for|to\s+die\s+for|dying\s+(?:to|for|here|of)|"
    r"died\s+(?:laughing|of\s+(?:laughter|embarrassment|boredom))|(?:i'?m|im)\s+dead\b|dead\s+(?:impressed|good|"
    r"happy|easy)|death\s+of\s+me|lose\s+my\s+mind|losing\s+my\s+mind|shoot\s+me(?:\s+now)?|kill\s+me\s+now|"
    r"murder(?:ed|ing)?\s+(?:my|the|our)\s+(?:wallet|budget|battery|bank)|(?:prices?|cost|fees?)\s+(?:is|are)\s+"
    r"murder|throw\s+(?:it|this|the\s+\w+)\s+out\s+(?:of\s+)?the\s+window|will\s+to\s+live|drive\s+me\s+insane|"
    r"driving\s+me\s+(?:insane|crazy|mad)|going\s+crazy|literally\s+(?:dying|crying|dead)|fire\s+sale|"
    r"(?:is|are|looks?)\s+fire\b|killer\s+\w+|bled\s+for)\b",
    re.IGNORECASE,
)
# Things people say about products, apps and services rather than about themselves or others.
_PRODUCT_TARGET = re.compile(
    r"\b(?:update|app|hub|bulbs?|lights?|firmware|bug|wifi|setup|support|hold|queue|price|prices|delivery|"
    r"order|website|site|password|login|scene|strip|battery|remote|sale|ad|advert|release|colours?|"
    r"episode|finale|show|movie|game|traffic|meeting|work|homework|exam)\b",
    re.IGNORECASE,
)
# Plain statements of intent to die or self-harm: never waved away as hyperbole.
_EXPLICIT_SELF_HARM = re.compile(
    r"\b(?:kill(?:ing)?\s+myself|end(?:ing)?\s+(?:my\s+life|it\s+all|things)|take\s+my\s+(?:own\s+)?life|"
    r"suicid(?:e|al)|want\s+to\s+die|wanna\s+die|don'?t\s+want\s+to\s+(?:live|be\s+alive|wake\s+up)|"
    r"hurt(?:ing)?\s+myself|cut(?:ting)?\s+myself|overdose|better\s+off\s+without\s+me|no\s+reason\s+to\s+live)\b",
    re.IGNORECASE,
)


def hyperbole_cues(text: str) -> bool:
    """Whether ``text`` reads as a figure of speech or a joke rather than a report of harm."""
    if _HYPERBOLE.search(text):
        return True
    return bool(_LAUGHTER.search(text) and _PRODUCT_TARGET.search(text))


def explicit_self_harm(text: str) -> bool:
    """Whether ``text`` states an intent to die or self-harm in plain words."""
    return bool(_EXPLICIT_SELF_HARM.search(text))


_SAFETY_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("fire/overheating", re.compile(
        r"\b(?:fire|flames?|smok(?:e|ing)|burn(?:ing|t)?\s+smell|smell(?:s)?\s+(?:of\s+)?burn|melt(?:ed|ing)?|"
        r"scorch(?:ed)?|overheat(?:ing|ed)?|too\s+hot|so\s+hot|hot\s+to\s+the\s+touch|swell(?:ing)?\s+up|hissing|"
        r"explod(?:e|ed|ing)|caught\s+fire)\b", re.IGNORECASE)),
    ("electric shock", re.compile(
        r"\b(?:electric(?:al)?\s+shock|shocked|(?:a|the)\s+(?:nasty\s+|big\s+|bad\s+)?shock|shock\s+from|"
        r"live\s+wire|sparks?|sparking|short(?:ed)?\s+circuit|shorted|"
        r"electrocut\w*)\b", re.IGNORECASE)),
    ("gas/carbon monoxide", re.compile(r"\b(?:gas|carbon\s+monoxide|co\s+alarm)\b", re.IGNORECASE)),
    ("medical emergency", re.compile(
        r"\b(?:allergic|reaction|swallow(?:ed)?|collapsed?|can'?t\s+breathe|unconscious|choking|bleeding|"
        r"seizure|heart\s+attack|throat)\b", re.IGNORECASE)),
    ("injury", re.compile(r"\b(?:injur\w+|cut|burned|burnt|blister\w*|fell|crash(?:ed)?|hurt)\b", re.IGNORECASE)),
)


def safety_detail(text: str) -> str | None:
    """The kind of hazard a safety report describes, if one is named."""
    for name, pattern in _SAFETY_KINDS:
        if pattern.search(text):
            return name
    return None


# Account-specific needs: the answer needs this person's order, payment or personal details.
_PRIVATE_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("billing or payment", re.compile(
        r"\b(?:charged|charge[sd]?\s+(?:me|twice|again)|double\s+charged|billed|billing|bill\b|invoice|refund(?:ed)?|"
        r"payment|direct\s+debit|my\s+card|card\s+ending|statement|overcharged|subscription\s+renewed)\b",
        re.IGNORECASE)),
    ("account access", re.compile(
        r"\b(?:my\s+account|account\s+(?:is\s+)?(?:locked|hacked|suspended|closed)|log(?:ged)?\s+in(?:to)?\s+my|"
        r"password\s+reset|two[- ]factor|2fa|verification\s+code|hacked)\b", re.IGNORECASE)),
    ("order or delivery", re.compile(
        r"\b(?:my\s+(?:order|parcel|package|delivery|replacement|return)|order\s+(?:number|no|#)|tracking\s+number|"
        r"delivered\s+to|wrong\s+address)\b", re.IGNORECASE)),
    ("personal data", re.compile(
        r"\b(?:my\s+(?:address|email|e-mail|phone|number|details|data|name)|delete\s+my\s+(?:account|data)|"
        r"data\s+you\s+hold|gdpr)\b", re.IGNORECASE)),
)


def private_cue(text: str) -> str | None:
    """Why ``text`` looks account-specific (billing, account access, an order, personal data), if it does."""
    for name, pattern in _PRIVATE_CUES:
        if pattern.search(text):
            return name
    return None
