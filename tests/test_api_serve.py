"""``copilot serve`` for real: a subprocess on a free port (fake models) serving the web app at ``/``, the API
and its docs, drafting a message over HTTP once the start-up has indexed, and stopping on Ctrl+C."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _ports import free_port
from _ui_support import COMPLAINT, KB

from copilot.config import Settings
from copilot.queue.store import open_queue

TESTS = Path(__file__).resolve().parent
# The real command, with the models replaced by the tests' fakes before it builds its pipeline.
LAUNCH = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from fakes import FakeChat, HashEmbeddings
from _ui_support import REPLY, RuleTriager
import copilot.cli.serve_cmd as serve
from copilot.pipeline import build_pipeline
serve.build_pipeline = lambda settings: build_pipeline(
    settings, chat=FakeChat(replies=[REPLY]), embedder=HashEmbeddings(), triager=RuleTriager())
from copilot.cli import main
sys.exit(main(sys.argv[1:]))
"""



def get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = free_port()
    env = {**os.environ, "COPILOT_DATA_DIR": str(tmp_path / "data"), "COPILOT_CONFIG": str(tmp_path / "absent.toml"),
           "COPILOT_API_MAX_BODY_BYTES": "5000"}
    env.pop("COPILOT_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "serve", "--port", str(port), "--kb", str(KB)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"copilot serve exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
            try:
                if get(f"{base}/api/v1/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("copilot serve did not answer within 60 s")
            time.sleep(0.2)
        yield base, proc, tmp_path / "data"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_copilot_serve_answers_the_web_app_and_the_api_on_one_port(served: tuple[str, subprocess.Popen[str], Path]
                                                                   ) -> None:
    base, proc, data_dir = served
    status, body = get(f"{base}/api/v1/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = get(f"{base}/")
    assert status == 200 and b"<html" in body.lower()  # the web app (its login page)
    status, body = get(f"{base}/api/v1/docs")
    assert status == 200 and b"swagger" in body.lower()
    status, body = get(f"{base}/api/v1/items")
    assert status == 401 and json.loads(body)["error"]["status"] == 401

    with open_queue(Settings(data_dir=data_dir)) as queue:  # the first start made the admin
        _, token = queue.create_token("admin", label="test")
    message = json.dumps({"text": COMPLAINT, "channel": "twitter", "author": "@dana"}).encode()
    status, body = get(f"{base}/api/v1/messages", data=message,
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert status == 201, body
    item = json.loads(body)["item"]
    assert item["status"] == "pending" and "dimmer" in item["text"]

    # A chunked body (no Content-Length) over the limit is refused while it streams.
    conn = http.client.HTTPConnection("127.0.0.1", int(base.rsplit(":", 1)[1]), timeout=30)
    conn.putrequest("POST", "/api/v1/triage")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b'{"text": "' + b"x" * 1000
    try:
        for _ in range(10):
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close the connection once it has answered
    response = conn.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"]["status"] == 413
    conn.close()

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    assert proc.stderr is not None and "the API at /api/v1" in proc.stderr.read()


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = {**os.environ, "COPILOT_DATA_DIR": str(tmp_path), "COPILOT_CONFIG": str(tmp_path / "absent.toml")}
        done = subprocess.run([sys.executable, "-m", "copilot", "serve", "--port", str(port)], env=env, check=False,
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
