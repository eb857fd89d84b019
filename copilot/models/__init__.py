"""Model backends behind LangChain interfaces: chat models and embedders, one module per provider."""

import os

# llama.cpp's CPU backend (and torch) use OpenMP. With OpenMP's default spinning wait, two threads on a
# 2-core machine that is busy with other work (triage, embeddings, the UI, a second process) stall each
# other at every barrier: on a loaded machine decode fell from ~20 to ~2.5 tokens/s. Passive waiting keeps
# the speed of one free core. libgomp reads this once, when it loads (with llama_cpp or torch), so it is set
# as soon as this package is imported; an explicit OMP_WAIT_POLICY in the environment still wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
