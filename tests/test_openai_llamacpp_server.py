"""The openai backend against llama-cpp-python's own OpenAI-compatible server running the embedded model.

That server takes ``response_format`` only as ``text`` or ``json_object``; a ``json_schema`` request is refused.
Drafts, community posts and the CLI must still work through it (slow: ``-m e2e``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from copilot.cli import main
from copilot.community.starters import draft_starters
from copilot.config import Settings
from copilot.models.openai_backend import CopilotChatOpenAI
from copilot.pipeline import build_pipeline
from copilot.types import Inbound

REPO = Path(__file__).resolve().parent.parent
MODEL_NAME = "embedded"

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(embedded_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path),
             "--model_alias", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
             "--n_ctx", "4096", "--n_threads", "2", "--verbose", "false"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not start in 120 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def settings(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    CopilotChatOpenAI.accepted_formats.clear()
    settings = Settings(data_dir=tmp_path_factory.mktemp("openai-e2e"), kb_dir=REPO / "knowledge",
                        chat_backend="openai", openai_base_url=server_url, openai_model=MODEL_NAME,
                        openai_timeout_s=120.0)
    build_pipeline(settings).ingest()
    return settings


def test_the_server_refuses_json_schema(server_url: str) -> None:
    """The premise: if this ever passes, the negotiation below is no longer exercised."""
    body = {"model": MODEL_NAME, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}}
    answer = httpx.post(f"{server_url}/chat/completions", json=body, timeout=60)
    assert answer.status_code >= 400
    assert "json_object" in answer.text


def test_full_drafts_negotiate_json_object_with_the_schema(settings: Settings) -> None:
    pipeline = build_pipeline(settings.model_copy(update={"draft_mode": "full"}))
    draft = pipeline.drafter.draft(Inbound(text="my hub light is solid amber and the app says offline",
                                           channel="forum", author="dana"))

    assert draft.status != "failed" and draft.text.strip()
    assert "{" not in draft.text and "cite" not in draft.text
    key = f"{settings.openai_base_url}|{MODEL_NAME}"
    assert CopilotChatOpenAI.accepted_formats[key] == "json_object+schema"


def test_community_starters_come_back_through_the_server(settings: Settings) -> None:
    pipeline = build_pipeline(settings)
    run = draft_starters(pipeline, topic="energy saving with smart bulbs", n=2)

    assert run.drafts and all(d.text.strip() for d in run.drafts)


def test_cli_draft_exits_zero(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in {"COPILOT_DATA_DIR": str(settings.data_dir), "COPILOT_KB_DIR": str(settings.kb_dir),
                        "COPILOT_CHAT_BACKEND": "openai", "COPILOT_OPENAI_BASE_URL": settings.openai_base_url,
                        "COPILOT_OPENAI_MODEL": MODEL_NAME, "COPILOT_OPENAI_TIMEOUT_S": "120"}.items():
        monkeypatch.setenv(name, str(value))

    code = main(["draft", "--channel", "twitter", "--author", "@lee", "--no-queue", "--no-stream", "--json",
                 "the bulb keeps dropping off my wifi every evening"])

    assert code in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["text"].startswith("@lee")
