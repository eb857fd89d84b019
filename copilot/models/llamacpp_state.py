"""Loaded llama.cpp models: the process cache of them, per-call metering, and the prefix-state cache.

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
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import ConfigError, ProviderError

try:
    import llama_cpp
    from llama_cpp import Llama, llama_chat_format
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


class LoadedModel:
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
_LOADED: dict[tuple[str, int, int, int, str], LoadedModel] = {}
_LOADED_LOCK = threading.Lock()


def load_model(
    path: Path, *, n_ctx: int, n_threads: int, n_batch: int, seed: int, chat_format: str, cache_bytes: int
) -> LoadedModel:
    """The loaded model for these options, from the process cache or loaded now (a bad file is a ConfigError)."""
    key = (str(path.resolve()), n_ctx, n_threads, n_batch, chat_format)
    with _LOADED_LOCK:
        loaded = _LOADED.get(key)
        if loaded is None:
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
            loaded = LoadedModel(llama, chat_format, cache_bytes)
            _LOADED[key] = loaded
        return loaded


def unload_all() -> None:
    """Forget every loaded model (frees memory once no chat model refers to it)."""
    with _LOADED_LOCK:
        _LOADED.clear()
