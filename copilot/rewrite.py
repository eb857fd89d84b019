"""Rewrites of an existing draft (shorter, warmer, more formal, translated) that keep its facts: the draft
is the only source, so a rewrite may not add a fact, a number or an offer."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from copilot.compose import LANGUAGE_NAMES
from copilot.config import Settings
from copilot.errors import ProviderError, UserError
from copilot.generation import TokenCallback, generate
from copilot.guardrails import check_reply, fit_length, parse_reply, strip_handle
from copilot.prompts import Prompts
from copilot.types import Passage

REWRITES = {
    "shorter": "Make it noticeably shorter (about half), keeping the next step.",
    "warmer": "Make it warmer and more empathetic, without adding facts.",
    "formal": "Make it more formal and polished.",
    "translate": "Translate it into {language}.",
}


class Rewriter:
    """One checked rewrite of a draft by the chat model, with one retry; an unusable one changes nothing."""

    def __init__(self, settings: Settings, chat: BaseChatModel, prompts: Prompts) -> None:
        self.settings = settings
        self.chat = chat
        self.prompts = prompts

    def rewrite(self, text: str, action: str, *, channel: str, language: str | None = None,
                on_token: TokenCallback | None = None) -> str:
        """An existing draft made shorter, warmer, more formal, or translated; facts kept."""
        if action not in REWRITES:
            raise UserError(f"unknown rewrite {action!r}; choose one of {', '.join(REWRITES)}")
        if action == "translate" and not (language and language.strip()):
            raise UserError("translate needs a target language")
        if not text.strip():
            raise UserError("there is no draft text to rewrite")
        profile = self.settings.channel(channel)
        handle_match = re.match(r"^(@\w+)\s+", text)
        handle = handle_match.group(1) if handle_match else ""
        body = text[handle_match.end():] if handle_match else text
        limit = profile.max_chars - (len(handle) + 1 if handle else 0)
        rendered = self.prompts.render(
            "rewrite.j2", brand=self.settings.brand_name, channel=channel, max_chars=limit,
            instruction=REWRITES[action].format(language=language or ""), text=body)
        # The draft being rewritten is the only source: its facts, numbers and offers may stay, nothing new.
        source = Passage(id="draft", chunk_id="draft", title="", text=body, kind="draft", official=True, score=1.0)
        code = next((c for c, n in LANGUAGE_NAMES.items() if n.lower() == (language or "").strip().lower()), None)

        def check(raw: str) -> tuple[str, list[str]]:
            new = strip_handle(parse_reply(raw).text)
            if action == "shorter" and len(new) >= len(body):
                new = fit_length(body, max(len(body) // 2, 40))
            problems = check_reply(new, cited=("draft",), retrieved=[source], message="", max_chars=limit,
                                   system_prompt=rendered.text, needs_citation=False, private_public=False)
            if action == "translate" and new and code:
                from copilot.triage.language import detect_language

                if detect_language(new, default="en") != code:
                    problems.append(f"it is not in {language}")
            if not new:
                problems.append("it is empty")
            return new, [p for p in problems if "SOURCES must list" not in p]

        result = generate(
            self.chat, [HumanMessage(rendered.text)], check,
            lambda problems: self.prompts.render("rewrite_retry.j2", error="; ".join(problems)).text,
            max_tokens=reply_max_tokens(self.settings, limit), on_token=on_token, retry_sampling=retry_sampling(self.settings))
        if not result.ok:
            raise ProviderError(f"The {action} rewrite could not be used, so the draft is unchanged: "
                                f"{agent_words(list(result.final.problems))}. Edit the draft by hand or try "
                                "another rewrite.")
        new = result.final.value
        return f"{handle} {new}".strip() if handle else new


def reply_max_tokens(settings: Settings, limit: int) -> int:
    """Enough tokens for a reply of ``limit`` characters (about three a token), within the settings' cap."""
    return max(64, min(settings.max_tokens, limit // 3 + 48))


def retry_sampling(settings: Settings) -> dict[str, Any]:
    """The retry samples warmer and with another seed: a small model given the same prompt at a low
    temperature tends to repeat its mistake word for word."""
    return {"temperature": 0.8, "seed": settings.seed + 1}


_AGENT_WORDS = (
    ("repeats the instructions", "the model wrote its instructions instead of the reply"),
    ("characters; the channel allows", "it came out too long for this channel"),
    ("personal data", "it would repeat the customer's personal data"),
    ("which no cited passage", "it added a fact or a number the draft does not have"),
    ("copies the customer", "it repeated the customer's message"),
    ("refuses", "the model refused"),
    ("empty or too short", "the model returned nothing usable"),
    ("is not in", "it did not come out in the language asked for"),
)


def agent_words(problems: list[str]) -> str:
    """Validation problems said for the agent, not for the model."""
    said = [next((words for key, words in _AGENT_WORDS if key in p), p) for p in problems]
    return "; ".join(dict.fromkeys(said)) or "the model returned nothing usable"
