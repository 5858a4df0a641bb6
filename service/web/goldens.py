"""The web pages for QC staff: sign in, goldens, seal, inspect, report, history.

Server-rendered (Jinja2) with a little vanilla JavaScript (static/app.js) for upload progress,
drawing the region of interest and the report's slider; every page also works without it.
Pages read the same tables as the API, through the same tenant checks: another tenant's golden
or inspection answers 404, exactly like a missing one. Pictures are served to the signed-in
browser here (an <img> cannot send an API key).

Errors are pages, never tracebacks: bad input re-renders its form with a message (status 4xx,
nothing stored); a form sent by the page's script (``Accept: application/json``) gets
``{"detail": ...}`` instead, so the photos the user picked stay in the form.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from service.aql import DEFAULT_AQL, LEVELS
from service.db import Golden, GoldenImage, Inspection, InspectionImage, Lot
from service.deps import ServiceDep
from service.operations import Service, golden_picture_png, inspect_job, seal_job
from service.reencode import reencoded_photo
from service.routes._common import decode_cursor, encode_cursor
from service.routes.goldens import golden_for_tenant
from service.routes.inspections import check_lot, lot_summary, stored_png
from service.routes.lots import lot_public
from service.uploads import Form, read_form
from service.web import present
from service.web.sessions import (
    Visitor,
    clear_session_cookie,
    csrf_ok,
    end_session,
    open_session,
    set_session_cookie,
    visitor_for,
)

__all__ = ["SignInRequired", "WebError", "router", "templates"]

TEMPLATES_DIR = Path(__file__).with_name("templates")
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["when"] = present.format_time

router = APIRouter(include_in_schema=False)

_IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable"}
_PAGE_SIZE = 24
_VERDICTS = ("pass", "fail", "inconclusive")
# The "Open a lot" form's fields and defaults (service/web/lot_pages.py handles it).
LOT_DEFAULTS = {"lot_size": "", "level": "II", "reference": "",
                **{f"aql_{name}": f"{value:g}" for name, value in DEFAULT_AQL.items()}}


class SignInRequired(Exception):
    """The page needs a signed-in browser; answered with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class WebError(Exception):
    """Answered with the error page: status and a message that says what to do."""

    def __init__(self, status_code: int, message: str) -> None:
        self.status_code = status_code
        self.message = message


class FormProblem(ValueError):
    """A form field that cannot be used; the message is shown above the form."""


# --------------------------------------------------------------------------------------------
# Sessions and common answers

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


