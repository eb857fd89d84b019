"""The OpenAI-compatible backend against a real (tiny) OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from copilot.config import Settings, load_settings
from copilot.errors import ConfigError, ProviderError
from copilot.models.embeddings import as_matrix
from copilot.models.factory import build_chat, build_embedder, model_label
from copilot.models.openai_backend import (
    PLACEHOLDER_KEY,
    CopilotChatOpenAI,
    build_openai_chat,
    build_openai_embeddings,
)

REPLY = "Sorry about the drops! Move the router to channel 6 [kb-wifi-drops]."
DIM = 8


def fake_vector(text: str) -> list[float]:
    """A deterministic embedding derived from the text."""
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255 for b in digest[:DIM]]


class StubOpenAI(BaseHTTPRequestHandler):
    """Chat completions (JSON and SSE) and embeddings, the way OpenAI-compatible servers answer."""

    server: StubServer

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        return

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if body.get("model") == "broken":
            self._send_json(500, {"error": {"message": "model crashed", "type": "server_error"}})
        elif body.get("model") == "locked":
            self._send_json(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
        elif body.get("model") == "no-schema" and body.get("response_format", {}).get("type") == "json_schema":
            # What llama-cpp-python's server answers: a validation error, sent as a 500.
            self._send_json(500, {"error": {"message": "1 validation error: ('body', 'response_format', 'type') "
                                            "Input should be 'text' or 'json_object'", "type": "internal_server_error"}})
        elif body.get("model") == "no-format" and "response_format" in body:
            self._send_json(400, {"error": {"message": "Unrecognized request argument supplied: response_format",
                                            "type": "invalid_request_error"}})
        elif self.path == "/v1/chat/completions" and body.get("stream"):
            self._stream_chat(body)
        elif self.path == "/v1/chat/completions":
            self._send_json(200, {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": REPLY}}],
                "usage": {"prompt_tokens": 21, "completion_tokens": 13, "total_tokens": 34},
            })
        elif self.path == "/v1/embeddings":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            self._send_json(200, {
                "object": "list", "model": body["model"],
                "data": [{"object": "embedding", "index": i, "embedding": fake_vector(text)}
                         for i, text in enumerate(inputs)],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            })
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def _stream_chat(self, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
        words = REPLY.split(" ")
        events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        events += [
            {**base, "choices": [{"index": 0, "delta": {"content": (" " if i else "") + word}}]}
            for i, word in enumerate(words)
        ]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if body.get("stream_options", {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": len(words),
                                                             "total_tokens": 21 + len(words)}})
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[dict[str, Any]]


@pytest.fixture(scope="module")
def stub_server() -> Iterator[StubServer]:
    server = StubServer(("127.0.0.1", 0), StubOpenAI)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(stub_server: StubServer, tmp_path: Path) -> Settings:
    stub_server.requests.clear()
    return load_settings(
        data_dir=tmp_path, chat_backend="openai", embedding_backend="openai",
        openai_base_url=f"http://127.0.0.1:{stub_server.server_port}/v1", openai_api_key=None, openai_model="stub-chat",
        openai_embedding_model="stub-embed", openai_timeout_s=5.0,
    )


MESSAGES = [SystemMessage("You are a support agent."), HumanMessage("My bulb drops off wifi")]


def test_chat_returns_text_and_usage(settings: Settings, stub_server: StubServer) -> None:
    reply = build_openai_chat(settings).invoke(MESSAGES)

    assert reply.content == REPLY
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] == 13
    sent = stub_server.requests[-1]
    assert sent["body"]["model"] == "stub-chat"
    assert [m["role"] for m in sent["body"]["messages"]] == ["system", "user"]
    assert sent["auth"] == f"Bearer {PLACEHOLDER_KEY}"  # a local server needs no real key


def test_chat_streams_chunks(settings: Settings, stub_server: StubServer) -> None:
    chunks = list(build_openai_chat(settings, streaming=True).stream(MESSAGES))

    texts = [chunk.text for chunk in chunks if chunk.text]
    assert len(texts) > 1
    assert "".join(texts) == REPLY
    assert stub_server.requests[-1]["body"]["stream"] is True
    assert any(chunk.usage_metadata for chunk in chunks)


def test_streaming_setting_streams_under_invoke(settings: Settings, stub_server: StubServer) -> None:
    reply = build_openai_chat(settings, streaming=True).invoke(MESSAGES)

    assert reply.content == REPLY
    assert stub_server.requests[-1]["body"]["stream"] is True


def test_settings_reach_the_request(settings: Settings, stub_server: StubServer) -> None:
    build_openai_chat(settings.model_copy(update={"temperature": 0.0, "max_tokens": 42, "seed": 3})).invoke(MESSAGES)

    body = stub_server.requests[-1]["body"]
    assert body["temperature"] == 0.0
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 42
    assert body["seed"] == 3


def test_embeddings_come_back_in_order(settings: Settings, stub_server: StubServer) -> None:
    embedder = build_openai_embeddings(settings)
    texts = ["reset a bulb", "double charge", "hub offline"]

    vectors = embedder.embed_documents(texts)
    query = embedder.embed_query("reset a bulb")

    assert vectors == [pytest.approx(fake_vector(t)) for t in texts]
    assert query == pytest.approx(vectors[0])
    assert stub_server.requests[0]["path"] == "/v1/embeddings"
    matrix = as_matrix(embedder, texts)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0)


def test_server_error_is_a_provider_error(settings: Settings) -> None:
    chat = build_openai_chat(settings.model_copy(update={"openai_model": "broken"}), max_retries=0)

    with pytest.raises(ProviderError, match="500"):
        chat.invoke(MESSAGES)
    with pytest.raises(ProviderError, match="500"):
        list(chat.stream(MESSAGES))


def test_embedding_server_error_is_a_provider_error(settings: Settings) -> None:
    embedder = build_openai_embeddings(settings.model_copy(update={"openai_embedding_model": "broken"}),
                                       max_retries=0)

    with pytest.raises(ProviderError, match="500"):
        embedder.embed_documents(["x"])


def test_refused_key_names_the_setting(settings: Settings) -> None:
    chat = build_openai_chat(settings.model_copy(update={"openai_model": "locked"}), max_retries=0)

    with pytest.raises(ConfigError, match="COPILOT_OPENAI_API_KEY"):
        chat.invoke(MESSAGES)


def test_unreachable_server_is_a_provider_error(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, openai_base_url="http://127.0.0.1:9/v1", openai_timeout_s=2.0)

    with pytest.raises(ProviderError, match="cannot reach"):
        build_openai_chat(settings, max_retries=0).invoke(MESSAGES)


def test_openai_without_key_fails_at_build(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, chat_backend="openai", openai_base_url=None, openai_api_key=None)

    with pytest.raises(ConfigError, match="COPILOT_OPENAI_API_KEY"):
        build_chat(settings)
    with pytest.raises(ConfigError, match="COPILOT_OPENAI_API_KEY"):
        build_openai_embeddings(settings)


def test_real_key_is_sent(settings: Settings, stub_server: StubServer) -> None:
    build_openai_chat(settings.model_copy(update={"openai_api_key": "sk-test-123"})).invoke(MESSAGES)

    assert stub_server.requests[-1]["auth"] == "Bearer sk-test-123"


def test_factory_dispatches_to_the_openai_backend(settings: Settings, stub_server: StubServer) -> None:
    chat = build_chat(settings)
    embedder = build_embedder(settings)

    assert chat.invoke(MESSAGES).content == REPLY
    assert embedder.embed_query("hub offline") == pytest.approx(fake_vector("hub offline"))
    assert model_label(chat) == f"openai-chat:stub-chat@127.0.0.1:{stub_server.server_port}"


SCHEMA = {"type": "object", "properties": {"reply": {"type": "string"}}, "required": ["reply"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA}}


def _formats_sent(stub_server: StubServer) -> list[Any]:
    return [r["body"].get("response_format") for r in stub_server.requests if r["path"] == "/v1/chat/completions"]


@pytest.fixture
def fresh_formats() -> Iterator[None]:
    saved = dict(CopilotChatOpenAI.accepted_formats)
    CopilotChatOpenAI.accepted_formats.clear()
    yield
    CopilotChatOpenAI.accepted_formats.clear()
    CopilotChatOpenAI.accepted_formats.update(saved)


@pytest.mark.usefixtures("fresh_formats")
def test_json_schema_is_sent_to_a_server_that_takes_it(settings: Settings, stub_server: StubServer) -> None:
    chat = build_openai_chat(settings, max_retries=0)

    chat.invoke(MESSAGES, response_format=JSON_SCHEMA)
    chat.invoke(MESSAGES, response_format=JSON_SCHEMA)

    assert _formats_sent(stub_server) == [JSON_SCHEMA, JSON_SCHEMA]


@pytest.mark.usefixtures("fresh_formats")
@pytest.mark.parametrize("streaming", [False, True])
def test_a_server_without_json_schema_gets_json_object_with_the_schema(
    settings: Settings, stub_server: StubServer, streaming: bool
) -> None:
    chat = build_openai_chat(settings.model_copy(update={"openai_model": "no-schema"}), max_retries=0)

    def call() -> str:
        if streaming:
            return "".join(chunk.text for chunk in chat.stream(MESSAGES, response_format=JSON_SCHEMA))
        return str(chat.invoke(MESSAGES, response_format=JSON_SCHEMA).content)

    assert call() == REPLY
    assert _formats_sent(stub_server) == [JSON_SCHEMA, {"type": "json_object", "schema": SCHEMA}]

    stub_server.requests.clear()
    assert call() == REPLY  # remembered: no second probe
    assert _formats_sent(stub_server) == [{"type": "json_object", "schema": SCHEMA}]


@pytest.mark.usefixtures("fresh_formats")
def test_a_server_without_response_format_gets_instructions_only(
    settings: Settings, stub_server: StubServer
) -> None:
    chat = build_openai_chat(settings.model_copy(update={"openai_model": "no-format"}), max_retries=0)

    assert chat.invoke(MESSAGES, response_format=JSON_SCHEMA).content == REPLY
    assert _formats_sent(stub_server) == [JSON_SCHEMA, {"type": "json_object", "schema": SCHEMA},
                                          {"type": "json_object"}, None]
    stub_server.requests.clear()

    assert chat.invoke(MESSAGES, response_format=JSON_SCHEMA).content == REPLY
    assert _formats_sent(stub_server) == [None]


@pytest.mark.usefixtures("fresh_formats")
def test_an_error_that_is_not_about_the_format_is_not_retried(settings: Settings, stub_server: StubServer) -> None:
    chat = build_openai_chat(settings.model_copy(update={"openai_model": "broken"}), max_retries=0)

    with pytest.raises(ProviderError, match="500"):
        chat.invoke(MESSAGES, response_format=JSON_SCHEMA)
    assert len(_formats_sent(stub_server)) == 1
    assert CopilotChatOpenAI.accepted_formats == {}
