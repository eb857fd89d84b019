"""The process environment the native model libraries read when they load, set once by an entry point."""

from __future__ import annotations

import os


def configure_runtime() -> None:
    """Set the environment llama.cpp, torch and the Hugging Face libraries read at load; explicit values win.

    Call it before ``llama_cpp`` or ``torch`` is imported: the CLI does so first thing, the model factory
    before it loads a backend, and the MiniLM loader before it imports sentence-transformers. Calling it
    again changes nothing.
    """
    # llama.cpp's CPU backend (and torch) use OpenMP. With OpenMP's default spinning wait, two threads on a
    # 2-core machine that is busy with other work (triage, embeddings, the UI, a second process) stall each
    # other at every barrier: on a loaded machine decode fell from ~20 to ~2.5 tokens/s. Passive waiting keeps
    # the speed of one free core. libgomp reads this once, when it loads (with llama_cpp or torch), so it must
    # be set before either is imported; an explicit OMP_WAIT_POLICY in the environment still wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Never reach for a hub: the embedding weights ship in a package.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
