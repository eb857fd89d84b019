"""The local chat backend: a LangChain chat model over llama-cpp-python, streaming, with a prefix-state cache.

Every prompt token costs on a small CPU, so the fixed part of a prompt (system prompt, voice guideline)
must be evaluated once, not on every draft. llama-cpp-python already reuses the KV cache for the longest
token prefix shared with the previous call; on top of that this module keeps snapshots of earlier model
states (the warmed-up prefix pinned) so that prompts alternating between different prefixes still hit.
llama-cpp-python's own ``LlamaRAMCache`` is not used: each of its snapshots also copies the logits of the
whole batch (hundreds of MB with a 152k vocabulary) and costs ~0.3 s to save and ~0.6 s to load.

Replies are reproducible for the same seed and the same cache history (e.g. a fresh process replaying the
same calls). A prompt served partly from cache may differ in a rare token from the same prompt evaluated
cold, because llama.cpp's batched and single-token kernels round differently.
"""

from __future__ import annotations

import ctypes
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
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

try:
    import llama_cpp
    from llama_cpp import Llama, llama_chat_format, llama_grammar
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ConfigError("llama-cpp-python is missing: run `make setup` (or `pip install llama-cpp-python`)") from exc

DEFAULT_PREFIX_CACHE_BYTES = 128 << 20


@dataclass
class CallStats:
    """What one call cost: prompt tokens reused from cache vs evaluated, and the time of each phase."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    evaluated_tokens: int = 0
    prompt_eval_ms: float = 0.0
    completion_tokens: int = 0
    first_token_ms: float | None = None
    total_ms: float = 0.0
    finish_reason: str | None = None
    restored_snapshot: bool = False
    _started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def generation_tokens_per_s(self) -> float | None:
        """Completion tokens per second after the first token (pure decode speed)."""
        if self.first_token_ms is None or self.completion_tokens < 2:
            return None
        decode_ms = self.total_ms - self.first_token_ms
        return (self.completion_tokens - 1) / (decode_ms / 1000) if decode_ms > 0 else None

    def as_metadata(self) -> dict[str, Any]:
        """The numbers as a plain dict for ``response_metadata`` / ``generation_info``."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "prompt_tokens_reused": self.reused_tokens,
            "prompt_tokens_evaluated": self.evaluated_tokens,
            "prompt_eval_ms": round(self.prompt_eval_ms, 2),
            "completion_tokens": self.completion_tokens,
            "time_to_first_token_ms": None if self.first_token_ms is None else round(self.first_token_ms, 2),
            "total_ms": round(self.total_ms, 2),
            "generation_tokens_per_s": self.generation_tokens_per_s,
            "finish_reason": self.finish_reason,
            "prefix_snapshot_restored": self.restored_snapshot,
        }


class _MeteredLlama(Llama):
    """``Llama`` that records, per call, how many prompt tokens it really evaluated and when tokens arrived."""

    meter: CallStats | None = None

    def eval(self, tokens: Sequence[int]) -> None:
        meter = self.meter
        if meter is None or meter.first_token_ms is not None:
            super().eval(tokens)
            return
        # The first evaluation of a call is the part of the prompt that the KV cache did not hold.
        reused = self.n_tokens
        started = time.perf_counter()
        super().eval(tokens)
        meter.reused_tokens = reused
        meter.evaluated_tokens += len(tokens)
        meter.prompt_eval_ms += (time.perf_counter() - started) * 1000

    def sample(self, *args: Any, **kwargs: Any) -> int:
        token = super().sample(*args, **kwargs)
        meter = self.meter
        if meter is not None:
            if meter.first_token_ms is None:
                meter.first_token_ms = (time.perf_counter() - meter._started) * 1000
            if not llama_cpp.llama_vocab_is_eog(self._model.vocab, token):
                meter.completion_tokens += 1
        return token


@dataclass
class _Snapshot:
    tokens: np.ndarray
    state: bytes
    pinned: bool


