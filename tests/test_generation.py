"""The one generation loop shared by drafts, rewrites, community posts and the judge."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeChat
from langchain_core.messages import HumanMessage

from copilot.errors import ProviderError
from copilot.generation import call, generate


def _shout(raw: str) -> tuple[str, list[str]]:
    return raw.upper(), ([] if raw.endswith("!") else ["end with an exclamation mark"])


def test_a_good_first_answer_is_taken_once_and_streamed() -> None:
    chat = FakeChat(replies=["hello there!"])
    tokens: list[str] = []
    result = generate(chat, [HumanMessage("hi")], _shout, lambda p: "again", max_tokens=20, on_token=tokens.append)
    assert result.ok and result.final.value == "HELLO THERE!" and len(result.attempts) == 1
    assert "".join(tokens) == "hello there!" and result.first_token_ms is not None
    assert result.first_problems == () and chat.kwargs_seen[0]["max_tokens"] == 20


def test_a_rejected_answer_is_retried_once_with_the_problems_and_other_sampling() -> None:
    chat = FakeChat(replies=["hello", "hello again!"])
    tokens: list[str] = []
    result = generate(chat, [HumanMessage("hi")], _shout, lambda p: "Rejected: " + "; ".join(p),
                      max_tokens=20, on_token=tokens.append, retry_sampling={"temperature": 0.8}, seed=1)
    assert result.ok and result.final.value == "HELLO AGAIN!" and len(result.attempts) == 2
    assert result.first_problems == ("end with an exclamation mark",)
    retry_turns = chat.seen[1]
    assert retry_turns[-2].content == "hello" and retry_turns[-1].content == "Rejected: end with an exclamation mark"
    assert "temperature" not in chat.kwargs_seen[0] and chat.kwargs_seen[1]["temperature"] == 0.8
    assert chat.kwargs_seen[1]["seed"] == 1
    assert "".join(tokens) == "hello"  # the retry replaces the text; it is not streamed after the first


def test_two_failures_are_reported_not_raised() -> None:
    chat = FakeChat(replies=["no"])
    result = generate(chat, [HumanMessage("hi")], _shout, lambda p: "again", max_tokens=20)
    assert not result.ok and len(result.attempts) == 2 and result.final.problems == ("end with an exclamation mark",)


class _Broken(FakeChat):
    def _stream(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        raise ConnectionError("connection refused")
        yield  # pragma: no cover


def test_a_provider_failure_becomes_a_provider_error() -> None:
    with pytest.raises(ProviderError, match="connection refused"):
        call(_Broken(), [HumanMessage("hi")], max_tokens=5)
