"""Settings: one pydantic-settings object (``COPILOT_`` prefix, optional ``copilot.toml``), built at the entry point."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CHANNELS = ("twitter", "facebook", "instagram", "forum", "email", "chat")
Channel = Literal["twitter", "facebook", "instagram", "forum", "email", "chat"]


class ChannelProfile(BaseModel):
    """How a reply must look on one channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_chars: int = Field(gt=20)
    style: str
    use_handle: bool = False
    greeting: bool = False
    sign_off: bool = False
    public: bool = True
    private_channel: str = "a direct message"


def _default_channels() -> dict[str, ChannelProfile]:
    return {
        "twitter": ChannelProfile(
            max_chars=280, style="brief, warm and plain; one or two short sentences", use_handle=True,
            private_channel="a DM"),
        "facebook": ChannelProfile(
            max_chars=600, style="friendly and conversational, short paragraphs", use_handle=True,
            private_channel="a private message"),
        "instagram": ChannelProfile(
            max_chars=400, style="friendly and light, no long instructions in a comment", use_handle=True,
            private_channel="a DM"),
        "forum": ChannelProfile(
            max_chars=1500, style="helpful and complete; numbered steps are welcome", use_handle=True,
            greeting=True, private_channel="a private message"),
        "email": ChannelProfile(
            max_chars=2000, style="courteous and complete, with a greeting and a sign-off", greeting=True,
            sign_off=True, public=False, private_channel="this email thread"),
        "chat": ChannelProfile(
            max_chars=500, style="quick, friendly and direct", public=False,
            private_channel="this chat"),
    }


def default_data_dir() -> Path:
    """The per-user data folder (XDG on Linux, Application Support on macOS, AppData on Windows)."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif os.uname().sysname == "Darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "copilot"


class Settings(BaseSettings):
    """Every setting of the copilot. Environment: ``COPILOT_<NAME>``; file: ``copilot.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="COPILOT_", env_nested_delimiter="__", extra="forbid", toml_file="copilot.toml",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    kb_dir: Path = Path("knowledge")
    prompts_dir: Path | None = None

    # Chat model
    chat_backend: Literal["local", "openai"] = "local"
    model_path: Path | None = None  # any GGUF; default: the assembled embedded model
    # The embedded model when model_path is unset: "fast" (0.5B, the default, it wins the support evaluation
    # here) or "quality" (1.5B, about three times slower; install it with `make setup-quality`).
    embedded_model: Literal["fast", "quality"] = "fast"
    n_threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1))
    n_ctx: int = 2048
    max_tokens: int = 160
    temperature: float = 0.2
    seed: int = 7
    # "compose": facts chosen from the passage, the model writes only the opening (right for small models);
    # "full": the model writes the whole reply from the passages (for a large model on a team's server).
    draft_mode: Literal["compose", "full"] = "compose"
    kb_language: str = "en"  # the knowledge base's language: other messages are translated for retrieval
    # Facts from a passage in another language than the customer's: translated by the chat model (checked
    # for numbers, lines and language), or kept as written with a note. Off by default: the 0.5B model's
    # translations of medical and technical facts read wrong ("une mascotte" for a mask); a team with a
    # larger model turns it on.
    translate_facts: bool = False
    reply_phrases: Path | None = None  # a team's own phrase book (the shape of copilot/data/reply_phrases.yaml)
    structured_output: bool = True  # JSON-schema constrained replies (citations limited to the passages)

    # OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, a llama.cpp server)
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = 60.0

    # Embeddings
    embedding_backend: Literal["minilm", "openai"] = "minilm"
    openai_embedding_model: str = "text-embedding-3-small"
    embedding_batch_size: int = 64

    # Vector store
    chroma_url: str | None = None  # e.g. http://localhost:8000 ; default: embedded on disk
    collection: str = "knowledge"

    # Retrieval
    top_k: int = Field(default=5, ge=1, le=100)
    score_floor: float = 0.35
    dense_weight: float = 1.0
    lexical_weight: float = 1.0

    # Queue and publishing
    database_url: str | None = None  # default: SQLite in the data folder
    four_eyes: bool = False
    publisher: Literal["outbox", "webhook"] = "outbox"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_timeout_s: float = 5.0
    webhook_retries: int = 3
    webhook_backoff_s: float = 0.5  # first retry delay; doubles each retry
    publish_lease_s: float = 300.0  # a claim older than this is taken over (its publisher died)

    # The HTTP API and webhooks (``copilot serve``)
    api_max_body_bytes: int = Field(default=1_000_000, ge=1_000)  # a bigger request gets 413
    api_rate_per_minute: int = Field(default=120, ge=1)  # requests per API token (or client address) per minute
    webhook_max_age_s: float = 300.0  # a signed webhook whose timestamp is older (or newer) than this gets 401

    # Connectors: each is on when its URL (or, for email, its IMAP host) is set. See docs/connectors/.
    chatwoot_url: str | None = None  # e.g. https://chatwoot.example.com
    chatwoot_account_id: int | None = None
    chatwoot_api_token: str | None = None  # an agent bot's or agent's access token (header api_access_token)
    chatwoot_webhook_secret: str | None = None
    discourse_url: str | None = None  # e.g. https://forum.example.com
    discourse_api_key: str | None = None
    discourse_api_username: str | None = None  # the user the copilot posts as (its own posts are ignored)
    discourse_webhook_secret: str | None = None
    discourse_starter_category: int | None = None  # the category id for approved discussion starters
    imap_host: str | None = None
    imap_port: int = 993
    imap_user: str | None = None
    imap_password: str | None = None
    imap_folder: str = "INBOX"
    imap_ssl: bool = True
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    email_address: str | None = None  # the support address replies come from (its own mail is ignored)
    email_poll_s: float = Field(default=60.0, ge=5.0)  # how often `copilot serve` polls the mailbox
    connector_timeout_s: float = 10.0
    connector_retries: int = 3
    connector_backoff_s: float = 0.5  # first retry delay; doubles each retry (429, 5xx, timeouts)

    # Brand
    brand_name: str = "Lumio"
    agent_signature: str = "The Lumio Support Team"
    # A team's own crisis-screen phrases (same shape as copilot/data/crisis_screen.yaml), added to the shipped ones.
    crisis_screen: str | None = None

    channels: dict[str, ChannelProfile] = Field(default_factory=_default_channels)

    @field_validator("channels", mode="after")
    @classmethod
    def _complete_channels(cls, value: dict[str, ChannelProfile]) -> dict[str, ChannelProfile]:
        merged = _default_channels()
        merged.update(value)
        return merged

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("COPILOT_CONFIG", "copilot.toml")
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path))

    # Derived locations: all state lives under data_dir.
    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.jsonl"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'copilot.db'}"

    def channel(self, name: str) -> ChannelProfile:
        """The profile of a channel, or a clear error naming the known ones."""
        try:
            return self.channels[name]
        except KeyError:
            from copilot.errors import UserError

            raise UserError(f"unknown channel {name!r}; known: {', '.join(sorted(self.channels))}") from None

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)


def load_settings(**overrides: object) -> Settings:
    """Build the settings from environment, config file and explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
