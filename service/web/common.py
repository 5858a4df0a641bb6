"""What the web pages share: rendering, the signed-in visitor, CSRF checks, redirects, errors.

Errors are pages, never tracebacks: bad input re-renders its form with a message (status 4xx,
nothing stored); a form sent by the page's script (``Accept: application/json``) gets
``{"detail": ...}`` instead, so the photos the user picked stay in the form. The statuses are
the API's (:mod:`service.http_errors`).
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.aql import DEFAULT_AQL
from service.db import Golden
from service.deps import ServiceDep
from service.errors import Busy, NotFound, ServiceError
from service.http_errors import error_headers, http_status
from service.operations import Service
from service.pagination import decode_cursor
from service.queries import golden_for_tenant
from service.uploads import Form, read_form
from service.web import present
from service.web.sessions import Visitor, csrf_ok, visitor_for
from service.work import Admission
from vision.numbers import format_number

T = TypeVar("T")

__all__ = [
    "LOT_DEFAULTS",
    "PAGE_SIZE",
    "FormProblem",
    "SignInRequired",
    "VisitorDep",
    "WebError",
    "admitted",
    "check_csrf",
    "check_text_fields",
    "current_visitor",
    "done",
    "expensive",
    "form_failure",
    "form_fields",
    "golden_or_404",
    "like",
    "origin_hint",
    "page_cursor",
    "page_message",
    "read_small_form",
    "read_upload_form",
    "redirect",
    "render",
    "require_visitor",
    "safe_next",
    "search_text",
    "same_origin",
    "templates",
    "wants_json",
]

TEMPLATES_DIR = Path(__file__).with_name("templates")
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["when"] = present.format_time
templates.env.filters["number"] = format_number  # the rounding of the reasons and the CLI
templates.env.globals["region_words"] = present.region_words

PAGE_SIZE = 24
_SMALL_FORM_FIELDS = 16  # the lot form has 7
_SMALL_FORM_FIELD_BYTES = 8 * 1024  # a page address, an API key, a lot's reference
_OVER_A_CAP = re.compile(r"too many|exceeded", re.I)  # python-multipart's words
# The "Open a lot" form's fields and defaults (service/web/lot_pages.py handles it).
LOT_DEFAULTS = {"lot_size": "", "level": "II", "reference": "",
                **{f"aql_{name}": f"{value:g}" for name, value in DEFAULT_AQL.items()}}


class SignInRequired(Exception):
    """The page needs a signed-in browser; answered with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class WebError(Exception):
    """Answered with the error page: status, a message that says what to do, and headers
    (Retry-After when the server is busy)."""

    def __init__(self, status_code: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.message = message
        self.headers = headers

    @classmethod
    def from_service_error(cls, error: ServiceError) -> WebError:
        return cls(http_status(error), page_message(error.message), error_headers(error))


@contextlib.asynccontextmanager
async def admitted(service: Service) -> AsyncIterator[Admission]:
    """A place in the admission budget (service.work) for a page's expensive work; when the
    budget is full, the error page (503 with Retry-After)."""
    entered = False
    try:
        async with service.pool.admit() as admission:
            entered = True
            yield admission
    except Busy as exc:
        if entered:
            raise
        raise WebError.from_service_error(exc) from None


async def expensive(service: Service, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a place of its own in the admission budget; its ServiceError (a full
    budget: 503 with Retry-After) as the error page."""
    try:
        return await service.pool.run(fn, *args)
    except ServiceError as exc:
        raise WebError.from_service_error(exc) from None


# The API names the request's field first ("images[0] (mug.gif): ...", "spec: roi ..."), which
# integrators need; a person on the floor reads what was wrong with the photo or form instead.
_UPLOAD_LABEL = re.compile(r"^images\[(\d+)\](?: \((?P<name>.*?)\))?: (?P<rest>.*)$", re.S)
_FILE_LABEL = re.compile(r"^(?P<name>[^:;/]+\.\w{2,5}): (?P<rest>the file .*)$", re.S)
_FIELD_LABEL = re.compile(r"^(?:spec: )?(?:field '(?P<field>\w+)' )?(?P<rest>.*)$", re.S)
_FIELD_WORDS = {"images": "a photo", "roi": "the region of interest", "spec": "the spec sheet",
                "unit_label": "the unit label", "lot_id": "the lot", "name": "the name",
                "sku": "the SKU"}


def page_message(message: str) -> str:
    """An API error message as a page shows it: the photo by its file name (or its place),
    not by the request's field, and a sentence with a capital and a full stop."""
    upload = _UPLOAD_LABEL.match(message) or _FILE_LABEL.match(message)
    if upload is not None and upload.re is _FILE_LABEL:
        message = f"The photo “{upload['name']}”: {upload['rest']}"
    elif upload is not None:
        which = (f"The photo “{upload['name']}”" if upload["name"]
                 else f"Photo {int(upload[1]) + 1}")
        message = f"{which}: {upload['rest']}"
    else:
        field = _FIELD_LABEL.match(message)
        rest = field["rest"]
        if field["field"]:
            rest = f"{_FIELD_WORDS.get(field['field'], field['field'])} {rest}"
        first = rest.split(" ", 1)[0]
        if first in _FIELD_WORDS:
            rest = _FIELD_WORDS[first] + rest[len(first):]
        message = rest
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


class FormProblem(ValueError):
    """A form field that cannot be used; the message is shown above the form."""


# --------------------------------------------------------------------------------------------
# The visitor and common answers

def current_visitor(service: Service, request: Request) -> Visitor | None:
    with service.sessions() as session:
        return visitor_for(session, request)


def require_visitor(request: Request, service: ServiceDep) -> Visitor:
    visitor = current_visitor(service, request)
    if visitor is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}"
                                                 if request.url.query else ""))
    return visitor


