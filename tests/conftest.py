"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The embedded chat model is assembled once (491 MB) and kept here between runs; /.data/ is git-ignored.
TEST_MODELS_DIR = REPO_ROOT / ".data" / "test-models"


@pytest.fixture(scope="session")
def embedded_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The verified embedded GGUF, assembled from its chunk packages on first use and cached across runs."""
    from copilot.config import load_settings
    from copilot.models.gguf import ensure_embedded_model

    settings = load_settings(data_dir=tmp_path_factory.mktemp("model-data"))
    return ensure_embedded_model(settings, models_dir=TEST_MODELS_DIR)
