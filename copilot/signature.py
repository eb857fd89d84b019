"""The sign-off a reply ends with, shared by the drafter and the incident desk."""

from __future__ import annotations

from copilot.compose import PhraseBook
from copilot.config import Settings
from copilot.knowledge_book import KnowledgeBook
from copilot.passages import plain

SAMPLE_SIGNATURE = "The Lumio Support Team"
NEUTRAL_SIGNATURE = "The support team"
def signature_for(settings: Settings, book: KnowledgeBook, phrases: PhraseBook, language: str = "en") -> str:
    """The sign-off: the knowledge base's voice entry's "Sign-off" section, else the setting (neutral, in the
    customer's language, when the setting is still the sample company's and the knowledge base is another
    one)."""
    own = book.section("kb-brand-voice", "Sign-off")
    if own:
        return plain(own)
    if settings.agent_signature == SAMPLE_SIGNATURE and book.entry("kb-brand-voice") is None:
        own_language = phrases.phrases.get(phrases.language(language), {})
        return own_language.get("signature") or NEUTRAL_SIGNATURE
    return settings.agent_signature
