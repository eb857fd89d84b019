"""The OpenAI-compatible backend (OpenAI, vLLM, Ollama, a llama.cpp server): chat model and embedder.

Both are langchain-openai classes with one addition: a failure of the server surfaces as the project's typed
errors (``ProviderError``, or ``ConfigError`` for a refused key) instead of the ``openai`` package's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr

from copilot.config import Settings
from copilot.errors import ConfigError, ProviderError

try:
    import openai
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ConfigError("langchain-openai is missing: run `make setup` (or `pip install langchain-openai`)") from exc

OPENAI_URL = "https://api.openai.com/v1"
# Local servers (vLLM, Ollama, llama.cpp) ignore the key, but the client insists on one.
PLACEHOLDER_KEY = "not-needed"
DEFAULT_MAX_RETRIES = 2


@contextmanager
def _provider_errors(base_url: str | None) -> Iterator[None]:
    """Turn the ``openai`` client's exceptions into the project's typed errors."""
    where = base_url or OPENAI_URL
    try:
        yield
    except openai.AuthenticationError as exc:
        raise ConfigError(f"{where} refused the API key ({exc.status_code}): check COPILOT_OPENAI_API_KEY") from exc
    except openai.APIStatusError as exc:
        raise ProviderError(f"{where} answered {exc.status_code}: {exc.message}") from exc
    except openai.APITimeoutError as exc:
        raise ProviderError(f"{where} timed out: raise COPILOT_OPENAI_TIMEOUT_S or check the server") from exc
    except openai.APIConnectionError as exc:
        raise ProviderError(f"cannot reach {where}: {exc}") from exc


class CopilotChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` whose server failures raise ``ProviderError`` / ``ConfigError``."""

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        with _provider_errors(self.openai_api_base):
            return super()._generate(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with _provider_errors(self.openai_api_base):
            yield from super()._stream(*args, **kwargs)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        with _provider_errors(self.openai_api_base):
            return await super()._agenerate(*args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        with _provider_errors(self.openai_api_base):
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk


class CopilotOpenAIEmbeddings(OpenAIEmbeddings):
    """``OpenAIEmbeddings`` whose server failures raise ``ProviderError`` / ``ConfigError``."""

    def embed_documents(self, texts: list[str], chunk_size: int | None = None, **kwargs: Any) -> list[list[float]]:
        with _provider_errors(self.openai_api_base):
            return super().embed_documents(texts, chunk_size, **kwargs)

    def embed_query(self, text: str, **kwargs: Any) -> list[float]:
        with _provider_errors(self.openai_api_base):
            return super().embed_query(text, **kwargs)


def _endpoint(settings: Settings) -> tuple[str, str]:
    """Base URL and key; a key is required only when talking to api.openai.com."""
    base_url = (settings.openai_base_url or OPENAI_URL).rstrip("/")
    if settings.openai_api_key:
        return base_url, settings.openai_api_key
    if urlparse(base_url).hostname == "api.openai.com":
        raise ConfigError(
            "the openai backend needs a key for api.openai.com: set COPILOT_OPENAI_API_KEY "
            "(or COPILOT_OPENAI_BASE_URL for a local OpenAI-compatible server)"
        )
    return base_url, PLACEHOLDER_KEY


def build_openai_chat(
    settings: Settings, *, streaming: bool = False, max_retries: int = DEFAULT_MAX_RETRIES
) -> CopilotChatOpenAI:
    """A chat model on an OpenAI-compatible endpoint, configured from settings."""
    base_url, api_key = _endpoint(settings)
    return CopilotChatOpenAI(
        model=settings.openai_model,
        base_url=base_url,
        api_key=SecretStr(api_key),
        timeout=settings.openai_timeout_s,
        max_retries=max_retries,
        streaming=streaming,
        stream_usage=True,
        use_responses_api=False,  # vLLM, Ollama and llama.cpp servers speak Chat Completions
        temperature=settings.temperature,
        max_completion_tokens=settings.max_tokens,
        seed=settings.seed,
    )


def build_openai_embeddings(
    settings: Settings, *, max_retries: int = DEFAULT_MAX_RETRIES
) -> CopilotOpenAIEmbeddings:
    """An embedder on an OpenAI-compatible endpoint, configured from settings."""
    base_url, api_key = _endpoint(settings)
    return CopilotOpenAIEmbeddings(
        model=settings.openai_embedding_model,
        base_url=base_url,
        api_key=SecretStr(api_key),
        timeout=settings.openai_timeout_s,
        max_retries=max_retries,
        chunk_size=settings.embedding_batch_size,
        # Send raw text: token-splitting needs tiktoken's vocabulary files, fetched from the internet.
        check_embedding_ctx_length=False,
    )
