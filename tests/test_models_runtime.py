"""The model libraries' process environment: set by ``configure_runtime`` at an entry point, never by an import.

Each check runs in a fresh interpreter, so what this test process has already imported or set cannot hide
an import-time write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

RUNTIME_KEYS = ("OMP_WAIT_POLICY", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS",
                "TRANSFORMERS_VERBOSITY")


def _run(code: str, **env: str) -> dict[str, str]:
    """Run ``code`` in a fresh interpreter without the runtime variables (plus ``env``); its JSON result."""
    clean = {k: v for k, v in os.environ.items() if k not in RUNTIME_KEYS}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_model_modules_leaves_the_environment_alone() -> None:
    changed = _run(
        "import json, os\n"
        "before = dict(os.environ)\n"
        "import copilot.models, copilot.models.factory, copilot.models.embeddings, copilot.models.runtime\n"
        "import copilot.cli\n"
        "after = dict(os.environ)\n"
        "print(json.dumps({k: after.get(k, '<unset>') for k in set(before) | set(after)"
        " if before.get(k) != after.get(k)}))\n"
    )
    assert changed == {}


def test_configure_runtime_sets_defaults_and_an_explicit_value_wins() -> None:
    seen = _run(
        "import json, os\n"
        "from copilot.models.runtime import configure_runtime\n"
        "configure_runtime()\n"
        "configure_runtime()\n"
        f"print(json.dumps({{k: os.environ.get(k) for k in {RUNTIME_KEYS!r}}}))\n",
        OMP_WAIT_POLICY="ACTIVE",
    )
    assert seen == {"OMP_WAIT_POLICY": "ACTIVE", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error"}


def test_the_cli_configures_the_runtime_before_running_a_command() -> None:
    seen = _run(
        "import contextlib, io, json, os\n"
        "from copilot.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps({'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY')}))\n"
    )
    assert seen == {"OMP_WAIT_POLICY": "PASSIVE"}
