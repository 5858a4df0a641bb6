"""Signing in with an API key, and out: a session cookie for the browser (service.web.sessions)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from service.deps import ServiceDep
from service.web.common import (
    WebError,
    check_csrf,
    current_visitor,
    origin_hint,
    read_small_form,
    redirect,
    render,
    safe_next,
    same_origin,
)
from service.web.sessions import (
    clear_session_cookie,
    end_session,
    open_session,
    set_session_cookie,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, service: ServiceDep) -> RedirectResponse:
    return redirect("/goldens" if current_visitor(service, request) else "/signin")


@router.get("/signin")
def signin_page(request: Request, service: ServiceDep, next: str | None = None) -> Response:
    if current_visitor(service, request) is not None:
        return redirect(safe_next(next))
    return render(request, "signin.html", None, next=safe_next(next), error=None)


@router.post("/signin")
async def signin(request: Request, service: ServiceDep) -> Response:
    if not same_origin(request):
        raise WebError(403, "The sign-in form did not come from this site. Open the sign-in "
                       "page and try again." + origin_hint(request))
    form = await read_small_form(request)
    api_key = form.get("api_key", "").strip()
    next_url = safe_next(form.get("next", ""))
    if not api_key:
        return render(request, "signin.html", None, 422, next=next_url,
                      error="Enter your API key (it starts with sck_).")

    def opened() -> str | None:
        with service.sessions() as session:
            return open_session(session, api_key)

    token = await run_in_threadpool(opened)
    if token is None:
        return render(request, "signin.html", None, 401, next=next_url,
                      error="That API key is not known. Check it, or ask for a new one "
                      "(sealcheck keys create --tenant NAME).")
    response = redirect(next_url)
    set_session_cookie(response, request, token)
    return response


@router.post("/signout")
async def signout(request: Request, service: ServiceDep) -> Response:
    # Refused from another site even without a session: a cross-site POST gets no answer
    # but this one, signed in or not.
    if not same_origin(request):
        raise WebError(403, "The sign-out form did not come from this site. Open a page of "
                       "this site and sign out from there." + origin_hint(request))
    visitor = await run_in_threadpool(current_visitor, service, request)
    if visitor is not None:
        form = await read_small_form(request)
        check_csrf(request, visitor, form.get("csrf_token", ""))

        def ended() -> None:
            with service.sessions() as session:
                end_session(session, visitor)

        await run_in_threadpool(ended)
    response = redirect("/signin")
    clear_session_cookie(response, request)
    return response