def _wants_json(request: Request) -> bool:
    return request.headers.get("accept", "").startswith("application/json")


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _same_origin(request: Request) -> bool:
    """False for a POST that a browser says came from another site (Origin header)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parsed = urllib.parse.urlsplit(origin)
    return parsed.netloc == request.headers.get("host", "")


def _check_csrf(request: Request, visitor: Visitor, presented: str | None) -> None:
    if not _same_origin(request) or not csrf_ok(visitor, presented):
        raise WebError(403, "This form has expired or did not come from this site. Go back, "
                       "reload the page and send it again.")


def _safe_next(next_url: str | None) -> str:
    # Only paths on this site: an open redirect would let a link send people elsewhere.
    if next_url and next_url.startswith("/") and not next_url.startswith("//") \
            and "\\" not in next_url:
        return next_url
    return "/goldens"


# --------------------------------------------------------------------------------------------
# Sign in and out

@router.get("/")
def home(request: Request, service: ServiceDep) -> RedirectResponse:
    return _redirect("/goldens" if current_visitor(service, request) else "/signin")


@router.get("/signin")
def signin_page(request: Request, service: ServiceDep, next: str | None = None) -> Response:
    if current_visitor(service, request) is not None:
        return _redirect(_safe_next(next))
    return render(request, "signin.html", None, next=_safe_next(next), error=None)


@router.post("/signin")
async def signin(request: Request, service: ServiceDep) -> Response:
    if not _same_origin(request):
        raise WebError(403, "The sign-in form did not come from this site. Open the sign-in "
                       "page and try again.")
    form = await request.form()
    api_key = str(form.get("api_key") or "").strip()
    next_url = _safe_next(str(form.get("next") or ""))
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
    response = _redirect(next_url)
    set_session_cookie(response, request, token)
    return response


@router.post("/signout")
async def signout(request: Request, service: ServiceDep) -> Response:
    visitor = await run_in_threadpool(current_visitor, service, request)
    if visitor is not None:
        form = await request.form()
        _check_csrf(request, visitor, str(form.get("csrf_token") or ""))

        def ended() -> None:
            with service.sessions() as session:
                end_session(session, visitor)

        await run_in_threadpool(ended)
    response = _redirect("/signin")
    clear_session_cookie(response, request)
    return response


# --------------------------------------------------------------------------------------------
# Goldens

def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _cursor(cursor: str | None) -> int | None:
    try:
        return decode_cursor(cursor or None)
    except HTTPException:
        raise WebError(400, "That page link is broken; start again from the first page.") \
            from None


@router.get("/goldens")
def goldens_page(request: Request, service: ServiceDep, visitor: VisitorDep,
                 sku: str = "", cursor: str | None = None) -> HTMLResponse:
    after = _cursor(cursor)
    sku = sku.strip()[:200]
    query = sa.select(Golden).where(Golden.tenant_id == visitor.tenant_id)
    if sku:
        query = query.where(Golden.sku.ilike(_like(sku), escape="\\"))
    if after is not None:
        query = query.where(Golden.seq < after)
    with service.sessions() as session:
        rows = list(session.scalars(query.order_by(Golden.seq.desc()).limit(_PAGE_SIZE + 1)))
    more = len(rows) > _PAGE_SIZE
    rows = rows[:_PAGE_SIZE]
    next_url = None
    if more:
        next_url = "/goldens?" + urllib.parse.urlencode(
            {"sku": sku, "cursor": encode_cursor(rows[-1].seq)})
    return render(request, "goldens.html", visitor, goldens=rows, sku=sku, next_url=next_url,
                  nav="goldens")


_SEAL_DEFAULTS = {"name": "", "sku": "", "delta_e00": "2.0", "ssim_min": "0.5",
                  "max_defects": "0", "min_defect_area_px": "150", "dimension_mm": "",
                  "card_width_mm": "", "card_required": "", "roi_x": "", "roi_y": "",
                  "roi_w": "", "roi_h": ""}


@router.get("/goldens/new")
def seal_page(request: Request, visitor: VisitorDep, sku: str = "",
              name: str = "") -> HTMLResponse:
    values = {**_SEAL_DEFAULTS, "sku": sku[:200], "name": name[:200]}
    return render(request, "golden_new.html", visitor, values=values, error=None,
                  nav="goldens")


def _number(fields: dict[str, str], name: str, label: str, kind: type = float):
    text = fields.get(name, "").strip().replace(",", ".")
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise FormProblem(f"{label} must be a number, like {_SEAL_DEFAULTS.get(name) or '2'}; "
                          f"got '{text[:40]}'.") from None
    if not np.isfinite(value):
        raise FormProblem(f"{label} must be a finite number; got '{text[:40]}'.")
    if kind is int:
        if value != int(value):
            raise FormProblem(f"{label} must be a whole number; got '{text[:40]}'.")
        return int(value)
    return value


def spec_from_fields(fields: dict[str, str]):
    """The spec sheet the seal form describes; FormProblem says which field is wrong."""
    from vision.spec import SpecError, parse_spec

    tolerances = {}
    for name, label, kind in (("delta_e00", "Colour tolerance (Delta-E00)", float),
                              ("ssim_min", "Lowest structural similarity (SSIM)", float),
                              ("max_defects", "Defects allowed", int),
                              ("min_defect_area_px", "Smallest defect counted", int),
                              ("dimension_mm", "Size tolerance", float)):
        value = _number(fields, name, label, kind)
        if value is not None:
            tolerances[name] = value
    chart: dict = {"required": fields.get("card_required") in ("on", "true", "1")}
    width = _number(fields, "card_width_mm", "Colour card width")
    if width is not None:
        chart["width_mm"] = width
    roi = [_number(fields, f"roi_{c}", f"Region {c}", int) for c in "xywh"]
    spec: dict = {"tolerances": tolerances, "chart": chart}
    if any(v is not None for v in roi):
        if any(v is None for v in roi):
            raise FormProblem("Region of interest: give all four numbers (x, y, width, height) "
                              "or none; draw the region on the photo to fill them in.")
        spec["roi"] = roi
    try:
        return parse_spec(spec)
    except SpecError as exc:
        raise FormProblem(f"Spec: {exc}.") from None


def _photos(form: Form) -> list:
    # A file input left empty still sends a part, with no file name and no bytes.
    return [u for u in form.files.get("images", []) if u.filename or len(u.data)]


def _form_fields(form: Form, names) -> dict[str, str]:
    return {name: (form.text(name) or "").strip() for name in names}


def _form_failure(request: Request, status: int, message: str, template: str,
                  visitor: Visitor, **context) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return render(request, template, visitor, status, error=message, **context)


async def _read_upload_form(request: Request, service: Service, visitor: Visitor) -> Form:
    """The multipart form, with its CSRF token checked before any work is done.

    The page's script sends the token as the X-CSRF-Token header, so a forged request is
    refused before its photos are read; a plain form post carries it as a field.
    """
    header_token = request.headers.get("x-csrf-token")
    if header_token is not None or not _same_origin(request):
        _check_csrf(request, visitor, header_token)
    try:
        form = await read_form(request, file_fields=frozenset({"images"}),
                               max_file_bytes=service.settings.max_upload_bytes)
    except HTTPException as exc:
        raise WebError(exc.status_code, str(exc.detail)) from None
    if header_token is None:
        _check_csrf(request, visitor, form.text("csrf_token"))
    return form


@router.post("/goldens")
async def seal(request: Request, service: ServiceDep, visitor: VisitorDep) -> Response:
    form = await _read_upload_form(request, service, visitor)
    values = {**_SEAL_DEFAULTS, **_form_fields(form, _SEAL_DEFAULTS)}

    def failure(status: int, message: str) -> Response:
        return _form_failure(request, status, message, "golden_new.html", visitor,
                             values=values, nav="goldens")

    uploads = _photos(form)
    try:
        if not uploads:
            raise FormProblem("Take or choose a photo of the golden sample.")
        if not values["name"]:
            raise FormProblem("Give the golden sample a name, e.g. 'Red mug, 330 ml'.")
        if not values["sku"]:
            raise FormProblem("Give the product code (SKU).")
        for field in ("name", "sku"):
            if len(values[field]) > 200:
                raise FormProblem(f"The {field} is {len(values[field])} characters long; keep "
                                  "it to 200.")
        spec = spec_from_fields(values)
    except FormProblem as exc:
        return failure(422, str(exc))
    try:
        golden_id = await service.pool.run(seal_job, service, visitor.tenant_id, uploads, spec,
                                           values["name"], values["sku"])
    except HTTPException as exc:
        return failure(exc.status_code, str(exc.detail))
    return _done(request, f"/goldens/{golden_id}")


def _done(request: Request, url: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"redirect": url})
    return _redirect(url)


def _golden_or_404(session, visitor: Visitor, golden_id: str) -> Golden:
    try:
        return golden_for_tenant(session, visitor.tenant_id, golden_id)
    except HTTPException:
        raise WebError(404, "Golden sample not found. It may belong to another account, or "
                       "the link is wrong.") from None


def _inspection_or_404(session, visitor: Visitor, inspection_id: str
                       ) -> tuple[Inspection, Golden]:
    row = session.execute(
        sa.select(Inspection, Golden).join(Golden, Golden.seq == Inspection.golden_seq)
        .where(Inspection.id == inspection_id,
               Inspection.tenant_id == visitor.tenant_id)).first()
    if row is None:
        raise WebError(404, "Inspection not found. It may belong to another account, or the "
                       "link is wrong.")
    return row[0], row[1]


def _golden_context(service: Service, visitor: Visitor, golden_id: str) -> dict:
    with service.sessions() as session:
        golden = _golden_or_404(session, visitor, golden_id)
        primary = session.get(GoldenImage, {"golden_seq": golden.seq, "position": 0})
        photos = session.scalar(sa.select(sa.func.count()).select_from(GoldenImage)
                                .where(GoldenImage.golden_seq == golden.seq))
        recent = list(session.scalars(
            sa.select(Inspection).where(Inspection.golden_seq == golden.seq)
            .order_by(Inspection.seq.desc()).limit(5)))
        newer = session.scalar(
            sa.select(Golden).where(Golden.tenant_id == visitor.tenant_id,
                                    Golden.sku == golden.sku, Golden.version > golden.version)
            .order_by(Golden.version.desc()).limit(1))
        lots = [lot_public(session, lot, golden) for lot in session.scalars(
            sa.select(Lot).where(Lot.golden_seq == golden.seq)
            .order_by(Lot.seq.desc()).limit(5))]
    size = (primary.width, primary.height)
    return {"golden": golden, "photos": photos, "size": size, "recent": recent, "newer": newer,
            "roi_box": present.percent_box(golden.spec.get("roi"), size), "nav": "goldens",
            "lots": lots, "lot_values": dict(LOT_DEFAULTS), "lot_error": None,
            "levels": LEVELS}


@router.get("/goldens/{golden_id}")
def golden_page(golden_id: str, request: Request, service: ServiceDep,
                visitor: VisitorDep) -> HTMLResponse:
    context = _golden_context(service, visitor, golden_id)
    # "Inspect a unit for this lot" links here with the lot filled in.
    lot = request.query_params.get("lot", "")[:200]
    return render(request, "golden.html", visitor, values={"unit_label": "", "lot_id": lot},
                  error=None, **context)


@router.post("/goldens/{golden_id}/inspections")
async def inspect(golden_id: str, request: Request, service: ServiceDep,
                  visitor: VisitorDep) -> Response:
    context = await run_in_threadpool(_golden_context, service, visitor, golden_id)
    form = await _read_upload_form(request, service, visitor)
    values = _form_fields(form, ("unit_label", "lot_id"))

    def failure(status: int, message: str) -> Response:
        return _form_failure(request, status, message, "golden.html", visitor, values=values,
                             **context)

    uploads = _photos(form)
    if not uploads:
        return failure(422, "Take or choose a photo of the unit.")
    for field, label in (("unit_label", "unit label"), ("lot_id", "lot")):
        if len(values[field]) > 200:
            return failure(422, f"The {label} is {len(values[field])} characters long; keep "
                           "it to 200.")
    try:
        if values["lot_id"]:
            # The API's rule, before any work: a lot id must name an open lot of this golden.
            await run_in_threadpool(check_lot, service, visitor.tenant_id, context["golden"],
                                    values["lot_id"])
        inspection_id = await service.pool.run(
            inspect_job, service, visitor.tenant_id, context["golden"], uploads,
            values["unit_label"] or None, values["lot_id"] or None)
    except HTTPException as exc:
        return failure(exc.status_code, str(exc.detail))
    return _done(request, f"/inspections/{inspection_id}")


# --------------------------------------------------------------------------------------------
# Inspections: the report and the history

@router.get("/inspections/{inspection_id}")
def report_page(inspection_id: str, request: Request, service: ServiceDep,
                visitor: VisitorDep) -> HTMLResponse:
    with service.sessions() as session:
        inspection, golden = _inspection_or_404(session, visitor, inspection_id)
        lot = lot_summary(session, inspection)  # None unless lot_id names a lot
    report = inspection.report
    size = tuple(report["golden_size"])
    return render(
        request, "report.html", visitor, inspection=inspection, golden=golden, report=report,
        lot=lot,
        colour=present.colour_panel(report), defects=present.defect_cards(report),
        roi_box=present.percent_box(report.get("roi"), size), aspect=size[0] / size[1],
        nav="history")


def _parse_day(text: str, label: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC)
    except ValueError:
        raise WebError(400, f"{label} must be a date like 2026-11-27; got '{text[:40]}'.") \
            from None


@router.get("/inspections")
def history_page(request: Request, service: ServiceDep, visitor: VisitorDep,
                 golden: str = "", sku: str = "", verdict: str = "", since: str = "",
                 until: str = "", cursor: str | None = None) -> HTMLResponse:
    after = _cursor(cursor)
    if verdict and verdict not in _VERDICTS:
        raise WebError(400, f"Verdict must be one of {', '.join(_VERDICTS)}, or any.")
    start, end = _parse_day(since, "From"), _parse_day(until, "Until")
    sku = sku.strip()[:200]
    query = (sa.select(Inspection, Golden).join(Golden, Golden.seq == Inspection.golden_seq)
             .where(Inspection.tenant_id == visitor.tenant_id))
    with service.sessions() as session:
        chosen = _golden_or_404(session, visitor, golden) if golden else None
        if chosen is not None:
            query = query.where(Inspection.golden_seq == chosen.seq)
        if sku:
            query = query.where(Golden.sku.ilike(_like(sku), escape="\\"))
        if verdict:
            query = query.where(Inspection.verdict == verdict)
        if start is not None:
            query = query.where(Inspection.created_at >= start)
        if end is not None:  # the whole day given
            query = query.where(Inspection.created_at < end + dt.timedelta(days=1))
        if after is not None:
            query = query.where(Inspection.seq < after)
        rows = session.execute(query.order_by(Inspection.seq.desc())
                               .limit(_PAGE_SIZE + 1)).all()
    more = len(rows) > _PAGE_SIZE
    rows = rows[:_PAGE_SIZE]
    filters = {"golden": golden, "sku": sku, "verdict": verdict, "since": since,
               "until": until}
    next_url = None
    if more:
        next_url = "/inspections?" + urllib.parse.urlencode(
            {**{k: v for k, v in filters.items() if v}, "cursor": encode_cursor(rows[-1][0].seq)})
    return render(request, "history.html", visitor, rows=rows, filters=filters, chosen=chosen,
                  verdicts=_VERDICTS, next_url=next_url, nav="history")


# --------------------------------------------------------------------------------------------
# Pictures for the signed-in browser

@router.get("/goldens/{golden_id}/picture.png")
def golden_picture(golden_id: str, service: ServiceDep, visitor: VisitorDep) -> Response:
    with service.sessions() as session:
        golden = _golden_or_404(session, visitor, golden_id)
    if golden.picture_sha256 is not None:
        return stored_png(service, golden.picture_sha256)
    return Response(golden_picture_png(service, golden), media_type="image/png",
                    headers=_IMMUTABLE)


def _inspection_row(service: Service, visitor: Visitor, inspection_id: str) -> Inspection:
    with service.sessions() as session:
        return _inspection_or_404(session, visitor, inspection_id)[0]


@router.get("/inspections/{inspection_id}/overlay.png")
def overlay_picture(inspection_id: str, service: ServiceDep, visitor: VisitorDep
                    ) -> FileResponse:
    return stored_png(service, _inspection_row(service, visitor, inspection_id).overlay_sha256)


@router.get("/inspections/{inspection_id}/aligned.png")
def aligned_picture(inspection_id: str, service: ServiceDep, visitor: VisitorDep
                    ) -> FileResponse:
    inspection = _inspection_row(service, visitor, inspection_id)
    if inspection.aligned_sha256 is None:
        raise WebError(404, "This inspection has no aligned picture: the unit was not "
                       "registered onto the golden sample.")
    return stored_png(service, inspection.aligned_sha256)


def heat_rgba(defect_map: np.ndarray) -> np.ndarray:
    """The defect map as a see-through overlay: clear where nothing changed, yellow to red
    (and more opaque) as the likelihood rises. 0.5 is the candidate threshold."""
    likelihood = defect_map.astype(np.float32) / 255.0
    alpha = np.clip((likelihood - 0.2) / 0.4, 0.0, 1.0) * 0.85
    ramp = np.clip((likelihood - 0.2) / 0.5, 0.0, 1.0)
    rgba = np.empty(defect_map.shape + (4,), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = np.round(220 * (1.0 - ramp)).astype(np.uint8)
    rgba[..., 2] = 0
    rgba[..., 3] = np.round(255 * alpha).astype(np.uint8)
    return rgba


@router.get("/inspections/{inspection_id}/heat.png")
def heat_picture(inspection_id: str, service: ServiceDep, visitor: VisitorDep) -> Response:
    inspection = _inspection_row(service, visitor, inspection_id)
    defect_map = cv2.imread(str(service.blobs.path(inspection.defect_map_sha256)),
                            cv2.IMREAD_UNCHANGED)
    rgba = heat_rgba(defect_map)
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("OpenCV could not encode the heat map")
    return Response(png.tobytes(), media_type="image/png", headers=_IMMUTABLE)


@router.get("/inspections/{inspection_id}/photo")
def unit_photo(inspection_id: str, service: ServiceDep, visitor: VisitorDep) -> Response:
    """The compared unit photo (shown when the unit could not be aligned), re-encoded: the
    uploaded bytes are never served as they came (service/reencode.py says why)."""
    with service.sessions() as session:
        inspection, _ = _inspection_or_404(session, visitor, inspection_id)
        image = session.get(InspectionImage, {"inspection_seq": inspection.seq, "position": 0})
    data, media_type = reencoded_photo(service.blobs.path(image.sha256), image.format)
    return Response(data, media_type=media_type, headers=_IMMUTABLE)
