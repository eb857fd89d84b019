"""Every failure of the HTTP API as one JSON shape, ``{"error": {"status": N, "reason": "..."}}``, with the
copilot's typed errors mapped to HTTP statuses here and nowhere else."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from copilot.connectors.base import WebhookRejected
from copilot.errors import (
    ConfigError,
    ConflictError,
    CopilotError,
    NotFoundError,
    PermissionDenied,
    ProviderError,
    UserError,
)

log = logging.getLogger(__name__)

# The most specific class in an error's MRO decides. A ConfigError is the server's set-up, not the caller's
# mistake; a ProviderError is a model, store or database server that failed behind us.
STATUS_OF: dict[type[CopilotError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    PermissionDenied: 403,
    ConfigError: 503,
    UserError: 400,
    ProviderError: 502,
    CopilotError: 500,
}


class ApiError(CopilotError):
    """A failure with its own HTTP status (401 without a valid token, 429, 503 while nothing is indexed)."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


def status_of(exc: CopilotError) -> int:
    """The HTTP status for a copilot error."""
    if isinstance(exc, ApiError | WebhookRejected):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


def error_response(status: int, reason: str, *, headers: Mapping[str, str] | None = None,
                   details: Any = None) -> JSONResponse:
    """The JSON body every error of the API has."""
    body: dict[str, Any] = {"status": status, "reason": reason}
    if details is not None:
        body["details"] = jsonable_encoder(details)
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the JSON error shape."""
    app.add_exception_handler(CopilotError, _copilot_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _copilot_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CopilotError)
    status = status_of(exc)
    if status >= 500:
        log.warning("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    headers = exc.headers if isinstance(exc, ApiError) else None
    return error_response(status, str(exc), headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    details = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
    return error_response(422, "invalid request: " + "; ".join(parts) + more, details=details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        reason = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        reason = f"{request.method} is not allowed on {request.url.path}" + (f"; use {allowed}" if allowed else "")
    else:
        reason = str(exc.detail)
    return error_response(exc.status_code, reason, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # Logged with its traceback here; the caller learns only its type, never internals.
    log.error("%s %s failed unexpectedly", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error ({type(exc).__name__}); the server log has the details")
