"""The one place where the service's errors (:mod:`service.errors`) become HTTP answers.

The API answers ``{"detail": message}`` with the status below (app.py's exception handler);
the web pages show the same message on a page, or re-render the form, with the same status.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from service.errors import BadInput, Busy, ServiceError

__all__ = ["error_headers", "error_response", "http_status"]

_STATUS = {"not_found": 404, "conflict": 409, "busy": 503}
_BAD_INPUT_STATUS = {"malformed": 400, "too_large": 413, "unsupported": 415, "invalid": 422}


def http_status(error: ServiceError) -> int:
    if isinstance(error, BadInput):
        return _BAD_INPUT_STATUS[error.reason]
    return _STATUS.get(error.kind, 500)


def error_headers(error: ServiceError) -> dict[str, str] | None:
    if isinstance(error, Busy):
        return {"Retry-After": str(error.retry_after)}
    return None


def error_response(error: ServiceError) -> JSONResponse:
    """The API's answer: ``{"detail": message}`` with the error's status (and Retry-After)."""
    return JSONResponse({"detail": error.message}, status_code=http_status(error),
                        headers=error_headers(error))
