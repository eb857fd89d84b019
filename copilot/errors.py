"""Typed errors: the user's mistake and a provider or server failure.

The model's mistakes (invalid output, a citation that was not retrieved) are not raised: the drafter
retries once with the error, then falls back and flags the draft.
"""

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


class ProviderError(CopilotError):
    """A model provider, vector store or database server failed."""


class NotFoundError(UserError):
    """An unknown id."""


class ConflictError(UserError):
    """A stale version or an illegal state transition."""


class PermissionDenied(UserError):
    """The actor's role does not allow the action."""
