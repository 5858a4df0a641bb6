"""Web pages for QC staff, served by the API's app at ``/``.

The pages by subject: :mod:`~service.web.signin`, :mod:`~service.web.goldens` (list, seal, a
golden's page, inspect), :mod:`~service.web.inspections` (report, history, pictures) and
:mod:`~service.web.lot_pages`; what they share is in :mod:`~service.web.common`.

``install(app)`` adds the pages, their static files at ``/static`` and the two exceptions the
pages raise (sign-in needed, error page); the API's own error handling is left as it is.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from service.web import goldens, inspections, lot_pages, signin
from service.web.common import SignInRequired, WebError, current_visitor, render

__all__ = ["STATIC_DIR", "install"]

STATIC_DIR = Path(__file__).with_name("static")


def install(app: FastAPI) -> None:
    """Serve the web pages from `app`."""
    for module in (signin, goldens, inspections, lot_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse({"detail": "You are signed out; sign in again."},
                                status_code=401)
        query = urllib.parse.urlencode({"next": exc.next_url}) if exc.next_url != "/" else ""
        return RedirectResponse("/signin" + (f"?{query}" if query else ""), status_code=303)

    @app.exception_handler(WebError)
    async def _web_error(request: Request, exc: WebError) -> Response:
        if request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse({"detail": exc.message}, status_code=exc.status_code,
                                headers=exc.headers)
        visitor = await run_in_threadpool(current_visitor, request.app.state.service, request)
        response = render(request, "error.html", visitor, exc.status_code, message=exc.message,
                          status=exc.status_code)
        response.headers.update(exc.headers or {})
        return response
