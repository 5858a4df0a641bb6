"""Request bodies capped per route while they stream in, before anything is buffered or spooled.

:class:`BodyLimitMiddleware` looks up the route's cap in :func:`body_limits` (one table for the
API and the web pages), refuses a declared ``Content-Length`` above it at once, without reading
a byte of the body, and counts the bytes of every body as they arrive (a chunked one declares
no length): the first byte past the cap ends the request with 413. A form that needs no more
than a few KB (sign-in, sign-out, opening a lot) gets a few KB; only the photo uploads get
megabytes (and there the form reader, service.uploads, names a photo over its own cap first).

Any answer sent while the client is still sending its body (a 413, but also a 401 before an
upload's photos were read) closes the connection: otherwise the server would read the rest of
the body, only to throw it away. The close lingers briefly (service/server.py), so that a
client still sending reads the answer instead of a reset.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from service.errors import BadInput
from service.settings import Settings

__all__ = ["BodyLimit", "BodyLimitMiddleware", "BodyTooLarge", "body_limits", "size_text"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]

_KB = 1024
_MB = 1024 * 1024
# The text fields and multipart framing of an upload besides its photos (a spec is at most
# service.uploads' field cap, 256 KB).
_FIELDS_ALLOWANCE = 1 * _MB


def size_text(n: int) -> str:
    """A byte count as people read it: 25 MB, 16 KB, 900 bytes."""
    if n >= _MB:
        return f"{n / _MB:.0f} MB"
    return f"{n / _KB:.0f} KB" if n >= _KB else f"{n} bytes"


@dataclasses.dataclass(frozen=True)
class BodyLimit:
    """The largest request body a route reads, and what to tell a client that sends more."""

    max_bytes: int
    hint: str  # how to fix it, for the 413's detail
    # A Content-Length above the cap is refused before the body is read. Not for uploads:
    # there one photo over its own cap is named by the form reader, which helps more.
    refuse_declared: bool = True

    def detail(self) -> str:
        return f"the request body is larger than {size_text(self.max_bytes)}, the limit of " \
               f"this route; {self.hint}"


class BodyTooLarge(BadInput):
    """Raised into the app by the body's reader once the body passes the route's cap."""

    def __init__(self, limit: BodyLimit) -> None:
        super().__init__(limit.detail(), "too_large")


_Route = tuple[str, re.Pattern[str], BodyLimit]
_ID = r"[^/]+"


def body_limits(settings: Settings) -> tuple[list[_Route], BodyLimit]:
    """Every route that reads a body with its cap; and the cap of any other request.

    tests/test_reliability_edge.py checks that every POST route of the app is listed here,
    so a new form cannot inherit a cap by accident.
    """
    photos = BodyLimit(settings.max_request_bytes,
                       "send fewer or smaller photos per request (JPEG at quality 90 is "
                       "plenty), or raise SEALCHECK_MAX_REQUEST_BYTES", refuse_declared=False)
    two_photos = BodyLimit(min(settings.max_request_bytes,
                               2 * settings.max_upload_bytes + _FIELDS_ALLOWANCE),
                           "send one golden and one unit photo, each within "
                           f"{size_text(settings.max_upload_bytes)}", refuse_declared=False)
    small_form = BodyLimit(16 * _KB, "this form has a few short fields; send only those")
    sign_in = BodyLimit(16 * _KB, "the sign-in form has an API key and a page address; "
                        "send only those")
    routes: list[_Route] = [
        ("POST", re.compile(r"/v1/goldens"), photos),
        ("POST", re.compile(rf"/v1/goldens/{_ID}/inspections"), photos),
        ("POST", re.compile(r"/v1/compare"), two_photos),
        ("POST", re.compile(r"/v1/lots"), BodyLimit(16 * _KB, "a lot is a short JSON object "
                                                    "(see /docs)")),
        ("POST", re.compile(r"/signin"), sign_in),
        ("POST", re.compile(r"/signout"), small_form),
        ("POST", re.compile(r"/goldens"), photos),
        ("POST", re.compile(rf"/goldens/{_ID}/inspections"), photos),
        ("POST", re.compile(rf"/goldens/{_ID}/lots"), small_form),
    ]
    # Pages, pictures and lists read no body at all.
    other = BodyLimit(64 * _KB, "this route reads no request body; send none")
    return routes, other


def _declared_length(scope: Scope) -> tuple[int | None, bool]:
    """(Content-Length, whether a body follows at all)."""
    length, chunked = None, False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:  # the server refuses it before the app runs; never here
                length = None
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked or bool(length)


class BodyLimitMiddleware:
    """Caps each request's body at its route's :class:`BodyLimit` (module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.routes, self.other = body_limits(settings)

    def limit_for(self, method: str, path: str) -> BodyLimit:
        for route_method, pattern, limit in self.routes:
            if method == route_method and pattern.fullmatch(path.rstrip("/") or "/"):
                return limit
        return self.other

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        limit = self.limit_for(scope["method"], path[len(root):] if path.startswith(root)
                               else path)  # behind --root-path, the app's own path
        declared, has_body = _declared_length(scope)
        if limit.refuse_declared and declared is not None and declared > limit.max_bytes:
            await _answer_too_large(send, limit)  # not a byte of the body read
            return
        received = 0
        body_done = not has_body
        exceeded = started = replaced = False

        async def counted_receive() -> Message:
            nonlocal received, body_done, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(limit)
                body_done = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the app's answer to a body that was cut off; the 413 went instead
            if message["type"] == "http.response.start":
                started = True
                if exceeded and message["status"] != 413:
                    # The app turned the refusal into another answer (FastAPI's JSON body
                    # reader answers 400 to any error): the 413 goes instead.
                    replaced = True
                    await _answer_too_large(send, limit)
                    return
                if not body_done:
                    message["headers"] = [*message.get("headers", ()),
                                          (b"connection", b"close")]
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if not started:  # else the 413 (the app's or ours) is already on its way
                await _answer_too_large(send, limit)


async def _answer_too_large(send: Callable, limit: BodyLimit) -> None:
    body = json.dumps({"detail": limit.detail()}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
