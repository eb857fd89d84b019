"""The OpenAI-compatible backend (OpenAI, vLLM, Ollama, a llama.cpp server): chat model and embedder.

Both are langchain-openai classes with two additions: a failure of the server surfaces as the project's typed
errors (``ProviderError``, or ``ConfigError`` for a refused key) instead of the ``openai`` package's own; and the
chat model negotiates structured output with the endpoint. OpenAI, vLLM and Ollama take a ``json_schema``
``response_format``; llama-cpp-python's server takes only ``json_object`` (with the schema beside it); some
servers take neither. The chat model steps down that ladder on a refusal and remembers, per endpoint, the first
form that was accepted, so only the first call pays for the probe.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar
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

log = logging.getLogger(__name__)

# Forms of structured output, strictest first. "instructions" sends no response_format: the prompt alone asks
# for JSON, as with COPILOT_STRUCTURED_OUTPUT=false.
FORMAT_LADDER = ("json_schema", "json_object+schema", "json_object", "instructions")
# Words in a refusal that point at response_format rather than at the request as a whole.
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured output", "guided_json")
# Status codes servers use to refuse a field: 400/422 for validation; llama-cpp-python answers 500.
_REFUSAL_STATUS = frozenset({400, 422, 500, 501})


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


def _schema_of(response_format: dict[str, Any]) -> dict[str, Any] | None:
    if response_format.get("type") == "json_schema":
        return (response_format.get("json_schema") or {}).get("schema")
    return response_format.get("schema")


def format_as(level: str, response_format: dict[str, Any]) -> dict[str, Any] | None:
    """``response_format`` rewritten in the form named by ``level`` (None: leave it out)."""
    schema = _schema_of(response_format)
    if level == "json_schema":
        if response_format.get("type") == "json_schema":
            return response_format
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}} if schema else None
    if level == "json_object+schema":
        return {"type": "json_object", "schema": schema} if schema else None
    if level == "json_object":
        return {"type": "json_object"}
    return None


def is_format_refusal(exc: openai.APIStatusError) -> bool:
    """Whether the server refused the request because of its ``response_format``."""
    if exc.status_code not in _REFUSAL_STATUS:
        return False
    text = f"{exc.message} {exc.body}".lower()
    return any(word in text for word in _FORMAT_WORDS)


class CopilotChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` whose server failures raise ``ProviderError`` / ``ConfigError``, and which negotiates
    the form of structured output with each endpoint."""

    # The form each endpoint accepted, shared by every client in the process (one probe per server).
    accepted_formats: ClassVar[dict[str, str]] = {}
    _formats_lock: ClassVar[threading.Lock] = threading.Lock()

    def _endpoint_key(self) -> str:
        return f"{self.openai_api_base or OPENAI_URL}|{self.model_name}"

    def _attempts(self, kwargs: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
        """The call options to try in order, each with the ladder level it stands for."""
        wanted = kwargs.get("response_format")
        if not isinstance(wanted, dict) or wanted.get("type") not in ("json_schema", "json_object"):
            return [(None, kwargs)]
        known = self.accepted_formats.get(self._endpoint_key())
        start = FORMAT_LADDER.index(known) if known else 0
        if wanted.get("type") == "json_object":
            start = max(start, 1)
        attempts: list[tuple[str | None, dict[str, Any]]] = []
        seen: list[dict[str, Any] | None] = []
        for level in FORMAT_LADDER[start:]:
            form = format_as(level, wanted)
            if (form is None and level != "instructions") or form in seen:
                continue
            seen.append(form)
            options = {k: v for k, v in kwargs.items() if k != "response_format"}
            if form is not None:
                options["response_format"] = form
            attempts.append((level, options))
        return attempts

    def _accepted(self, level: str | None) -> None:
        if level is None:
            return
        key = self._endpoint_key()
        with self._formats_lock:
            if self.accepted_formats.get(key) != level:
                if level != FORMAT_LADDER[0]:
                    log.warning("%s does not take a json_schema response_format; using %s from now on",
                                self.openai_api_base or OPENAI_URL, level)
                self.accepted_formats[key] = level

    def _refused(self, level: str | None, exc: openai.APIStatusError, last: bool) -> bool:
        """Whether to step down to the next form after this error."""
        if level is None or last or not is_format_refusal(exc):
            return False
        log.info("%s refused response_format as %s (%s): trying the next form",
                 self.openai_api_base or OPENAI_URL, level, exc.status_code)
        return True

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        attempts = self._attempts(kwargs)
        with _provider_errors(self.openai_api_base):
            for number, (level, options) in enumerate(attempts, 1):
                try:
                    result = super()._generate(messages, stop, run_manager, **options)
                except openai.APIStatusError as exc:
                    if self._refused(level, exc, number == len(attempts)):
                        continue
                    raise
                self._accepted(level)
                return result
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Iterator[Any]:
        attempts = self._attempts(kwargs)
        with _provider_errors(self.openai_api_base):
            for number, (level, options) in enumerate(attempts, 1):
                started = False
                try:
                    for chunk in super()._stream(messages, stop, run_manager, **options):
                        if not started:
                            started = True
                            self._accepted(level)
                        yield chunk
                except openai.APIStatusError as exc:
                    # A refusal arrives before the first chunk; an error after it is not about the format.
                    if not started and self._refused(level, exc, number == len(attempts)):
                        continue
                    raise
                self._accepted(level)
                return

    async def _agenerate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        attempts = self._attempts(kwargs)
        with _provider_errors(self.openai_api_base):
            for number, (level, options) in enumerate(attempts, 1):
                try:
                    result = await super()._agenerate(messages, stop, run_manager, **options)
                except openai.APIStatusError as exc:
                    if self._refused(level, exc, number == len(attempts)):
                        continue
                    raise
                self._accepted(level)
                return result
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    async def _astream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[Any]:
        attempts = self._attempts(kwargs)
        with _provider_errors(self.openai_api_base):
            for number, (level, options) in enumerate(attempts, 1):
                started = False
                try:
                    async for chunk in super()._astream(messages, stop, run_manager, **options):
                        if not started:
                            started = True
                            self._accepted(level)
                        yield chunk
                except openai.APIStatusError as exc:
                    if not started and self._refused(level, exc, number == len(attempts)):
                        continue
                    raise
                self._accepted(level)
                return


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
