"""The one place where the service's errors (:mod:`service.errors`) become HTTP answers.

The API answers ``{"detail": message}`` with the status below (app.py's exception handler);
the web pages show the same message on a page, or re-render the form, with the same status.
Anything else that escapes a route is a bug: :class:`InternalErrorMiddleware` answers it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Scope

from service.errors import BadInput, ServiceError, StorageUnavailable

__all__ = ["InternalErrorMiddleware", "error_headers", "error_response", "http_status"]

log = logging.getLogger("sealcheck")

_STATUS = {"not_found": 404, "conflict": 409, "busy": 503}
_BAD_INPUT_STATUS = {"malformed": 400, "too_large": 413, "unsupported": 415, "invalid": 422}


def http_status(error: ServiceError) -> int:
    if isinstance(error, BadInput):
        return _BAD_INPUT_STATUS[error.reason]
    if isinstance(error, StorageUnavailable):
        return 507 if error.full else 503  # 507 Insufficient Storage (RFC 4918)
    return _STATUS.get(error.kind, 500)


def error_headers(error: ServiceError) -> dict[str, str] | None:
    retry_after = getattr(error, "retry_after", None)  # Busy, InFlight, StorageUnavailable
    return None if retry_after is None else {"Retry-After": str(retry_after)}


def error_response(error: ServiceError) -> JSONResponse:
    """The API's answer: ``{"detail": message}`` with the error's status (and Retry-After)."""
    return JSONResponse({"detail": error.message}, status_code=http_status(error),
                        headers=error_headers(error))


class InternalErrorMiddleware:
    """An unexpected exception answers 500 ``{"detail": ...}``, its traceback logged once, and
    the keep-alive connection stays usable.

    Starlette's own last resort (``exception_handler(Exception)``, run by
    ServerErrorMiddleware) sends the answer and then re-raises, so uvicorn logs the traceback a
    second time and closes the connection: every client that reuses connections (browsers,
    httpx, the phones' HTTP stacks) then sees its next request fail too. Here the exception
    stops. Only when the answer had already started is it re-raised, since closing the
    connection is then the one way to tell the client that the answer is incomplete.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            return  # the client left while sending its request: nobody to answer, no bug
        except Exception as exc:
            if started:
                raise
            log.exception("internal error on %s %s", scope["method"], scope["path"])
            await JSONResponse({"detail": f"internal error ({exc.__class__.__name__}); this is "
                                "a bug in sealcheck, please report it"},
                               status_code=500)(scope, receive, send)
