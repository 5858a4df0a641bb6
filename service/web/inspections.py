"""Inspections' pages: the report, the history with its filters, and the report's pictures.

Pictures are served to the signed-in browser here (an <img> cannot send an API key); another
tenant's inspection answers 404, exactly like a missing one.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.concurrency import run_in_threadpool

from service.db import Golden, Inspection, InspectionImage
from service.deps import ServiceDep
from service.errors import NotFound, ServiceError
from service.operations import Service, cached_heat_png, heat_png
from service.pagination import encode_cursor
from service.queries import inspection_for_tenant, lot_summary
from service.responses import IMMUTABLE, reencoded_photo, stored_png
from service.web import present
from service.web.common import (
    PAGE_SIZE,
    VisitorDep,
    WebError,
    expensive,
    golden_or_404,
    like,
    page_cursor,
    render,
    search_text,
)
from service.web.sessions import Visitor

__all__ = ["VERDICTS", "router"]

router = APIRouter(include_in_schema=False)

VERDICTS = ("pass", "fail", "inconclusive")
_GOLDEN_CHOICES = 200  # goldens offered by the history's filter; older ones by their link


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
        not_measured=(present.not_measured(report) if inspection.verdict == "inconclusive"
                      else []),
        nav="history")


def _parse_day(text: str, label: str, *, after: bool = False) -> dt.datetime | None:
    """The start of the day `text` names (of the next day, `after`); None: no bound (no day
    given, or the day after the last one a date can name)."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise WebError(400, f"{label} must be a date like 2026-11-27; got '{text[:40]}'.") \
            from None
    if after:
        if day == dt.date.max:  # "until 9999-12-31": every inspection is before its end
            return None
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), dt.UTC)


@router.get("/inspections")
def history_page(request: Request, service: ServiceDep, visitor: VisitorDep,
                 golden: str = "", sku: str = "", verdict: str = "", since: str = "",
                 until: str = "", cursor: str | None = None) -> HTMLResponse:
    after = page_cursor(cursor)
    if verdict and verdict not in VERDICTS:
        raise WebError(400, f"Verdict must be one of {', '.join(VERDICTS)}, or any.")
    start, end = _parse_day(since, "From"), _parse_day(until, "Until", after=True)
    sku = search_text(sku)
    query = (sa.select(Inspection, Golden).join(Golden, Golden.seq == Inspection.golden_seq)
             .where(Inspection.tenant_id == visitor.tenant_id))
    with service.sessions() as session:
        chosen = golden_or_404(session, visitor, golden) if golden else None
        # The filter's choices: the newest goldens (the chosen one stays listed).
        choices = list(session.scalars(
            sa.select(Golden).where(Golden.tenant_id == visitor.tenant_id)
            .order_by(Golden.seq.desc()).limit(_GOLDEN_CHOICES)))
        if chosen is not None and chosen not in choices:
            choices.append(chosen)
        if chosen is not None:
            query = query.where(Inspection.golden_seq == chosen.seq)
        if sku:
            query = query.where(Golden.sku.ilike(like(sku), escape="\\"))
        if verdict:
            query = query.where(Inspection.verdict == verdict)
        if start is not None:
            query = query.where(Inspection.created_at >= start)
        if end is not None:  # the whole day given
            query = query.where(Inspection.created_at < end)
        if after is not None:
            query = query.where(Inspection.seq < after)
        rows = session.execute(query.order_by(Inspection.seq.desc())
                               .limit(PAGE_SIZE + 1)).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    filters = {"golden": golden, "sku": sku, "verdict": verdict, "since": since,
               "until": until}
    next_url = None
    if more:
        next_url = "/inspections?" + urllib.parse.urlencode(
            {**{k: v for k, v in filters.items() if v}, "cursor": encode_cursor(rows[-1][0].seq)})
    return render(request, "history.html", visitor, rows=rows, filters=filters, chosen=chosen,
                  goldens=choices, verdicts=VERDICTS, next_url=next_url, nav="history")


def _inspection_or_404(session, visitor: Visitor, inspection_id: str
                       ) -> tuple[Inspection, Golden]:
    try:
        return inspection_for_tenant(session, visitor.tenant_id, inspection_id)
    except NotFound:
        raise WebError(404, "Inspection not found. It may belong to another account, or the "
                       "link is wrong.") from None


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


@router.get("/inspections/{inspection_id}/heat.png")
async def heat_picture(inspection_id: str, service: ServiceDep, visitor: VisitorDep
                       ) -> FileResponse:
    """The defect map in the overlay's colours: a file made on its first request."""
    inspection = await run_in_threadpool(_inspection_row, service, visitor, inspection_id)
    path = cached_heat_png(service, inspection.defect_map_sha256)
    if path is None:
        path = await expensive(service, heat_png, service, inspection.defect_map_sha256)
    return FileResponse(path, media_type="image/png", headers=IMMUTABLE)


@router.get("/inspections/{inspection_id}/photo")
async def unit_photo(inspection_id: str, service: ServiceDep, visitor: VisitorDep
                     ) -> FileResponse:
    """The compared unit photo (shown when the unit could not be aligned), re-encoded: the
    uploaded bytes are never served as they came (service/reencode.py says why)."""
    def primary() -> InspectionImage:
        with service.sessions() as session:
            inspection, _ = _inspection_or_404(session, visitor, inspection_id)
            return session.get(InspectionImage, {"inspection_seq": inspection.seq,
                                                 "position": 0})

    image = await run_in_threadpool(primary)
    try:
        return await reencoded_photo(service, image.sha256, image.format)
    except ServiceError as exc:
        raise WebError.from_service_error(exc) from None
