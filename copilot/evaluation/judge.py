"""The optional LLM judge: empathy, helpfulness and faithfulness of a draft, each 1-5, with a reason.

The rubric lives in ``prompts/judge/*.j2``. The judge is any LangChain chat model (the configured
backend by default). Its answer is validated; an unreadable answer is retried once with the error, and if
the second is no better the case records ``{"error": ...}`` instead of scores (the deterministic scores
still stand).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from copilot.config import Settings
from copilot.errors import CopilotError
from copilot.evaluation.dataset import SupportCase
from copilot.generation import generate
from copilot.prompts import Prompts, load_prompts
from copilot.types import Draft

ASPECTS = ("empathy", "helpfulness", "faithfulness")
TEMPLATES = ("judge/system.j2", "judge/user.j2", "judge/retry.j2")
JUDGE_MAX_TOKENS = 120
_LINE = re.compile(
    r"^\s*\**\s*(EMPATHY|HELPFULNESS|FAITHFULNESS|REASON)\s*\**\s*[:=]\s*\**\s*(.*?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def parse_verdict(raw: str) -> tuple[dict[str, Any] | None, str]:
    """``({aspect: 1..5, "reason": str}, "")`` from the judge's answer, or ``(None, what is wrong)``."""
    found: dict[str, str] = {}
    for key, value in _LINE.findall(raw):
        found.setdefault(key.lower(), value)
    problems = []
    verdict: dict[str, Any] = {}
    for aspect in ASPECTS:
        if aspect not in found:
            problems.append(f"{aspect.upper()} is missing")
            continue
        number = re.match(r"^(\d+(?:\.\d+)?)", found[aspect])
        score = float(number.group(1)) if number else None
        if score is None or not 1 <= score <= 5 or score != int(score):
            problems.append(f"{aspect.upper()} must be a whole number from 1 to 5, not {found[aspect]!r}")
        else:
            verdict[aspect] = int(score)
    reason = found.get("reason", "").strip()
    if not reason:
        problems.append("REASON is missing")
    verdict["reason"] = reason
    return (None, "; ".join(problems)) if problems else (verdict, "")


class Judge:
    """Grades drafts with a chat model and the rubric prompts."""

    def __init__(self, chat: BaseChatModel, settings: Settings, prompts: Prompts | None = None) -> None:
        self.chat = chat
        self.settings = settings
        self.prompts = prompts or load_prompts(str(settings.prompts_dir) if settings.prompts_dir else None)

    def template_hashes(self) -> dict[str, str]:
        """The judge templates and their hashes, for the run's config."""
        return {name: self.prompts.source_hash(name) for name in TEMPLATES}

    def messages(self, case: SupportCase, draft: Draft, sources: Mapping[str, str]) -> list[BaseMessage]:
        """The rubric prompt for one draft."""
        system = self.prompts.render("judge/system.j2", brand=self.settings.brand_name)
        user = self.prompts.render(
            "judge/user.j2",
            channel=case.channel,
            max_chars=self.settings.channel(case.channel).max_chars,
            expected_kind=case.expected.kind,
            message=case.message,
            reference=case.reference,
            reply=draft.text,
            sources=[{"id": i, "text": text} for i, text in sources.items()],
        )
        return [SystemMessage(system.text), HumanMessage(user.text)]

    def judge(self, case: SupportCase, draft: Draft, sources: Mapping[str, str]) -> dict[str, Any]:
        """``{empathy, helpfulness, faithfulness, reason, attempts}`` or ``{error, raw, attempts}``."""

        def check(raw: str) -> tuple[dict[str, Any] | None, list[str]]:
            verdict, error = parse_verdict(raw)
            return verdict, [error] if verdict is None else []

        try:
            result = generate(self.chat, self.messages(case, draft, sources), check,
                              lambda problems: self.prompts.render("judge/retry.j2", error="; ".join(problems)).text,
                              max_tokens=JUDGE_MAX_TOKENS)
        except CopilotError as exc:
            return {"error": str(exc), "raw": "", "attempts": 1}
        final = result.final
        if final.value is not None:
            return {**final.value, "attempts": len(result.attempts)}
        return {"error": f"unreadable verdict: {'; '.join(final.problems)}", "raw": final.raw[:500],
                "attempts": len(result.attempts)}
