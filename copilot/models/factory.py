"""Build the chat model and the embedder named in the settings, through one registry of backends."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel

from copilot.config import Settings
from copilot.errors import ConfigError
from copilot.models.runtime import configure_runtime

# Backend name -> "module:builder". Builders are imported on use, so the local backend never imports the
# OpenAI client and vice versa; a new provider is one module plus one line here.
CHAT_BACKENDS: dict[str, str] = {
    "local": "copilot.models.llamacpp:build_llamacpp_chat",
    "openai": "copilot.models.openai_backend:build_openai_chat",
}
EMBEDDING_BACKENDS: dict[str, str] = {
    "minilm": "copilot.models.factory:build_minilm_embeddings",
    "openai": "copilot.models.openai_backend:build_openai_embeddings",
}


def _builder(registry: dict[str, str], name: str, kind: str) -> Callable[[Settings], Any]:
    try:
        target = registry[name]
    except KeyError:
        raise ConfigError(f"unknown {kind} backend {name!r}; known: {', '.join(sorted(registry))}") from None
    module_name, _, attribute = target.partition(":")
    configure_runtime()  # before the backend module imports llama_cpp or torch
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"the {kind} backend {name!r} cannot load ({exc}): run `make setup`") from exc
    builder: Callable[[Settings], Any] = getattr(module, attribute)
    return builder


def build_chat(settings: Settings) -> BaseChatModel:
    """The chat model of ``settings.chat_backend``; a missing model, package or key fails here."""
    chat: BaseChatModel = _builder(CHAT_BACKENDS, settings.chat_backend, "chat")(settings)
    return chat


def build_embedder(settings: Settings) -> Embeddings:
    """The embedder of ``settings.embedding_backend``; a missing model, package or key fails here."""
    embedder: Embeddings = _builder(EMBEDDING_BACKENDS, settings.embedding_backend, "embedding")(settings)
    return embedder


def build_minilm_embeddings(settings: Settings) -> Embeddings:
    """The embedded all-MiniLM-L6-v2 embedder."""
    from copilot.models.embeddings import MiniLMEmbeddings

    return MiniLMEmbeddings(batch_size=settings.embedding_batch_size, threads=settings.n_threads)


def model_label(chat: BaseChatModel) -> str:
    """A short, stable name of a chat model for run records, e.g. ``llama-cpp:qwen2.5-...gguf``."""
    kind = getattr(chat, "_llm_type", type(chat).__name__)
    name = getattr(chat, "model_name", None) or getattr(chat, "model", None)
    label = f"{kind}:{name}" if name else str(kind)
    base_url = getattr(chat, "openai_api_base", None)
    if base_url:
        host = urlparse(str(base_url)).netloc
        if host and host != "api.openai.com":
            label += f"@{host}"
    return label
