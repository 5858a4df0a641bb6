"""Sealed golden samples: seal (immutable, versioned per SKU), list, read."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from service.db import Golden, GoldenImage
from service.deps import ServiceDep, SessionDep, TenantDep
from service.forms import SPEC_EXAMPLE, parse_spec_field, required_photos, required_text
from service.operations import golden_picture_png, seal_job
from service.pagination import decode_cursor, encode_cursor
from service.queries import GOLDEN_NOT_FOUND, golden_for_tenant
from service.replay import IdempotencyKeyHeader, answer_once, form_fingerprint
from service.responses import IMMUTABLE, reencoded_photo, stored_png
from service.routes.common import (
    BUSY,
    Position,
    images_public,
    multipart_body,
    photos_property,
    text_field,
)
from service.schemas import GoldenList, GoldenPublic
from service.uploads import read_form

router = APIRouter(prefix="/v1/goldens", tags=["goldens"])


def golden_public(session, golden: Golden) -> GoldenPublic:
    images = session.scalars(sa.select(GoldenImage).where(GoldenImage.golden_seq == golden.seq))
    return GoldenPublic(id=golden.id, sku=golden.sku, version=golden.version, name=golden.name,
                        spec=golden.spec, sealed_at=golden.sealed_at,
                        images=images_public(images))


@router.post(
    "", status_code=201, response_model=GoldenPublic, summary="Seal a golden sample",
    description="Upload the golden sample's photos (the first is the primary view, compared "
    "with every unit) with its spec sheet. Sealed goldens are immutable: sealing the same `sku` "
    "again creates version + 1 and keeps the old versions. The golden's per-photo work "
    "(features, analysis copies) is done here once, so inspections skip it.",
    openapi_extra=multipart_body({
        "images": photos_property("One or more photos; the first is the primary view. JPEG, "
                                  "PNG, WebP, TIFF, HEIF/HEIC or AVIF."),
        "spec": text_field("Spec sheet as JSON (or YAML); optional, defaults otherwise.",
                           SPEC_EXAMPLE),
        "name": text_field("Human-readable name.", "Red mug, 330 ml, logo front"),
        "sku": text_field("Product code; re-sealing a SKU makes a new version.",
                          "MUG-330-RED"),
    }, ["images", "name", "sku"]),
)
async def seal_golden(request: Request, service: ServiceDep, tenant_id: TenantDep,
                      idempotency_key: IdempotencyKeyHeader = None) -> GoldenPublic:
    # The admission budget (service.work) from the upload's first byte to the stored golden.
    async with service.pool.admit() as admission:
        form = await read_form(request, file_fields=frozenset({"images"}),
                               max_file_bytes=service.settings.max_upload_bytes)
        uploads = required_photos(form, "images", "send the golden photos as images=@golden.jpg")
        name = required_text(form, "name", "give the golden sample a name (name=...)")
        sku = required_text(form, "sku", "give the product code (sku=...)")
        spec = await parse_spec_field(form.text("spec"), admission)

        async def seal() -> GoldenPublic:
            golden_id = await admission.run(seal_job, service, tenant_id, uploads, spec, name,
                                            sku)
            return await run_in_threadpool(_read_golden, service, tenant_id, golden_id)

        return await answer_once(service, tenant_id, idempotency_key,
                                 partial(form_fingerprint, request, form), seal)


def _read_golden(service, tenant_id: str, golden_id: str) -> GoldenPublic:
    with service.sessions() as session:
        return golden_public(session, golden_for_tenant(session, tenant_id, golden_id))


@router.get(
    "", response_model=GoldenList, summary="List sealed goldens, newest first",
    description="`sku` is exact and case-sensitive, as a product code is: it lists one SKU's "
    "versions. `sku_contains` finds any part of the SKU, ignoring case, as the web pages' "
    "search does. Both may be given.")
def list_goldens(
    session: SessionDep, tenant_id: TenantDep,
    sku: Annotated[str | None, Query(
        description="Only this SKU, exactly and case-sensitive (all its versions).")] = None,
    sku_contains: Annotated[str | None, Query(
        max_length=200, description="Only SKUs containing this text, ignoring case (the web "
        "pages' search); % and _ are plain characters.")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> GoldenList:
    after = decode_cursor(cursor)
    query = sa.select(Golden).where(Golden.tenant_id == tenant_id)
    if sku is not None:
        query = query.where(Golden.sku == sku)
    if sku_contains:
        query = query.where(Golden.sku.icontains(sku_contains, autoescape=True))
    if after is not None:
        query = query.where(Golden.seq < after)
    rows = list(session.scalars(query.order_by(Golden.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return GoldenList(items=[golden_public(session, g) for g in rows],
                      next_cursor=encode_cursor(rows[-1].seq) if more else None)


@router.get("/{golden_id}", response_model=GoldenPublic, summary="Read a sealed golden",
            responses={404: {"description": GOLDEN_NOT_FOUND}})
def get_golden(golden_id: str, session: SessionDep, tenant_id: TenantDep) -> GoldenPublic:
    return golden_public(session, golden_for_tenant(session, tenant_id, golden_id))


@router.get("/{golden_id}/images/{position}", summary="Download a golden photo, re-encoded",
            description="The photo's pixels as displayed (EXIF orientation applied), encoded "
            "anew: PNG for PNG/TIFF uploads, JPEG q95 otherwise, without metadata. The uploaded "
            "bytes are kept unaltered; `images[].sha256` of the golden names them.",
            response_class=FileResponse, responses={404: {"description": GOLDEN_NOT_FOUND},
                                                    503: {"description": BUSY}})
async def get_golden_image(golden_id: str, position: Position, tenant_id: TenantDep,
                           service: ServiceDep) -> FileResponse:
    def stored_image() -> GoldenImage:
        with service.sessions() as session:
            golden = golden_for_tenant(session, tenant_id, golden_id)
            image = session.get(GoldenImage, {"golden_seq": golden.seq, "position": position})
        if image is None:
            raise HTTPException(404, f"Golden sample has no image at position {position}")
        return image

    image = await run_in_threadpool(stored_image)
    # Never the uploaded bytes as-is (service.reencode says why).
    return await reencoded_photo(service, image.sha256, image.format)


@router.get("/{golden_id}/picture.png", summary="The golden photo at the overlay's size, PNG",
            response_class=Response, responses={404: {"description": GOLDEN_NOT_FOUND},
                                                503: {"description": BUSY}})
async def get_golden_picture(golden_id: str, tenant_id: TenantDep,
                             service: ServiceDep) -> Response:
    golden = await run_in_threadpool(_load_golden, service, tenant_id, golden_id)
    if golden.picture_sha256 is not None:
        return stored_png(service, golden.picture_sha256)
    # Sealed before the picture was stored: made from the photo, an expensive step.
    return Response(await service.pool.run(golden_picture_png, service, golden),
                    media_type="image/png", headers=IMMUTABLE)


def _load_golden(service, tenant_id: str, golden_id: str) -> Golden:
    with service.sessions() as session:
        return golden_for_tenant(session, tenant_id, golden_id)
