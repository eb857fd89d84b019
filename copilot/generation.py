"""The one generation loop: call the chat model, read and check its answer, retry once with the problems.

Support drafts (the opening and the full reply), rewrites, community drafts and the evaluation judge all
go through :func:`generate`, so they stream, convert provider failures, sample the retry and report
their attempts the same way. What to do when both attempts fail (a grounded template, an error for the
agent, an unscored case) stays with the caller, because only the caller knows what a safe fallback is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from copilot.errors import ProviderError, UserError

T = TypeVar("T")
TokenCallback = Callable[[str], None]
Check = Callable[[str], tuple[T, list[str]]]


@dataclass(frozen=True)
class Call:
    """One model answer, joined, and when its first token came (ms after the call started)."""

    text: str
    first_token_ms: float | None


@dataclass(frozen=True)
class Attempt(Generic[T]):
    """One try: the raw answer, what the check made of it, and what was wrong with it."""

    raw: str
    value: T
    problems: tuple[str, ...]
    first_token_ms: float | None


@dataclass(frozen=True)
class Generation(Generic[T]):
    """Every attempt in order and the time they took together."""

    attempts: tuple[Attempt[T], ...]
    latency_ms: float

    @property
    def ok(self) -> bool:
        return not self.final.problems

    @property
    def final(self) -> Attempt[T]:
        return self.attempts[-1]

    @property
    def first_problems(self) -> tuple[str, ...]:
        """What the first attempt got wrong (empty when it passed): the reason a retry happened."""
        return self.attempts[0].problems

    @property
    def first_token_ms(self) -> float | None:
        return self.attempts[0].first_token_ms


def call(chat: Any, messages: Sequence[BaseMessage], *, max_tokens: int,
         response_format: dict[str, Any] | None = None, on_token: TokenCallback | None = None,
         **sampling: Any) -> Call:
    """One streamed model call; a provider SDK's own exception becomes :class:`ProviderError`."""
    start = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    options: dict[str, Any] = {"max_tokens": max_tokens, **sampling}
    if response_format:
        options["response_format"] = response_format
    try:
        for chunk in chat.stream(list(messages), **options):
            token = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
            if token and first is None:
                first = _ms(start)
            pieces.append(token)
            if on_token and token:
                on_token(token)
    except (UserError, ProviderError):
        raise
    except Exception as exc:  # provider SDKs raise their own types: convert at the boundary
        raise ProviderError(f"the chat model failed: {exc}") from exc
    return Call("".join(pieces), first)


def generate(chat: Any, messages: Sequence[BaseMessage], check: Check[T], retry: Callable[[list[str]], str], *,
             max_tokens: int, response_format: dict[str, Any] | None = None,
             on_token: TokenCallback | None = None, retry_sampling: dict[str, Any] | None = None,
             **sampling: Any) -> Generation[T]:
    """Ask, check, and when the check finds problems ask once more with them (``retry`` words the turn).

    ``on_token`` sees the first attempt only: a retry replaces the text, it does not append to it.
    ``retry_sampling`` overrides the sampling for the second attempt: a small model given the same prompt
    at a low temperature tends to repeat its rejected answer word for word.
    """
    start = time.perf_counter()
    turns = list(messages)
    attempts: list[Attempt[T]] = []
    for round_ in range(2):
        options = sampling if round_ == 0 else {**sampling, **(retry_sampling or {})}
        answer = call(chat, turns, max_tokens=max_tokens, response_format=response_format,
                      on_token=on_token if round_ == 0 else None, **options)
        value, problems = check(answer.text)
        attempts.append(Attempt(answer.text, value, tuple(problems), answer.first_token_ms))
        if not problems:
            break
        turns = [*turns, AIMessage(answer.text), HumanMessage(retry(list(problems)))]
    return Generation(tuple(attempts), _ms(start))


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def model_name(chat: Any) -> str:
    """A chat model's name for the draft record: its ``model_name`` or ``model``, else its class."""
    return str(getattr(chat, "model_name", None) or getattr(chat, "model", None) or type(chat).__name__)