def _shared_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class PrefixStates:
    """Model-state snapshots keyed by the tokens they hold; found by longest shared prefix, LRU-evicted."""

    def __init__(self, capacity_bytes: int = DEFAULT_PREFIX_CACHE_BYTES) -> None:
        self.capacity_bytes = capacity_bytes
        self._items: OrderedDict[bytes, _Snapshot] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        """Bytes held by the snapshots."""
        return sum(len(item.state) for item in self._items.values())

    def best(self, tokens: np.ndarray) -> tuple[_Snapshot | None, int]:
        """The snapshot sharing the longest prefix with ``tokens``, and that length."""
        best_key, best_len = None, 0
        for key, item in self._items.items():
            shared = _shared_prefix(item.tokens, tokens)
            if shared > best_len:
                best_key, best_len = key, shared
        if best_key is None:
            return None, 0
        self._items.move_to_end(best_key)
        return self._items[best_key], best_len

    def put(self, tokens: np.ndarray, state: bytes, *, pinned: bool = False) -> None:
        """Store a snapshot; unpinned ones are evicted oldest-first beyond the capacity."""
        key = tokens.tobytes()
        previous = self._items.pop(key, None)
        pinned = pinned or (previous is not None and previous.pinned)
        self._items[key] = _Snapshot(tokens=tokens.copy(), state=state, pinned=pinned)
        while self.size_bytes > self.capacity_bytes:
            victim = next((k for k, item in self._items.items() if not item.pinned), None)
            if victim is None:
                break
            del self._items[victim]


class _Runtime:
    """One loaded model: the ``Llama``, its chat formatter, its state snapshots and the lock around them."""

    def __init__(self, llama: _MeteredLlama, chat_format: str, cache_bytes: int) -> None:
        self.llama = llama
        self.lock = threading.Lock()
        self.states = PrefixStates(cache_bytes)
        self.formatter = self._build_formatter(chat_format)

    def _build_formatter(self, chat_format: str) -> Any:
        template = self.llama.metadata.get("tokenizer.chat_template")
        if chat_format == "gguf" and template:
            model = self.llama._model
            eos_id, bos_id = self.llama.token_eos(), self.llama.token_bos()
            return llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=model.token_get_text(eos_id) if eos_id != -1 else "",
                bos_token=model.token_get_text(bos_id) if bos_id != -1 else "",
                stop_token_ids=[eos_id],
            )
        return llama_chat_format.format_chatml

    def encode(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str], Any]:
        """Prompt tokens, stop strings and stopping criteria for chat messages (the model's own template)."""
        result = self.formatter(messages=messages)
        tokens = self.llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
        stop = [] if result.stop is None else [result.stop] if isinstance(result.stop, str) else list(result.stop)
        return tokens, stop, result.stopping_criteria

    def prepare(self, tokens: list[int]) -> bool:
        """Load the snapshot sharing the most prompt prefix, when it beats what the KV cache holds now."""
        wanted = np.asarray(tokens, dtype=np.intc)
        live = _shared_prefix(np.asarray(self.llama._input_ids), wanted)
        snapshot, shared = self.states.best(wanted)
        if snapshot is None or shared <= live:
            return False
        data = (ctypes.c_uint8 * len(snapshot.state)).from_buffer_copy(snapshot.state)
        if llama_cpp.llama_state_set_data(self.llama.ctx, data, len(snapshot.state)) != len(snapshot.state):
            raise ProviderError("llama.cpp refused to restore a saved prefix state")
        n = len(snapshot.tokens)
        self.llama.input_ids[:n] = snapshot.tokens
        self.llama.n_tokens = n
        self.llama._requires_eval = True  # logits are stale: the suffix decode refreshes them
        return True

    def remember(self, *, pinned: bool = False) -> None:
        """Snapshot the current model state (KV cache of the tokens evaluated so far)."""
        ctx = self.llama.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(ctx, buffer, size)
        tokens = np.asarray(self.llama._input_ids, dtype=np.intc)
        if written and len(tokens):
            self.states.put(tokens, ctypes.string_at(buffer, written), pinned=pinned)