VisitorDep = Annotated[Visitor, Depends(require_visitor)]


def render(request: Request, template: str, visitor: Visitor | None, status_code: int = 200,
           **context) -> HTMLResponse:
    response = templates.TemplateResponse(request, template, {"visitor": visitor, **context},
                                          status_code=status_code)
    _page_headers(response)
    return response


def _page_headers(response: Response) -> None:
    # Pages are per tenant: never cached by a shared cache, never framed by another site.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'")


def wants_json(request: Request) -> bool:
    return request.headers.get("accept", "").startswith("application/json")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def done(request: Request, url: str) -> Response:
    """Where a form that worked goes next: a redirect, or ``{"redirect": url}`` for the
    page's script."""
    if wants_json(request):
        return JSONResponse({"redirect": url})
    return redirect(url)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_of(scheme: str, netloc: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an origin, the scheme's default port filled in; None if the
    text is no host[:port]."""
    scheme = scheme.lower()
    try:
        parsed = urllib.parse.urlsplit(f"//{netloc}")
        port = parsed.port
    except ValueError:  # a port that is no number or out of range
        return None
    if not parsed.hostname or parsed.username is not None or parsed.password is not None:
        return None
    return scheme, parsed.hostname, port if port is not None else _DEFAULT_PORTS.get(scheme)


def same_origin(request: Request) -> bool:
    """False for a POST that a browser says came from another site (Origin header): scheme,
    host and port must all be this server's (http://host is another origin than
    https://host). Behind a proxy that ends TLS, uvicorn takes the scheme from the proxy's
    X-Forwarded-Proto (FORWARDED_ALLOW_IPS must name the proxy)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parsed = urllib.parse.urlsplit(origin)
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        return False  # an Origin header is scheme://host[:port] and nothing else
    theirs = _origin_of(parsed.scheme, parsed.netloc)
    ours = _origin_of(request.url.scheme, request.headers.get("host", ""))
    return theirs is not None and theirs == ours


def origin_hint(request: Request) -> str:
    """For a refused form whose Origin differs from this server only in its scheme: the usual
    cause, a proxy that ends TLS without saying so; empty otherwise."""
    origin = urllib.parse.urlsplit(request.headers.get("origin") or "")
    if origin.scheme.lower() == "https" and request.url.scheme == "http" and \
            (origin.hostname or "") == (request.url.hostname or ""):
        return (" (For the site's administrator: the page came over https, but the server "
                "saw http; the proxy that ends TLS must send X-Forwarded-Proto, from an "
                "address in FORWARDED_ALLOW_IPS.)")
    return ""


def check_csrf(request: Request, visitor: Visitor, presented: str | None) -> None:
    if not same_origin(request) or not csrf_ok(visitor, presented):
        raise WebError(403, "This form has expired or did not come from this site. Go back, "
                       "reload the page and send it again." + origin_hint(request))


def check_text_fields(fields: dict[str, str]) -> None:
    """Refuse a form whose text holds a NUL character, before any work is done: PostgreSQL
    refuses it only at the commit, after the photos were compared and written."""
    for name, value in fields.items():
        if "\x00" in value:
            raise WebError(422, f"The form's field “{name[:40]}” contains a NUL character; "
                           "type the text again (do not paste binary data).")


async def read_small_form(request: Request) -> dict[str, str]:
    """A form of a few short text fields (sign-in, sign-out, a lot): no files, small caps
    (the body itself is capped by service.limits before it is read)."""
    try:
        form = await request.form(max_files=0, max_fields=_SMALL_FORM_FIELDS,
                                  max_part_size=_SMALL_FORM_FIELD_BYTES)
    except StarletteHTTPException as exc:  # python-multipart's refusals, as 400
        raise WebError(413 if _OVER_A_CAP.search(str(exc.detail)) else 400,
                       "This form takes a few short text fields and no files; open the page "
                       "again and send the form from it.") from None
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    check_text_fields(fields)
    return fields


def safe_next(next_url: str | None) -> str:
    # Only paths on this site: an open redirect would let a link send people elsewhere.
    if next_url and next_url.startswith("/") and not next_url.startswith("//") \
            and "\\" not in next_url:
        return next_url
    return "/goldens"


# --------------------------------------------------------------------------------------------
# Lists and lookups

def like(text: str) -> str:
    """An SQL LIKE pattern that finds `text` anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_cursor(cursor: str | None) -> int | None:
    try:
        return decode_cursor(cursor or None)
    except ServiceError:
        raise WebError(400, "That page link is broken; start again from the first page.") \
            from None


def search_text(text: str) -> str:
    """A list's search box: trimmed to 200 characters; a NUL refused here with the page's
    400 (PostgreSQL would refuse it in the query, as a bare 422)."""
    if "\x00" in text:
        raise WebError(400, "The search text contains a NUL character; type it again.")
    return text.strip()[:200]


def golden_or_404(session, visitor: Visitor, golden_id: str) -> Golden:
    try:
        if "\x00" in golden_id:  # no id has one; PostgreSQL would refuse it in the query
            raise NotFound(golden_id)
        return golden_for_tenant(session, visitor.tenant_id, golden_id)
    except NotFound:
        raise WebError(404, "Golden sample not found. It may belong to another account, or "
                       "the link is wrong.") from None


# --------------------------------------------------------------------------------------------
# Forms

def form_fields(form: Form, names) -> dict[str, str]:
    return {name: (form.text(name) or "").strip() for name in names}


def form_failure(request: Request, status: int, message: str, template: str,
                 visitor: Visitor, headers: dict[str, str] | None = None,
                 **context) -> Response:
    """The form again with `message` above it, or ``{"detail": message}`` for the script;
    `headers` go with either (Retry-After of a busy server)."""
    message = page_message(message)
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    response = render(request, template, visitor, status, error=message, **context)
    response.headers.update(headers or {})
    return response


async def read_upload_form(request: Request, service: Service, visitor: Visitor) -> Form:
    """The multipart form, with its CSRF token checked before any work is done.

    The page's script sends the token as the X-CSRF-Token header, so a forged request is
    refused before its photos are read; a plain form post carries it as a field.
    """
    header_token = request.headers.get("x-csrf-token")
    if header_token is not None or not same_origin(request):
        check_csrf(request, visitor, header_token)
    try:
        form = await read_form(request, file_fields=frozenset({"images"}),
                               max_file_bytes=service.settings.max_upload_bytes)
    except ServiceError as exc:
        raise WebError.from_service_error(exc) from None
    if header_token is None:
        check_csrf(request, visitor, form.text("csrf_token"))
    check_text_fields(form.fields)
    return form
