"""Golden samples' pages: the list, sealing one, a golden's page, inspecting a unit against it.

Server-rendered (Jinja2) with a little vanilla JavaScript (static/app.js) for upload progress,
drawing the region of interest and the report's slider; every page also works without it.
Pages read the same tables as the API, through the same tenant checks: another tenant's golden
answers 404, exactly like a missing one. Pictures are served to the signed-in browser here (an
<img> cannot send an API key).
"""

from __future__ import annotations

import urllib.parse
from functools import partial

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from service.aql import LEVELS
from service.db import Golden, GoldenImage, Inspection, Lot
from service.deps import ServiceDep
from service.errors import ServiceError
from service.http_errors import error_headers, http_status
from service.operations import (
    Service,
    cached_thumbnail,
    golden_picture_png,
    golden_thumbnail,
    inspect_job,
    seal_job,
)
from service.pagination import encode_cursor
from service.queries import check_lot, lot_public
from service.replay import IdempotencyKeyHeader, answer_once, form_fingerprint
from service.responses import IMMUTABLE, stored_png
from service.uploads import Form
from service.web import present
from service.web.common import (
    LOT_DEFAULTS,
    PAGE_SIZE,
    FormProblem,
    VisitorDep,
    admitted,
    done,
    expensive,
    form_failure,
    form_fields,
    golden_or_404,
    like,
    page_cursor,
    read_upload_form,
    render,
    search_text,
)
from service.web.sessions import Visitor
from service.work import Admission

__all__ = ["SEAL_DEFAULTS", "golden_context", "router", "spec_from_fields"]

router = APIRouter(include_in_schema=False)


