"""Translation by the chat model, for the two places a draft needs it: the customer's message into the
knowledge base's language (for retrieval only) and the chosen facts into the customer's language."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from copilot.compose import LANGUAGE_NAMES, translation_problems
from copilot.errors import ProviderError
from copilot.generation import call
from copilot.prompts import Prompts


class Translator:
    """One checked model call per translation; a failure keeps the original text."""

    def __init__(self, chat: BaseChatModel, prompts: Prompts) -> None:
        self.chat = chat
        self.prompts = prompts

    def facts(self, text: str, language: str, source: str) -> str | list[str]:
        """The chosen facts in the customer's language, or why the model's translation cannot be used.

        Checked for numbers, lines, whole sentences and language; a failed translation keeps the original
        facts with a note, never a half-translated step.
        """
        rendered = self.prompts.render("draft/translate_facts.j2", language=LANGUAGE_NAMES.get(language, language),
                                       source=LANGUAGE_NAMES.get(source, source), text=text)
        try:
            raw = call(self.chat, [HumanMessage(rendered.text)], max_tokens=min(480, len(text) // 2 + 60),
                       stop=["</text>", "\n\n\n"]).text
        except ProviderError as exc:
            return [f"failed ({exc})"]
        out = "\n".join(" ".join(line.split()) for line in raw.strip().strip('"').splitlines() if line.strip())
        problems = translation_problems(text, out, language)
        return problems if problems else out

    def query(self, text: str, target: str) -> str:
        """The message in the ``target`` language for retrieval (the embedder is English-only).

        The original words are kept beside the translation, so names and codes still match lexically.
        """
        rendered = self.prompts.render("draft/translate_query.j2", language=LANGUAGE_NAMES.get(target, target),
                                       message=text[:1200])
        try:
            raw = call(self.chat, [HumanMessage(rendered.text)], max_tokens=max(48, min(len(text) // 2, 200)),
                       stop=["\n\n", "</message>"]).text
        except ProviderError:
            return text
        translated = " ".join(raw.strip().strip('"').split())
        if len(translated) < 8 or translated.lower() == text.lower():
            return text
        return f"{translated}\n{text}"