# A process cache of loaded models (not a setting): loading maps ~0.5 GB and allocates the KV cache.
_RUNTIMES: dict[tuple[str, int, int, int, str], _Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def _load_runtime(
    path: Path, *, n_ctx: int, n_threads: int, n_batch: int, seed: int, chat_format: str, cache_bytes: int
) -> _Runtime:
    key = (str(path.resolve()), n_ctx, n_threads, n_batch, chat_format)
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(key)
        if runtime is None:
            if not path.is_file():
                raise ConfigError(f"model file {path} does not exist: fix COPILOT_MODEL_PATH or run `make setup`")
            try:
                llama = _MeteredLlama(
                    model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                    n_batch=n_batch, seed=seed, verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise ConfigError(
                    f"llama.cpp could not load {path} ({exc}): point COPILOT_MODEL_PATH at a valid GGUF "
                    "or unset it to use the embedded model"
                ) from exc
            runtime = _Runtime(llama, chat_format, cache_bytes)
            _RUNTIMES[key] = runtime
        return runtime


def unload_all() -> None:
    """Forget every loaded model (frees memory once no chat model refers to it)."""
    with _RUNTIMES_LOCK:
        _RUNTIMES.clear()


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
        return self._runtime().llama

    def load(self) -> LlamaCppChat:
        """Load the model now (once per process) so that a bad file fails at start-up."""
        self._runtime()
        return self

    def _runtime(self) -> _Runtime:
        return _load_runtime(
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

    def _start(self, runtime: _Runtime, messages: list[BaseMessage], options: dict[str, Any]) -> tuple[
        CallStats, dict[str, Any]
    ]:
        """Encode, check the context window, restore the best prefix and arm the meter (lock held)."""
        stats = CallStats()
        tokens, template_stop, criteria = runtime.encode(to_chat_messages(messages))
        stats.prompt_tokens = len(tokens)
        if len(tokens) + 1 > self.n_ctx:
            raise ProviderError(
                f"the prompt is {len(tokens)} tokens, over the context window of {self.n_ctx}: "
                "shorten it or raise COPILOT_N_CTX"
            )
        stats.restored_snapshot = runtime.prepare(tokens)
        runtime.llama.meter = stats
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

    def _finish(self, runtime: _Runtime, stats: CallStats, finish_reason: str | None) -> dict[str, Any]:
        runtime.llama.meter = None
        stats.total_ms = (time.perf_counter() - stats._started) * 1000
        stats.finish_reason = finish_reason
        runtime.remember()
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
        runtime = self._runtime()
        with runtime.lock:
            stats, request = self._start(runtime, messages, options)
            try:
                completion = cast(dict[str, Any], runtime.llama.create_completion(**request, stream=False))
            except (RuntimeError, ValueError) as exc:
                runtime.llama.meter = None
                raise ProviderError(f"llama.cpp failed: {exc}") from exc
            choice = completion["choices"][0]
            metadata = self._finish(runtime, stats, choice.get("finish_reason"))
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
        runtime = self._runtime()
        with runtime.lock:
            stats, request = self._start(runtime, messages, options)
            finish_reason = None
            try:
                pieces = cast(
                    Generator[dict[str, Any], None, None], runtime.llama.create_completion(**request, stream=True)
                )
            except (RuntimeError, ValueError) as exc:
                runtime.llama.meter = None
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
                runtime.llama.meter = None
            metadata = self._finish(runtime, stats, finish_reason)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="", usage_metadata=self._usage(stats), response_metadata=metadata, chunk_position="last"
            ),
            generation_info=metadata,
        )

    def warm_up(self, prefix_messages: Sequence[BaseMessage]) -> CallStats:
        """Evaluate a fixed prefix (e.g. the system prompt) once and pin its state for every later call."""
        runtime = self._runtime()
        with runtime.lock:
            stats, request = self._start(runtime, list(prefix_messages), self._options(None, {"max_tokens": 1}))
            try:
                runtime.llama.create_completion(**request, stream=False)
            except (RuntimeError, ValueError) as exc:
                raise ProviderError(f"llama.cpp failed while warming up: {exc}") from exc
            finally:
                runtime.llama.meter = None
            stats.total_ms = (time.perf_counter() - stats._started) * 1000
            runtime.remember(pinned=True)
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
