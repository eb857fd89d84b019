"""Shared set-up for the triage tests: the seed model fitted once per run on the deterministic fake embedder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fakes import HashEmbeddings

from copilot.triage.model import TriageModel
from copilot.triage.training import load_seed_model, seed_key

REPO_ROOT = Path(__file__).resolve().parent.parent
HOLDOUT = REPO_ROOT / "evals" / "datasets" / "triage_holdout.jsonl"
AIRLINE = REPO_ROOT.parent / "shared" / "datasets" / "airline-tweets-dev" / "tweets_dev.csv"


# The fitted seed model is kept between runs (keyed by a hash of the seed data, so it refits when that
# changes); /.data/ is git-ignored.
FAKE_SEED_CACHE = REPO_ROOT / ".data" / "test-triage" / "hash-bow"


@pytest.fixture(scope="session")
def fake_seed_dir() -> Path:
    """A folder holding the seed model (and its features) fitted on ``HashEmbeddings``."""
    load_seed_model(FAKE_SEED_CACHE, HashEmbeddings())
    return FAKE_SEED_CACHE


def seed_model(folder: Path) -> TriageModel:
    return TriageModel.load(folder, f"seed-{seed_key(HashEmbeddings())}")


def copy_seed(folder: Path, data_dir: Path) -> Path:
    """Put the fitted seed model in ``<data_dir>/triage`` so a test starts warm."""
    target = data_dir / "triage"
    target.mkdir(parents=True, exist_ok=True)
    stem = f"seed-{seed_key(HashEmbeddings())}"
    for suffix in (".npz", ".json", ".features.npz"):
        shutil.copy2(folder / f"{stem}{suffix}", target / f"{stem}{suffix}")
    return target
