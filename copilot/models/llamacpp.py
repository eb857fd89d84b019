"""The local chat backend: a LangChain chat model over llama-cpp-python, streaming, JSON-constrained on request.

The loaded model, its metering and its prefix-state cache live in ``copilot.models.llamacpp_state``; this
module turns LangChain messages and call options into completions on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from copilot.config import Settings
from copilot.errors import ConfigError, ProviderError
from copilot.models.llamacpp_state import DEFAULT_PREFIX_CACHE_BYTES, CallStats, LoadedModel, load_model

try:
    from llama_cpp import Llama, llama_grammar
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ConfigError("llama-cpp-python is missing: run `make setup` (or `pip install llama-cpp-python`)") from exc

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


@lru_cache(maxsize=16)
def _compiled_grammar(schema_json: str | None) -> Any:
    try:
        if schema_json is None:
            return llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
        return llama_grammar.LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise ProviderError(f"the local chat model cannot turn this JSON schema into a grammar: {exc}") from exc


def grammar_for(response_format: dict[str, Any] | None) -> Any:
    """A sampling grammar for an OpenAI-style ``response_format`` (``json_object`` or ``json_schema``)."""
    if not response_format or response_format.get("type") == "text":
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    elif kind == "json_object":
        schema = response_format.get("schema")
    else:
        raise ProviderError(f"unsupported response_format type {kind!r}: use json_object or json_schema")
    return _compiled_grammar(json.dumps(schema, sort_keys=True) if schema else None)


def to_chat_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as role/content dicts for the chat template."""
    converted = []
    for message in messages:
        if isinstance(message, ChatMessage):
            role = message.role
        elif isinstance(message, SystemMessage | HumanMessage | AIMessage):
            role = _ROLES[message.type]
        else:
            raise ProviderError(f"the local chat model cannot take a {message.type!r} message")
        converted.append({"role": role, "content": str(message.text)})
    return converted