@router.get("/goldens")
def goldens_page(request: Request, service: ServiceDep, visitor: VisitorDep,
                 sku: str = "", cursor: str | None = None) -> HTMLResponse:
    after = page_cursor(cursor)
    sku = search_text(sku)
    query = sa.select(Golden).where(Golden.tenant_id == visitor.tenant_id)
    if sku:
        query = query.where(Golden.sku.ilike(like(sku), escape="\\"))
    if after is not None:
        query = query.where(Golden.seq < after)
    with service.sessions() as session:
        rows = list(session.scalars(query.order_by(Golden.seq.desc()).limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_url = None
    if more:
        next_url = "/goldens?" + urllib.parse.urlencode(
            {"sku": sku, "cursor": encode_cursor(rows[-1].seq)})
    return render(request, "goldens.html", visitor, goldens=rows, sku=sku, next_url=next_url,
                  nav="goldens")


SEAL_DEFAULTS = {"name": "", "sku": "", "delta_e00": "2.0", "ssim_min": "0.5",
                  "max_defects": "0", "min_defect_area_px": "150", "dimension_mm": "",
                  "card_width_mm": "", "card_required": "", "roi_x": "", "roi_y": "",
                  "roi_w": "", "roi_h": ""}


@router.get("/goldens/new")
def seal_page(request: Request, visitor: VisitorDep, sku: str = "",
              name: str = "") -> HTMLResponse:
    values = {**SEAL_DEFAULTS, "sku": sku[:200], "name": name[:200]}
    return render(request, "golden_new.html", visitor, values=values, error=None,
                  nav="goldens")


def _number(fields: dict[str, str], name: str, label: str, kind: type = float):
    text = fields.get(name, "").strip().replace(",", ".")
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise FormProblem(f"{label} must be a number, like {SEAL_DEFAULTS.get(name) or '2'}; "
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


# The CSRF token rides in the form but is no part of what the form asks for.
_NOT_THE_REQUEST = frozenset({"csrf_token"})


def _photos(form: Form) -> list:
    # A file input left empty still sends a part, with no file name and no bytes.
    return [u for u in form.files.get("images", []) if u.filename or len(u.data)]


@router.post("/goldens")
async def seal(request: Request, service: ServiceDep, visitor: VisitorDep,
               idempotency_key: IdempotencyKeyHeader = None) -> Response:
    # The admission budget (service.work) from the upload's first byte to the stored golden.
    async with admitted(service) as admission:
        return await _seal(request, service, visitor, admission, idempotency_key)


async def _seal(request: Request, service: Service, visitor: Visitor, admission: Admission,
                idempotency_key: str | None) -> Response:
    form = await read_upload_form(request, service, visitor)
    values = {**SEAL_DEFAULTS, **form_fields(form, SEAL_DEFAULTS)}

    def failure(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return form_failure(request, status, message, "golden_new.html", visitor,
                             headers, values=values, nav="goldens")

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
        spec = await admission.run(spec_from_fields, values)
    except FormProblem as exc:
        return failure(422, str(exc))

    async def seal_once() -> Response:
        golden_id = await admission.run(seal_job, service, visitor.tenant_id, uploads, spec,
                                        values["name"], values["sku"])
        return done(request, f"/goldens/{golden_id}")

    try:
        return await answer_once(service, visitor.tenant_id, idempotency_key,
                                 partial(form_fingerprint, request, form, _NOT_THE_REQUEST),
                                 seal_once)
    except ServiceError as exc:
        return failure(http_status(exc), exc.message, error_headers(exc))


def golden_context(service: Service, visitor: Visitor, golden_id: str) -> dict:
    """What a golden's page shows (golden.html), for the page and the forms it re-renders."""
    with service.sessions() as session:
        golden = golden_or_404(session, visitor, golden_id)
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
            .order_by(Lot.seq.desc()).limit(_LOTS_LISTED))]
        lot_names = _lot_names(session, recent)
    size = (primary.width, primary.height)
    return {"golden": golden, "photos": photos, "size": size, "recent": recent, "newer": newer,
            "roi_box": present.percent_box(golden.spec.get("roi"), size), "nav": "goldens",
            "region_source": _region_source(service, golden, recent),
            "lots": lots[:5], "open_lots": [lot for lot in lots if lot.verdict == "pending"],
            "lot_names": lot_names, "lot_values": dict(LOT_DEFAULTS), "lot_error": None,
            "levels": LEVELS}


_LOTS_LISTED = 50  # the newest lots of a golden: the page lists 5, the inspect form the open ones


def _region_source(service: Service, golden: Golden, recent: list[Inspection]) -> str | None:
    """What an inspection against this golden compares, as the report's roi_source: from the
    spec, the prepared golden when it is in memory, or the latest report; None: not known."""
    if golden.spec.get("roi") is not None:
        return "spec"
    sealed = service.goldens.get(golden.id)
    if sealed is not None:
        return "product" if sealed.prepared.product is not None else "overlap"
    # Only the golden decides between product and overlap, so any report of it tells.
    return next((i.report.get("roi_source") for i in recent if i.report.get("roi_source")),
                None)


def _lot_names(session, inspections: list[Inspection]) -> dict[str, str]:
    """Lot id -> what a person calls it (its reference), for the lots these units joined."""
    ids = {i.lot_id for i in inspections if i.lot_id}
    if not ids:
        return {}
    rows = session.execute(sa.select(Lot.id, Lot.reference, Lot.created_at)
                           .where(Lot.id.in_(ids), Lot.tenant_id == inspections[0].tenant_id))
    return {lot_id: reference or f"lot opened {present.format_time(created)}"
            for lot_id, reference, created in rows}


@router.get("/goldens/{golden_id}")
def golden_page(golden_id: str, request: Request, service: ServiceDep,
                visitor: VisitorDep) -> HTMLResponse:
    context = golden_context(service, visitor, golden_id)
    # "Inspect a unit for this lot" links here with the lot filled in.
    lot = request.query_params.get("lot", "")[:200]
    return render(request, "golden.html", visitor, values={"unit_label": "", "lot_id": lot},
                  error=None, **context)


@router.post("/goldens/{golden_id}/inspections")
async def inspect(golden_id: str, request: Request, service: ServiceDep,
                  visitor: VisitorDep, idempotency_key: IdempotencyKeyHeader = None
                  ) -> Response:
    context = await run_in_threadpool(golden_context, service, visitor, golden_id)
    # The admission budget (service.work) from the upload's first byte to the stored record.
    async with admitted(service) as admission:
        return await _inspect(request, service, visitor, context, admission, idempotency_key)


async def _inspect(request: Request, service: Service, visitor: Visitor, context: dict,
                   admission: Admission, idempotency_key: str | None) -> Response:
    form = await read_upload_form(request, service, visitor)
    values = form_fields(form, ("unit_label", "lot_id"))

    def failure(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        return form_failure(request, status, message, "golden.html", visitor, headers,
                             values=values, **context)

    uploads = _photos(form)
    if not uploads:
        return failure(422, "Take or choose a photo of the unit.")
    for field, label in (("unit_label", "unit label"), ("lot_id", "lot")):
        if len(values[field]) > 200:
            return failure(422, f"The {label} is {len(values[field])} characters long; keep "
                           "it to 200.")

    async def inspect_once() -> Response:
        if values["lot_id"]:
            # The API's rule, before any work: a lot id must name an open lot of this golden.
            await run_in_threadpool(check_lot, service, visitor.tenant_id, context["golden"],
                                    values["lot_id"])
        inspection_id = await admission.run(
            inspect_job, service, visitor.tenant_id, context["golden"], uploads,
            values["unit_label"] or None, values["lot_id"] or None)
        return done(request, f"/inspections/{inspection_id}")

    try:
        return await answer_once(service, visitor.tenant_id, idempotency_key,
                                 partial(form_fingerprint, request, form, _NOT_THE_REQUEST),
                                 inspect_once)
    except ServiceError as exc:
        return failure(http_status(exc), exc.message, error_headers(exc))


def _golden_row(service: Service, visitor: Visitor, golden_id: str) -> Golden:
    with service.sessions() as session:
        return golden_or_404(session, visitor, golden_id)


@router.get("/goldens/{golden_id}/picture.png")
async def golden_picture(golden_id: str, service: ServiceDep, visitor: VisitorDep) -> Response:
    golden = await run_in_threadpool(_golden_row, service, visitor, golden_id)
    if golden.picture_sha256 is not None:
        return stored_png(service, golden.picture_sha256)
    # Sealed before the picture was stored: made from the photo, an expensive step.
    return Response(await expensive(service, golden_picture_png, service, golden),
                    media_type="image/png", headers=IMMUTABLE)


@router.get("/goldens/{golden_id}/thumb.webp")
async def golden_thumb(golden_id: str, service: ServiceDep, visitor: VisitorDep
                       ) -> FileResponse:
    """The lists' small picture: a file made once, cached by the browser (a golden never
    changes; sealing again makes a new golden)."""
    golden = await run_in_threadpool(_golden_row, service, visitor, golden_id)
    path = await run_in_threadpool(cached_thumbnail, service, golden)
    if path is None:  # sealed before thumbnails were: made now, an expensive step
        path = await expensive(service, golden_thumbnail, service, golden)
    return FileResponse(path, media_type="image/webp", headers=IMMUTABLE)
