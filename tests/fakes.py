"""Deterministic fakes that implement the real interfaces (LangChain Embeddings / BaseChatModel)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

DIM = 256


def _stem(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


class HashEmbeddings(Embeddings):
    """Bag-of-words hashed into a fixed vector: texts sharing words are similar; never random."""

    name = "hash-bow-256"

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.md5(_stem(word).encode()).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dim] += 1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


class FakeChat(BaseChatModel):
    """A chat model that answers from a queue of replies (the last one repeats) and streams by words."""

    replies: list[str] = Field(default_factory=lambda: ["REPLY: Thanks!\nSOURCES: none"])
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    kwargs_seen: list[dict[str, Any]] = Field(default_factory=list)
    token_delay_s: float = 0.0  # a slow model, for what the web app does while a draft streams

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    def _next(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
        self.seen.append(list(messages))
        self.kwargs_seen.append(dict(kwargs))
        index = min(len(self.seen) - 1, len(self.replies) - 1)
        return self.replies[index]

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self._next(messages, kwargs)))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        text = self._next(messages, kwargs)
        for piece in re.findall(r"\S+\s*|\s+", text):
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