class LlamaCppChat(BaseChatModel):
    """A chat model running a GGUF in process with llama-cpp-python: deterministic, streaming, prefix-cached.

    Call options: ``stop``, ``max_tokens``, ``temperature``, ``seed`` and an OpenAI-style ``response_format``
    (``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {"schema": ...}}``), which
    constrains sampling with a grammar so the reply is valid JSON.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path
    n_ctx: int = 2048
    n_threads: int = 1
    n_batch: int = 512
    max_tokens: int = 160
    temperature: float = 0.2
    seed: int = 7
    chat_format: Literal["gguf", "chatml"] = "gguf"
    prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES

    _last_stats: CallStats | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def model_name(self) -> str:
        """The GGUF file name, for run records."""
        return self.model_path.name

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name, "n_ctx": self.n_ctx, "max_tokens": self.max_tokens,
            "temperature": self.temperature, "seed": self.seed,
        }

    @property
    def last_stats(self) -> CallStats | None:
        """Prompt-eval and timing numbers of the latest call (also in each reply's ``response_metadata``)."""
        return self._last_stats

    @property
    def llama(self) -> Llama:
        """The loaded ``llama_cpp.Llama`` (for benchmarks that compare against the raw library)."""
        return self._loaded().llama

    def load(self) -> LlamaCppChat:
        """Load the model now (once per process) so that a bad file fails at start-up."""
        self._loaded()
        return self

    def _loaded(self) -> LoadedModel:
        return load_model(
            Path(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads, n_batch=self.n_batch,
            seed=self.seed, chat_format=self.chat_format, cache_bytes=self.prefix_cache_bytes,
        )

    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(kwargs) - {"max_tokens", "temperature", "seed", "response_format"}
        if unknown:
            raise ProviderError(f"the local chat model does not take {', '.join(sorted(unknown))}")
        return {
            "max_tokens": int(kwargs.get("max_tokens", self.max_tokens)),
            "temperature": float(kwargs.get("temperature", self.temperature)),
            "seed": int(kwargs.get("seed", self.seed)),
            "stop": list(stop or []),
            "grammar": grammar_for(kwargs.get("response_format")),
        }

    def _start(self, loaded: LoadedModel, messages: list[BaseMessage], options: dict[str, Any]) -> tuple[
        CallStats, dict[str, Any]
    ]:
        """Encode, check the context window, restore the best prefix and arm the meter (lock held)."""
        stats = CallStats()
        tokens, template_stop, criteria = loaded.encode(to_chat_messages(messages))
        stats.prompt_tokens = len(tokens)
        if len(tokens) + 1 > self.n_ctx:
            raise ProviderError(
                f"the prompt is {len(tokens)} tokens, over the context window of {self.n_ctx}: "
                "shorten it or raise COPILOT_N_CTX"
            )
        stats.restored_snapshot = loaded.prepare(tokens)
        loaded.llama.meter = stats
        request = {
            "prompt": tokens,
            "max_tokens": min(options["max_tokens"], self.n_ctx - len(tokens)),
            "temperature": options["temperature"],
            "seed": options["seed"],
            "stop": options["stop"] + template_stop,
            "stopping_criteria": criteria,
            "grammar": options["grammar"],
        }
        return stats, request

    def _finish(self, loaded: LoadedModel, stats: CallStats, finish_reason: str | None) -> dict[str, Any]:
        loaded.llama.meter = None
        stats.total_ms = (time.perf_counter() - stats._started) * 1000
        stats.finish_reason = finish_reason
        loaded.remember()
        self._last_stats = stats
        return {"model_name": self.model_name, **stats.as_metadata()}

    @staticmethod
    def _usage(stats: CallStats) -> UsageMetadata:
        return UsageMetadata(
            input_tokens=stats.prompt_tokens,
            output_tokens=stats.completion_tokens,
            total_tokens=stats.prompt_tokens + stats.completion_tokens,
            input_token_details={"cache_read": stats.reused_tokens},
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        options = self._options(stop, kwargs)
        loaded = self._loaded()
        with loaded.lock:
            stats, request = self._start(loaded, messages, options)
            try:
                completion = cast(dict[str, Any], loaded.llama.create_completion(**request, stream=False))
            except (RuntimeError, ValueError) as exc:
                loaded.llama.meter = None
                raise ProviderError(f"llama.cpp failed: {exc}") from exc
            choice = completion["choices"][0]
            metadata = self._finish(loaded, stats, choice.get("finish_reason"))
        message = AIMessage(content=choice["text"], usage_metadata=self._usage(stats), response_metadata=metadata)
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info=metadata)],
            llm_output={"model_name": self.model_name, "token_usage": dict(self._usage(stats))},
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        options = self._options(stop, kwargs)
        loaded = self._loaded()
        with loaded.lock:
            stats, request = self._start(loaded, messages, options)
            finish_reason = None
            try:
                pieces = cast(
                    Generator[dict[str, Any], None, None], loaded.llama.create_completion(**request, stream=True)
                )
            except (RuntimeError, ValueError) as exc:
                loaded.llama.meter = None
                raise ProviderError(f"llama.cpp failed: {exc}") from exc
            try:
                for piece in pieces:
                    choice = piece["choices"][0]
                    finish_reason = choice.get("finish_reason") or finish_reason
                    text = choice.get("text") or ""
                    if not text:
                        continue
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if run_manager is not None:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
            except (RuntimeError, ValueError) as exc:
                raise ProviderError(f"llama.cpp failed while streaming: {exc}") from exc
            finally:
                pieces.close()
                loaded.llama.meter = None
            metadata = self._finish(loaded, stats, finish_reason)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="", usage_metadata=self._usage(stats), response_metadata=metadata, chunk_position="last"
            ),
            generation_info=metadata,
        )

    def warm_up(self, prefix_messages: Sequence[BaseMessage]) -> CallStats:
        """Evaluate a fixed prefix (e.g. the system prompt) once and pin its state for every later call."""
        loaded = self._loaded()
        with loaded.lock:
            stats, request = self._start(loaded, list(prefix_messages), self._options(None, {"max_tokens": 1}))
            try:
                loaded.llama.create_completion(**request, stream=False)
            except (RuntimeError, ValueError) as exc:
                raise ProviderError(f"llama.cpp failed while warming up: {exc}") from exc
            finally:
                loaded.llama.meter = None
            stats.total_ms = (time.perf_counter() - stats._started) * 1000
            loaded.remember(pinned=True)
        return stats


def build_llamacpp_chat(settings: Settings) -> LlamaCppChat:
    """The local chat model from settings, loaded now so that a bad model fails at start-up."""
    from copilot.models.gguf import resolve_model_path

    chat = LlamaCppChat(
        model_path=resolve_model_path(settings),
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
    )
    return chat.load()
