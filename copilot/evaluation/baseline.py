"""A deterministic extractive chat model: the baseline the CI regression gate drafts with.

It implements LangChain's ``BaseChatModel``. It does not parse the wording of its prompt: it looks the
prompt up among the renders of the prompts environment it shares with the drafter (``Prompts.recent``)
and reads the variables the drafter gave the template: the passages shown, the message type and
sentiment, the length limit and the private channel. It answers with the first passage's fix
(``fix_summary``) inside ``prompts/baseline/reply.j2`` and cites that passage, as JSON. So the gate
exercises the real path (triage, retrieval, prompt, parsing, guardrails, retry, fallback) in a fraction
of a second per case, and its numbers move only when code, data or the baseline's own templates change,
not when a drafting prompt is reworded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from copilot.errors import ProviderError
from copilot.guardrails import fit_length
from copilot.passages import fix_summary
from copilot.prompts import Prompts, load_prompts
from copilot.types import Passage

DEFAULT_LIMIT = 280
# The drafter's prompts that are not a reply: the baseline cannot translate (the message comes back as it
# is) and opens with a fixed sentence for the message type.
TRANSLATE_TEMPLATE = "draft/translate_query.j2"
OPENER_TEMPLATE = "draft/opener.j2"


class ExtractiveChat(BaseChatModel):
    """Answers a drafting prompt with the first passage's fix; never random, never networked."""

    prompts_dir: str | None = None
    _prompts: Prompts | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "extractive-baseline"

    @property
    def model_name(self) -> str:
        return "extractive"

    def _templates(self) -> Prompts:
        if self._prompts is None:
            self._prompts = load_prompts(self.prompts_dir)
        return self._prompts

    def variables_of(self, messages: Sequence[BaseMessage]) -> tuple[str, Mapping[str, Any]]:
        """The template and variables of the conversation's first user turn, as the drafter rendered them."""
        user = next((str(m.content) for m in messages if isinstance(m, HumanMessage)), "")
        rendered = self._templates().recent(user)
        if rendered is None:
            raise ProviderError(
                "the extractive baseline reads its prompt's variables from the prompts environment under "
                f"{self._templates().root}, and this prompt was not rendered there: draft with the same prompts folder"
            )
        return rendered.template, rendered.variables

    def answer(self, messages: Sequence[BaseMessage]) -> str:
        """The reply to a drafting conversation (a retry gets the same answer: the baseline cannot learn)."""
        template, variables = self.variables_of(messages)
        kind, sentiment = str(variables.get("kind") or ""), str(variables.get("sentiment") or "")
        if template == TRANSLATE_TEMPLATE:
            return str(variables.get("message", "")).strip()
        if template == OPENER_TEMPLATE:
            return self._templates().render("baseline/opener.j2", kind=kind, sentiment=sentiment).text.strip()
        limit = int(variables.get("max_chars") or DEFAULT_LIMIT)
        passages: list[Passage] = list(variables.get("passages") or ())
        fix, cited, unofficial = "", [], False
        if passages:
            first = passages[0]
            fix = fix_summary(first)
            cited, unofficial = [first.id], not first.official
        values = {
            "kind": kind,
            "sentiment": sentiment,
            "unofficial": unofficial,
            "private_channel": variables.get("private_channel") if variables.get("private") else None,
        }
        # The reply's length without the fix (a one-character stand-in), to know how much fix fits.
        frame = " ".join(self._templates().render("baseline/reply.j2", fix="~", **values).text.split())
        budget = max(limit - len(frame) + 1, 0)
        fix = fit_length(fix, budget) if fix and budget >= 40 else ""
        reply = " ".join(self._templates().render("baseline/reply.j2", fix=fix, **values).text.split())
        reply = fit_length(reply, limit)
        if not fix:
            cited = []
        return json.dumps({"sources": cited, "reply": reply}, ensure_ascii=False)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self.answer(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self.answer(messages)
        for piece in re.findall(r"\S+\s*|\s+", text):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
