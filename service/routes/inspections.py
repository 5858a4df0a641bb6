"""Inspections: a unit compared with a sealed golden, stored with its photos and pictures."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from service.db import Golden, Inspection, InspectionImage
from service.deps import ServiceDep, SessionDep, TenantDep
from service.forms import optional_text, required_photos
from service.operations import inspect_job
from service.pagination import decode_cursor, encode_cursor
from service.queries import (
    INSPECTION_NOT_FOUND,
    check_lot,
    golden_for_tenant,
    inspection_for_tenant,
    lot_summary,
)
from service.replay import IdempotencyKeyHeader, answer_once, form_fingerprint
from service.responses import reencoded_photo, stored_png
from service.routes.common import (
    BUSY,
    Position,
    images_public,
    multipart_body,
    photos_property,
    text_field,
)
from service.schemas import InspectionList, InspectionPublic, InspectionSummary
from service.uploads import read_form

router = APIRouter(tags=["inspections"])


def _summary_fields(inspection: Inspection, golden: Golden) -> dict:
    return dict(id=inspection.id, golden_id=golden.id, golden_version=golden.version,
                sku=golden.sku, verdict=inspection.verdict, score=inspection.score,
                unit_label=inspection.unit_label, lot_id=inspection.lot_id,
                created_at=inspection.created_at)


def _inspection_public(session, inspection: Inspection, golden: Golden) -> InspectionPublic:
    images = session.scalars(sa.select(InspectionImage)
                             .where(InspectionImage.inspection_seq == inspection.seq))
    base = f"/v1/inspections/{inspection.id}"
    return InspectionPublic(**_summary_fields(inspection, golden), images=images_public(images),
                            lot=lot_summary(session, inspection),
                            overlay_url=f"{base}/overlay.png",
                            defect_map_url=f"{base}/defect_map.png", report=inspection.report)


@router.post(
    "/v1/goldens/{golden_id}/inspections", status_code=201, response_model=InspectionPublic,
    summary="Inspect a unit against a sealed golden",
    description="Upload the unit's photos (the first is compared with the golden's primary "
    "view; further views are stored with the record). The answer is the stored report; the "
    "overlay and defect map are at `overlay_url` and `defect_map_url`.",
    responses={404: {"description": "Golden sample not found"},
               503: {"description": BUSY}},
    openapi_extra=multipart_body({
        "images": photos_property("One or more unit photos; the first is compared."),
        "unit_label": text_field("Optional: the unit's serial number or label.", "unit 0042"),
        "lot_id": text_field("Optional: the id of a lot from POST /v1/lots, which the unit "
                             "joins (404 if there is no such lot, 409 once the lot is judged); "
                             "any text that is not a UUID is kept as a plain label.",
                             "LOT-2026-11-A"),
    }, ["images"]),
)
async def inspect_unit(golden_id: str, request: Request, service: ServiceDep,
                       tenant_id: TenantDep, idempotency_key: IdempotencyKeyHeader = None
                       ) -> InspectionPublic:
    golden = await run_in_threadpool(_load_golden, service, tenant_id, golden_id)
    # The admission budget (service.work) from the upload's first byte to the stored record.
    async with service.pool.admit() as admission:
        form = await read_form(request, file_fields=frozenset({"images"}),
                               max_file_bytes=service.settings.max_upload_bytes)
        uploads = required_photos(form, "images", "send the unit photo as images=@unit.jpg")
        unit_label = optional_text(form, "unit_label")
        lot_id = optional_text(form, "lot_id")

        async def inspect() -> InspectionPublic:
            if lot_id is not None:
                await run_in_threadpool(check_lot, service, tenant_id, golden, lot_id)
            inspection_id = await admission.run(inspect_job, service, tenant_id, golden,
                                                uploads, unit_label, lot_id)
            return await run_in_threadpool(_read_inspection, service, tenant_id, inspection_id)

        return await answer_once(service, tenant_id, idempotency_key,
                                 partial(form_fingerprint, request, form), inspect)


def _load_golden(service, tenant_id: str, golden_id: str) -> Golden:
    with service.sessions() as session:
        return golden_for_tenant(session, tenant_id, golden_id)


def _read_inspection(service, tenant_id: str, inspection_id: str) -> InspectionPublic:
    with service.sessions() as session:
        return _inspection_public(session, *inspection_for_tenant(session, tenant_id,
                                                                  inspection_id))


@router.get("/v1/inspections", response_model=InspectionList,
            summary="List inspections, newest first")
def list_inspections(
    session: SessionDep, tenant_id: TenantDep,
    golden_id: Annotated[str | None, Query(description="Only against this golden.")] = None,
    verdict: Annotated[Literal["pass", "fail", "inconclusive"] | None, Query()] = None,
    lot_id: Annotated[str | None, Query(description="Only with this lot_id.")] = None,
    since: Annotated[dt.datetime | None, Query(
        description="Only inspections created at or after this time (ISO 8601; UTC if no "
        "offset is given).", examples=["2026-11-27T00:00:00Z"])] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> InspectionList:
    after = decode_cursor(cursor)
    query = (sa.select(Inspection, Golden).join(Golden, Golden.seq == Inspection.golden_seq)
             .where(Inspection.tenant_id == tenant_id))
    if golden_id is not None:
        query = query.where(Inspection.golden_seq
                            == golden_for_tenant(session, tenant_id, golden_id).seq)
    if verdict is not None:
        query = query.where(Inspection.verdict == verdict)
    if lot_id is not None:
        query = query.where(Inspection.lot_id == lot_id)
    if since is not None:
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        try:
            since = since.astimezone(dt.UTC)  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        except OverflowError:
            raise HTTPException(422, "since: the time is outside the years 1-9999 once "
                                "converted to UTC; give a real date") from None
        query = query.where(Inspection.created_at >= since)
    if after is not None:
        query = query.where(Inspection.seq < after)
    rows = session.execute(query.order_by(Inspection.seq.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return InspectionList(
        items=[InspectionSummary(**_summary_fields(i, g)) for i, g in rows],
        next_cursor=encode_cursor(rows[-1][0].seq) if more else None)


@router.get("/v1/inspections/{inspection_id}", response_model=InspectionPublic,
            summary="Read an inspection and its report",
            responses={404: {"description": INSPECTION_NOT_FOUND}})
def get_inspection(inspection_id: str, session: SessionDep, tenant_id: TenantDep
                   ) -> InspectionPublic:
    return _inspection_public(session, *inspection_for_tenant(session, tenant_id,
                                                              inspection_id))


@router.get("/v1/inspections/{inspection_id}/overlay.png", response_class=FileResponse,
            summary="The golden photo with the compared region, defect heat and numbered boxes",
            responses={404: {"description": INSPECTION_NOT_FOUND}})
def get_overlay(inspection_id: str, session: SessionDep, tenant_id: TenantDep,
                service: ServiceDep) -> FileResponse:
    inspection, _ = inspection_for_tenant(session, tenant_id, inspection_id)
    return stored_png(service, inspection.overlay_sha256)


@router.get("/v1/inspections/{inspection_id}/defect_map.png", response_class=FileResponse,
            summary="Defect likelihood, 8-bit greyscale, golden size",
            responses={404: {"description": INSPECTION_NOT_FOUND}})
def get_defect_map(inspection_id: str, session: SessionDep, tenant_id: TenantDep,
                   service: ServiceDep) -> FileResponse:
    inspection, _ = inspection_for_tenant(session, tenant_id, inspection_id)
    return stored_png(service, inspection.defect_map_sha256)


@router.get("/v1/inspections/{inspection_id}/aligned.png", response_class=FileResponse,
            summary="The unit resampled onto the golden, at the overlay's size",
            responses={404: {"description": INSPECTION_NOT_FOUND
                                            + ", or the unit was not registered"}})
def get_aligned(inspection_id: str, session: SessionDep, tenant_id: TenantDep,
                service: ServiceDep) -> FileResponse:
    inspection, _ = inspection_for_tenant(session, tenant_id, inspection_id)
    if inspection.aligned_sha256 is None:
        raise HTTPException(404, "Inspection has no aligned picture: the unit was not "
                            "registered onto the golden, or it was inspected before these "
                            "pictures were stored")
    return stored_png(service, inspection.aligned_sha256)


@router.get("/v1/inspections/{inspection_id}/images/{position}", response_class=FileResponse,
            summary="Download a unit photo, re-encoded",
            description="The photo's pixels as displayed (EXIF orientation applied), encoded "
            "anew: PNG for PNG/TIFF uploads, JPEG q95 otherwise, without metadata. The uploaded "
            "bytes are kept unaltered; `images[].sha256` of the inspection names them.",
            responses={404: {"description": INSPECTION_NOT_FOUND}, 503: {"description": BUSY}})
async def get_inspection_image(inspection_id: str, position: Position, tenant_id: TenantDep,
                               service: ServiceDep) -> FileResponse:
    def stored_image() -> InspectionImage:
        with service.sessions() as session:
            inspection, _ = inspection_for_tenant(session, tenant_id, inspection_id)
            image = session.get(InspectionImage, {"inspection_seq": inspection.seq,
                                                  "position": position})
        if image is None:
            raise HTTPException(404, f"Inspection has no image at position {position}")
        return image

    image = await run_in_threadpool(stored_image)
    # Never the uploaded bytes as-is (service.reencode says why).
    return await reencoded_photo(service, image.sha256, image.format)
