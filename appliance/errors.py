"""Error types with an HTTP status and a stable code, and the one JSON renderer for all of them."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from sanic import Request
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, json

log = logging.getLogger("ingestbox.errors")


class IngestboxError(Exception):
    """Base of every error a user can see; `code` is stable and documented."""

    status = 500
    code = "internal"
    quiet = False  # quiet errors are expected (bad input) and are not logged with a traceback

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(IngestboxError):
    status, code, quiet = 400, "bad_request", True


class Unauthorized(IngestboxError):
    status, code, quiet = 401, "unauthorized", True


class NotFound(IngestboxError):
    status, code, quiet = 404, "not_found", True


class Conflict(IngestboxError):
    status, code, quiet = 409, "conflict", True


class ServiceUnavailable(IngestboxError):
    status, code, quiet = 503, "unavailable", True


class StorageError(IngestboxError):
    """The object store failed or is unreachable."""

    status, code = 503, "storage_unavailable"


class StorageUnavailable(StorageError):
    """The store did not answer or failed on its side (5xx): it may come back by itself."""


class StorageFull(IngestboxError):
    """The disk under local storage or the database has no room left."""

    status, code = 507, "disk_full"


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one line per error."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_SANIC_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
    416: "range_not_satisfiable",
    503: "unavailable",
}


def error_body(status: int, code: str, message: str, **details: Any) -> dict[str, Any]:
    """The one error shape of the API: {"error": {"code", "message", ...details}}."""
    error: dict[str, Any] = {"code": code, "message": message}
    error.update(details)
    return {"error": error}


def render_error(request: Request, exc: BaseException) -> HTTPResponse:
    """Render any exception as the API's JSON error; unexpected ones are logged, never leaked."""
    if isinstance(exc, IngestboxError):
        if not exc.quiet:
            log.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        return json(error_body(exc.status, exc.code, exc.message, **exc.details), status=exc.status)
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
        log.error("%s %s failed: the database's disk is full", request.method, request.path)
        return json(error_body(507, "disk_full", "no space left for the database: free disk space under the"
                               " data directory"), status=507)
    if isinstance(exc, SanicException):
        status = exc.status_code
        code = _SANIC_CODES.get(status, "error")
        return json(error_body(status, code, str(exc) or code), status=status)
    log.error("%s %s failed", request.method, request.path, exc_info=exc)
    return json(error_body(500, "internal", "internal error; see the server log"), status=500)
