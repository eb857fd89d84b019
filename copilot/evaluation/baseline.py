"""A deterministic extractive chat model: the baseline the CI regression gate drafts with.

It implements LangChain's ``BaseChatModel`` and reads the drafting prompt the way a model would: the
passages (``<passage id=...>`` blocks of the user turn), the message type, the length limit and the
private-channel hint. It answers with the top passage's fix (``copilot.draft.fix_summary``) inside
``prompts/baseline/reply.j2`` and cites that passage, in the format the prompt asks for (JSON when a
``response_format`` is given or the system prompt asks for JSON, else ``REPLY:``/``SOURCES:`` lines).
So the gate exercises the real path (triage, retrieval, prompt, parsing, guardrails, retry, fallback)
in a fraction of a second per case, and its numbers move only when code, prompts or data change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from copilot.draft import fix_summary
from copilot.guardrails import fit_length
from copilot.prompts import Prompts, load_prompts
from copilot.types import Passage

_PASSAGE = re.compile(r'<passage id="([^"]+)"([^>]*)>\n?(.*?)\n?</passage>', re.DOTALL)
_KIND = re.compile(r"Message type:\s*(\w+),\s*sentiment\s*(\w+)", re.IGNORECASE)
_LIMIT = re.compile(r"At most (\d+) characters", re.IGNORECASE)
_PRIVATE = re.compile(r"invite them to continue in ([^.\n]+)\.", re.IGNORECASE)
DEFAULT_LIMIT = 280


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

    def answer(self, messages: list[BaseMessage], response_format: Any = None) -> str:
        """The reply to a drafting conversation (a retry gets the same answer: the baseline cannot learn)."""
        system = next((m.content for m in messages if isinstance(m, SystemMessage)), "")
        user = next((m.content for m in messages if isinstance(m, HumanMessage)), "")
        system, user = str(system), str(user)
        kind_match = _KIND.search(user)
        kind, sentiment = (
            (kind_match.group(1).lower(), kind_match.group(2).lower()) if kind_match else ("", "")
        )
        if user.rstrip().endswith("Translation:"):  # the baseline cannot translate: the message as it is
            found = re.search(r"<message>\n?(.*?)\n?</message>", user, re.DOTALL)
            return found.group(1).strip() if found else ""
        if user.rstrip().endswith("Opening:"):  # the composed draft asks only for the opening sentence
            return self._templates().render("baseline/opener.j2", kind=kind, sentiment=sentiment).text.strip()
        limit_match = _LIMIT.search(user)
        limit = int(limit_match.group(1)) if limit_match else DEFAULT_LIMIT
        private = _PRIVATE.search(user)
        passages = _PASSAGE.findall(user)
        fix, cited, unofficial = "", [], False
        if passages:
            pid, attrs, text = passages[0]
            title = text.strip().splitlines()[0] if text.strip() else ""
            fix = fix_summary(
                Passage(
                    id=pid,
                    chunk_id=pid,
                    title=title,
                    text=text.strip(),
                    kind="faq",
                    official="unofficial" not in attrs,
                    score=1.0,
                )
            )
            cited, unofficial = [pid], "unofficial" in attrs
        variables = {
            "kind": kind,
            "sentiment": sentiment,
            "unofficial": unofficial,
            "private_channel": private.group(1).strip() if private else None,
        }
        # The reply's length without the fix (a one-character stand-in), to know how much fix fits.
        frame = " ".join(self._templates().render("baseline/reply.j2", fix="~", **variables).text.split())
        budget = max(limit - len(frame) + 1, 0)
        fix = fit_length(fix, budget) if fix and budget >= 40 else ""
        reply = " ".join(self._templates().render("baseline/reply.j2", fix=fix, **variables).text.split())
        reply = fit_length(reply, limit)
        if not fix:
            cited = []
        wants_json = response_format is not None or "json" in system.lower()
        if wants_json:
            return json.dumps({"sources": cited, "reply": reply}, ensure_ascii=False)
        return f"REPLY: {reply}\nSOURCES: {', '.join(cited) or 'none'}"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self.answer(messages, kwargs.get("response_format"))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = self.answer(messages, kwargs.get("response_format"))
        for piece in re.findall(r"\S+\s*|\s+", text):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
