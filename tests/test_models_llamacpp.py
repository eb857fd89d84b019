"""The local llama.cpp chat model: prefix-state cache, factory wiring, and the real embedded model (e2e)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage

from copilot.config import load_settings
from copilot.errors import ConfigError, ProviderError
from copilot.models.factory import CHAT_BACKENDS, _builder, build_chat, model_label
from copilot.models.llamacpp import LlamaCppChat, build_llamacpp_chat, grammar_for, to_chat_messages
from copilot.models.llamacpp_state import PrefixStates, unload_all

SUPPORT = SystemMessage(
    "You are the support assistant of Lumio, a smart-lighting brand. Answer the customer in one or two short, "
    "kind sentences. Use only the facts you are given and never invent a fix. Offer more help at the end."
)
COMMUNITY = SystemMessage(
    "You write short, friendly discussion starters for the Lumio community forum. One question, no hashtags."
)


def tokens(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.intc)


def test_prefix_states_find_the_longest_shared_prefix() -> None:
    states = PrefixStates(capacity_bytes=1 << 20)
    states.put(tokens(1, 2, 3, 4), b"a")
    states.put(tokens(1, 2, 9), b"b")
    states.put(tokens(7, 8), b"c")

    snapshot, shared = states.best(tokens(1, 2, 3, 5, 6))
    assert snapshot is not None and snapshot.state == b"a" and shared == 3
    snapshot, shared = states.best(tokens(7, 8, 9))
    assert snapshot is not None and snapshot.state == b"c" and shared == 2
    assert states.best(tokens(5)) == (None, 0)


def test_prefix_states_evict_old_snapshots_but_keep_pinned_ones() -> None:
    states = PrefixStates(capacity_bytes=250)
    states.put(tokens(1, 1), b"p" * 100, pinned=True)
    states.put(tokens(2, 2), b"x" * 100)
    states.put(tokens(3, 3), b"y" * 100)  # over capacity: the oldest unpinned one goes

    assert states.best(tokens(2, 2))[0] is None
    assert states.best(tokens(1, 1))[0] is not None
    assert states.best(tokens(3, 3))[0] is not None
    assert states.size_bytes <= 250


def test_messages_map_to_chat_roles() -> None:
    from langchain_core.messages import AIMessage, ToolMessage

    assert to_chat_messages([SUPPORT, HumanMessage("hi"), AIMessage("hello")]) == [
        {"role": "system", "content": SUPPORT.content},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    with pytest.raises(ProviderError, match="tool"):
        to_chat_messages([ToolMessage("x", tool_call_id="1")])


def test_response_format_becomes_a_grammar() -> None:
    assert grammar_for(None) is None
    assert grammar_for({"type": "text"}) is None
    schema = {"type": "object", "properties": {"reply": {"type": "string"}}, "required": ["reply"]}
    grammar = grammar_for({"type": "json_schema", "json_schema": {"name": "draft", "schema": schema}})
    assert "reply" in grammar._grammar
    with pytest.raises(ProviderError, match="json_object or json_schema"):
        grammar_for({"type": "xml"})


def test_local_backend_with_a_missing_model_fails_at_build(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, chat_backend="local", model_path=tmp_path / "gone.gguf")

    with pytest.raises(ConfigError, match="COPILOT_MODEL_PATH"):
        build_chat(settings)


def test_a_file_that_is_not_a_gguf_fails_at_build(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model at all" * 100)
    settings = load_settings(data_dir=tmp_path, model_path=bogus)

    with pytest.raises(ConfigError, match="COPILOT_MODEL_PATH"):
        build_llamacpp_chat(settings)


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: local, openai"):
        _builder(CHAT_BACKENDS, "mystery", "chat")


def test_model_label_names_the_gguf(tmp_path: Path) -> None:
    chat = LlamaCppChat(model_path=tmp_path / "tiny-q4.gguf")

    assert model_label(chat) == "llama-cpp:tiny-q4.gguf"


@pytest.fixture(scope="module")
def chat(embedded_model_path: Path) -> LlamaCppChat:
    settings = load_settings(model_path=embedded_model_path, max_tokens=24, temperature=0.2, seed=7)
    built = build_chat(settings)
    assert isinstance(built, LlamaCppChat)
    return built


@pytest.mark.e2e
def test_short_completion(chat: LlamaCppChat) -> None:
    reply = chat.invoke([SUPPORT, HumanMessage("My bulb keeps dropping off wifi. Any idea?")])

    assert isinstance(reply.content, str) and reply.content.strip()
    usage = reply.usage_metadata
    assert usage is not None
    assert 0 < usage["output_tokens"] <= 24
    assert usage["input_tokens"] > 40
    assert reply.response_metadata["finish_reason"] in {"stop", "length"}
    assert model_label(chat) == "llama-cpp:qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


@pytest.mark.e2e
def test_streaming_yields_tokens_and_usage(chat: LlamaCppChat) -> None:
    chunks = list(chat.stream([SUPPORT, HumanMessage("How do I reset a bulb?")]))

    texts = [c.text for c in chunks if c.text]
    assert len(texts) > 1
    assert "".join(texts).strip()
    last = chunks[-1]
    assert isinstance(last, AIMessageChunk)
    assert last.usage_metadata is not None and last.usage_metadata["output_tokens"] >= len(texts) - 1
    assert last.response_metadata["time_to_first_token_ms"] > 0


@pytest.mark.e2e
def test_same_prefix_is_not_evaluated_twice(chat: LlamaCppChat) -> None:
    chat.invoke([COMMUNITY, HumanMessage("Topic: holiday lights")])
    first = chat.last_stats
    chat.invoke([SUPPORT, HumanMessage("Where is my order? It has been five days.")])
    second = chat.last_stats
    chat.invoke([SUPPORT, HumanMessage("The app crashes when I open it.")])
    third = chat.last_stats

    assert first is not None and second is not None and third is not None
    # The support system prompt was evaluated by the second call and reused by the third.
    assert third.reused_tokens >= 40
    assert third.evaluated_tokens < second.evaluated_tokens
    assert third.evaluated_tokens < third.prompt_tokens - 40


@pytest.mark.e2e
def test_alternating_prefixes_still_hit_the_snapshot_cache(chat: LlamaCppChat) -> None:
    chat.warm_up([SUPPORT])
    chat.warm_up([COMMUNITY])
    chat.invoke([SUPPORT, HumanMessage("My hub is offline again.")])
    support = chat.last_stats
    chat.invoke([COMMUNITY, HumanMessage("Topic: energy saving")])
    community = chat.last_stats

    assert support is not None and community is not None
    assert support.restored_snapshot and community.restored_snapshot
    assert support.evaluated_tokens < support.prompt_tokens - 40
    assert community.evaluated_tokens < community.prompt_tokens - 20


@pytest.mark.e2e
def test_warm_up_makes_the_first_reply_skip_the_prefix(embedded_model_path: Path) -> None:
    # A different context size loads a separate model instance, so nothing is cached yet.
    fresh = LlamaCppChat(model_path=embedded_model_path, n_ctx=1024, n_threads=2, max_tokens=8).load()
    warm = fresh.warm_up([SUPPORT])
    fresh.invoke([SUPPORT, HumanMessage("Can I cut my light strip?")])
    stats = fresh.last_stats

    assert warm.evaluated_tokens > 40
    assert stats is not None and stats.reused_tokens >= warm.evaluated_tokens - 3
    assert stats.evaluated_tokens < stats.prompt_tokens - 40


@pytest.mark.e2e
def test_replies_are_reproducible_and_respect_stop_and_max_tokens(chat: LlamaCppChat) -> None:
    messages = [SUPPORT, HumanMessage("List three colours of light, one per line.")]

    # Same seed and same cache state (a freshly loaded model) give the same reply.
    unload_all()
    one = chat.invoke(messages, max_tokens=12)
    unload_all()
    two = chat.invoke(messages, max_tokens=12)
    assert one.content == two.content
    assert one.usage_metadata is not None and one.usage_metadata["output_tokens"] <= 12

    stopped = chat.invoke(messages, stop=["\n"], max_tokens=40)
    assert "\n" not in str(stopped.content)


@pytest.mark.e2e
def test_json_schema_output_parses(chat: LlamaCppChat) -> None:
    schema = {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "urgent": {"type": "boolean"},
        },
        "required": ["sentiment", "urgent"],
    }
    reply = chat.invoke(
        [SUPPORT, HumanMessage("Label this message as JSON: 'My hub is offline AGAIN, I am furious.'")],
        response_format={"type": "json_schema", "json_schema": {"name": "labels", "schema": schema}},
        max_tokens=40,
    )

    data = json.loads(str(reply.content))
    assert data["sentiment"] in {"positive", "neutral", "negative"}
    assert isinstance(data["urgent"], bool)


@pytest.mark.e2e
def test_a_prompt_over_the_context_window_is_a_clear_error(embedded_model_path: Path) -> None:
    small = LlamaCppChat(model_path=embedded_model_path, n_ctx=256, n_threads=2, max_tokens=8)

    with pytest.raises(ProviderError, match="context window"):
        small.invoke([SUPPORT, HumanMessage("lamp " * 400)])
