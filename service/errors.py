"""What the service's operations and queries raise when a request cannot be done.

These say what went wrong in the domain's words (not found, bad input, conflict, busy) and
carry a message for the user that says how to fix it. They know nothing of HTTP: the API and
the web pages turn them into answers in one place, :mod:`service.http_errors`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = ["BadInput", "Busy", "Conflict", "InFlight", "NotFound", "ServiceError",
           "StorageUnavailable"]

BadInputReason = Literal["malformed", "too_large", "unsupported", "invalid"]


class ServiceError(Exception):
    """A request the service cannot do; `message` is one line that says what to do."""

    kind: ClassVar[str] = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """No such thing for this tenant (another tenant's id is not found either)."""

    kind = "not_found"


class BadInput(ServiceError):
    """The request's input cannot be used; nothing was stored.

    `reason`: ``malformed`` (the request itself cannot be read), ``too_large`` (over a size
    limit), ``unsupported`` (not a format the service reads) or ``invalid`` (readable, but a
    value cannot be used).
    """

    kind = "bad_input"

    def __init__(self, message: str, reason: BadInputReason = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class Conflict(ServiceError):
    """The request clashes with the state of what it names (e.g. a lot already judged)."""

    kind = "conflict"


class Busy(ServiceError):
    """Too much work waiting: retry after `retry_after` seconds."""

    kind = "busy"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InFlight(Conflict):
    """Another request with the same Idempotency-Key is still running: retry after a while."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageUnavailable(ServiceError):
    """The data directory or the database cannot store anything now; nothing was stored.

    `full`: out of space (disk full, quota), which the operator fixes by freeing space; else the
    storage refuses or is gone (read-only file system, I/O error, database unreachable).
    """

    kind = "storage"

    def __init__(self, message: str, *, full: bool, retry_after: int = 30) -> None:
        super().__init__(message)
        self.full = full
        self.retry_after = retry_after
