"""Typed errors: the user's mistake, the model's mistake, and a provider or server failure."""

from __future__ import annotations


class CopilotError(Exception):
    """Base class for every error the copilot raises on purpose."""


class UserError(CopilotError):
    """Bad input from the user: a clear one-line message, non-zero exit."""


class ConfigError(UserError):
    """A missing model, package, key or setting; the message names the fix."""


class KnowledgeError(UserError):
    """A knowledge-base file is invalid; the message names file and line."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class ModelOutputError(CopilotError):
    """The chat model produced output that failed validation."""


class ProviderError(CopilotError):
    """A model provider, vector store or database server failed."""


class NotFoundError(UserError):
    """An unknown id."""


class ConflictError(UserError):
    """A stale version or an illegal state transition."""


class PermissionDenied(UserError):
    """The actor's role does not allow the action."""
