"""``copilot ui`` starts on the embedded defaults at once (the models load behind it) and asks for a login."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(180)
def test_copilot_ui_starts_with_a_first_run_admin_and_a_login_page(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "COPILOT_DATA_DIR": str(tmp_path / "data"), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "copilot", "ui", "--port", str(port)], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        page = None
        while time.monotonic() - started < 120 and proc.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        up_s = time.monotonic() - started
        assert page is not None, f"the app did not come up: {''.join(lines)}"
        assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
        assert httpx.get(f"http://127.0.0.1:{port}/config", timeout=5).status_code == 401
        output = "".join(lines)
        password = re.search(r"created the admin user 'admin' with the password\s+(\S+)", output)
        assert password, output
        kept = tmp_path / "data" / "admin-password.txt"
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and password.group(1) in kept.read_text()
        login = httpx.post(f"http://127.0.0.1:{port}/login", data={"username": "admin", "password": password.group(1)},
                           timeout=10)
        assert login.status_code == 200 and login.json() == {"success": True}
        assert up_s < 60, f"the page took {up_s:.0f} s to come up"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
