"""Benchmark of the embedded chat model on this machine: first-token time, latency, speed, prefix cache, memory.

The prompt is a support prompt of about 300 tokens (``prompts/bench/``): a fixed system prefix, then per
case two knowledge passages and a customer message. Each run has its own case number at the start of the
user turn, so passages and message are always evaluated and only the system prefix can come from cache.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from copilot.config import Settings
from copilot.models.gguf import resolve_model_path
from copilot.models.llamacpp import LlamaCppChat, to_chat_messages
from copilot.prompts import Prompts, load_prompts

BENCH_CASES = "bench/cases.json"
SYSTEM_TEMPLATE = "bench/system.j2"
USER_TEMPLATE = "bench/user.j2"
RAW_PAIRS = 3


@dataclass(frozen=True)
class BenchPrompt:
    """One benchmark prompt: its messages and a short name."""

    name: str
    messages: tuple[BaseMessage, ...]


def _prompts(settings: Settings) -> Prompts:
    return load_prompts(str(settings.prompts_dir) if settings.prompts_dir else None)


def bench_prompts(settings: Settings, count: int, *, first_case_id: int = 1000) -> list[BenchPrompt]:
    """``count`` support prompts cycling over the bench cases, each with its own case number."""
    prompts = _prompts(settings)
    data = json.loads((prompts.root / BENCH_CASES).read_text(encoding="utf-8"))
    system = prompts.render(SYSTEM_TEMPLATE, brand=settings.brand_name, max_chars=600).text
    result = []
    for i in range(count):
        case = data["cases"][i % len(data["cases"])]
        passages = [{"id": pid, "text": data["passages"][pid]} for pid in case["passages"]]
        user = prompts.render(
            USER_TEMPLATE, case_id=first_case_id + i, channel="facebook", passages=passages, message=case["message"]
        ).text
        result.append(BenchPrompt(name=f"case-{first_case_id + i}", messages=(SystemMessage(system), HumanMessage(user))))
    return result


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return round(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024, 1)


def _adapter_run(chat: LlamaCppChat, prompt: BenchPrompt, max_tokens: int) -> dict[str, Any]:
    """Stream one reply through the LangChain adapter, timing the first and the last chunk."""
    started = time.perf_counter()
    first = last = None
    chunks = 0
    metadata: dict[str, Any] = {}
    for chunk in chat.stream(list(prompt.messages), max_tokens=max_tokens):
        now = time.perf_counter()
        if chunk.content:
            chunks += 1
            first = first or now
            last = now
        if chunk.response_metadata:
            metadata = dict(chunk.response_metadata)
    return _timings(started, first, last, chunks) | {
        "prompt_tokens": metadata.get("prompt_tokens"),
        "prompt_tokens_evaluated": metadata.get("prompt_tokens_evaluated"),
        "prompt_eval_ms": metadata.get("prompt_eval_ms"),
        "completion_tokens": metadata.get("completion_tokens"),
    }


def _raw_run(chat: LlamaCppChat, prompt: BenchPrompt, max_tokens: int) -> dict[str, Any]:
    """Stream the same reply straight from ``Llama.create_chat_completion`` (no adapter)."""
    llama = chat.llama
    started = time.perf_counter()
    first = last = None
    chunks = 0
    stream = cast(Iterator[dict[str, Any]], llama.create_chat_completion(
        cast(Any, to_chat_messages(prompt.messages)), max_tokens=max_tokens, temperature=chat.temperature,
        seed=chat.seed, stream=True,
    ))
    for piece in stream:
        now = time.perf_counter()
        if piece["choices"][0]["delta"].get("content"):
            chunks += 1
            first = first or now
            last = now
    return _timings(started, first, last, chunks)


def _timings(started: float, first: float | None, last: float | None, chunks: int) -> dict[str, Any]:
    ended = time.perf_counter()
    decode_s = (last - first) if first is not None and last is not None else 0.0
    return {
        "ttft_ms": None if first is None else round((first - started) * 1000, 1),
        "total_ms": round((ended - started) * 1000, 1),
        "chunks": chunks,
        "decode_tokens_per_s": round((chunks - 1) / decode_s, 1) if chunks > 1 and decode_s > 0 else None,
    }


def run_model_bench(
    settings: Settings, *, runs: int = 20, max_tokens: int | None = None, raw_pairs: int = RAW_PAIRS
) -> dict[str, Any]:
    """Measure the embedded chat model through the adapter (and raw llama-cpp-python for comparison)."""
    max_tokens = max_tokens or settings.max_tokens
    path = resolve_model_path(settings)
    started = time.perf_counter()
    chat = LlamaCppChat(
        model_path=path, n_ctx=settings.n_ctx, n_threads=settings.n_threads, max_tokens=max_tokens,
        temperature=settings.temperature, seed=settings.seed,
    ).load()
    load_s = time.perf_counter() - started
    prompts = bench_prompts(settings, 1 + runs + 2 * raw_pairs)
    cold_prompt, run_prompts, pair_prompts = prompts[0], prompts[1 : 1 + runs], prompts[1 + runs :]

    # Cold: nothing cached, the whole prompt is evaluated (this includes paging the weights in).
    cold = _adapter_run(chat, cold_prompt, max_tokens)
    warm_up = chat.warm_up(cold_prompt.messages[:1])
    warm = [_adapter_run(chat, prompt, max_tokens) for prompt in run_prompts]

    # Adapter vs raw library on the same prompt text; different case numbers keep the cache state equal.
    raw, adapter = [], []
    for i in range(raw_pairs):
        raw.append(_raw_run(chat, pair_prompts[2 * i], max_tokens))
        adapter.append(_adapter_run(chat, pair_prompts[2 * i + 1], max_tokens))

    def column(rows: list[dict[str, Any]], key: str) -> list[float]:
        return [row[key] for row in rows if row.get(key) is not None]

    prompt_tokens = column(warm, "prompt_tokens")
    evaluated = column(warm, "prompt_tokens_evaluated")
    eval_ms = column(warm, "prompt_eval_ms")
    return {
        "model": path.name,
        "threads": settings.n_threads,
        "n_ctx": settings.n_ctx,
        "max_tokens": max_tokens,
        "runs": runs,
        "load_s": round(load_s, 2),
        "prompt_tokens_mean": round(float(np.mean(prompt_tokens)), 1) if prompt_tokens else None,
        "cold": cold,
        "warm_up": {
            "prompt_tokens_evaluated": warm_up.evaluated_tokens,
            "prompt_eval_ms": round(warm_up.prompt_eval_ms, 1),
        },
        "warm": {
            "ttft_ms_p50": _percentile(column(warm, "ttft_ms"), 50),
            "ttft_ms_p95": _percentile(column(warm, "ttft_ms"), 95),
            "latency_ms_p50": _percentile(column(warm, "total_ms"), 50),
            "latency_ms_p95": _percentile(column(warm, "total_ms"), 95),
            "completion_tokens_mean": round(float(np.mean(column(warm, "completion_tokens"))), 1) if warm else None,
            "prompt_tokens_evaluated_p50": _percentile(evaluated, 50),
            "prompt_eval_ms_p50": _percentile(eval_ms, 50),
            "prompt_tokens_per_s": round(sum(evaluated) / (sum(eval_ms) / 1000), 1) if sum(eval_ms) else None,
            "decode_tokens_per_s_p50": _percentile(column(warm, "decode_tokens_per_s"), 50),
        },
        "raw_vs_adapter": {
            "pairs": raw_pairs,
            "raw_ttft_ms_p50": _percentile(column(raw, "ttft_ms"), 50),
            "adapter_ttft_ms_p50": _percentile(column(adapter, "ttft_ms"), 50),
            "raw_decode_tokens_per_s_p50": _percentile(column(raw, "decode_tokens_per_s"), 50),
            "adapter_decode_tokens_per_s_p50": _percentile(column(adapter, "decode_tokens_per_s"), 50),
            "raw_total_ms_p50": _percentile(column(raw, "total_ms"), 50),
            "adapter_total_ms_p50": _percentile(column(adapter, "total_ms"), 50),
        },
        "peak_rss_mb": _peak_rss_mb(),
    }


def format_model_bench(result: dict[str, Any]) -> str:
    """The benchmark as a plain-text table."""
    cold, warm, warm_up, pair = result["cold"], result["warm"], result["warm_up"], result["raw_vs_adapter"]
    rows = [
        ("model", f"{result['model']} ({result['threads']} threads, n_ctx {result['n_ctx']})"),
        ("load", f"{result['load_s']} s"),
        ("prompt", f"~{result['prompt_tokens_mean']} tokens, max {result['max_tokens']} new tokens"),
        ("cold first call", (f"{cold['prompt_tokens_evaluated']} tokens evaluated in {cold['prompt_eval_ms']} ms, "
                            f"first token {cold['ttft_ms']} ms, complete {cold['total_ms']} ms")),
        ("prefix warm-up", f"{warm_up['prompt_tokens_evaluated']} tokens in {warm_up['prompt_eval_ms']} ms"),
        (f"warm runs (n={result['runs']})",
         f"{warm['prompt_tokens_evaluated_p50']} tokens evaluated (p50) in {warm['prompt_eval_ms_p50']} ms"),
        ("time to first token", f"p50 {warm['ttft_ms_p50']} ms, p95 {warm['ttft_ms_p95']} ms"),
        ("full completion", (f"p50 {warm['latency_ms_p50']} ms, p95 {warm['latency_ms_p95']} ms "
                            f"({warm['completion_tokens_mean']} tokens on average)")),
        ("prompt eval speed", f"{warm['prompt_tokens_per_s']} tokens/s"),
        ("decode speed", f"{warm['decode_tokens_per_s_p50']} tokens/s (p50)"),
        (f"raw vs adapter (n={pair['pairs']})",
         (f"decode {pair['raw_decode_tokens_per_s_p50']} vs {pair['adapter_decode_tokens_per_s_p50']} tokens/s, "
         f"first token {pair['raw_ttft_ms_p50']} vs {pair['adapter_ttft_ms_p50']} ms, "
         f"complete {pair['raw_total_ms_p50']} vs {pair['adapter_total_ms_p50']} ms")),
        ("peak RSS", f"{result['peak_rss_mb']} MB"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
