"""One-off comparison: golden + unit + spec in one request, nothing stored."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from service.deps import ServiceDep, TenantDep
from service.forms import SPEC_EXAMPLE, parse_spec_field
from service.operations import compare_job
from service.routes.common import multipart_body, text_field
from service.schemas import CompareResult
from service.uploads import read_form

router = APIRouter(prefix="/v1", tags=["compare"])


def _one_photo(form, name: str) -> object:
    uploads = form.files.get(name) or []
    if len(uploads) != 1:
        got = "none" if not uploads else f"{len(uploads)}"
        raise HTTPException(422, f"{name}: exactly one photo expected, got {got}; send "
                            f"{name}=@{name}.jpg")
    return uploads[0]


@router.post(
    "/compare", response_model=CompareResult, summary="Compare two photos, store nothing",
    description="For one-off checks. The golden photo is prepared in this request, so each "
    "call costs more than an inspection against a sealed golden.",
    openapi_extra=multipart_body({
        "golden": {"type": "string", "format": "binary", "description": "Golden photo."},
        "unit": {"type": "string", "format": "binary", "description": "Unit photo."},
        "spec": text_field("Spec sheet as JSON (or YAML); optional.", SPEC_EXAMPLE),
    }, ["golden", "unit"]),
)
async def compare_once(request: Request, service: ServiceDep, tenant_id: TenantDep
                       ) -> CompareResult:
    # The admission budget (service.work) from the upload's first byte to the report.
    async with service.pool.admit() as admission:
        form = await read_form(request, file_fields=frozenset({"golden", "unit"}),
                               max_file_bytes=service.settings.max_upload_bytes, max_files=2)
        golden, unit = _one_photo(form, "golden"), _one_photo(form, "unit")
        spec = await parse_spec_field(form.text("spec"), admission)
        report = await admission.run(compare_job, service, golden, unit, spec)
    return CompareResult(report=report)
