"""Lot pages: open a lot from a golden's page, and follow it to accept or reject.

The rules and the numbers are the API's (service.aql, service.lots, service.queries); these
pages only show them: the plan per defect class, progress through the sample, defective units
per class against Ac/Re, and the inspections that joined the lot.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from service.aql import DEFECT_CLASSES, MAX_LOT_SIZE, AqlError, lot_plan
from service.db import Inspection, Lot
from service.deps import ServiceDep
from service.errors import NotFound
from service.queries import lot_for_tenant, lot_public
from service.web.common import (
    LOT_DEFAULTS,
    VisitorDep,
    WebError,
    check_csrf,
    done,
    golden_or_404,
    read_small_form,
    render,
    wants_json,
)
from service.web.goldens import golden_context

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _plan_from_fields(fields: dict[str, str]):
    """The lot's plan and AQLs from the form; ValueError with the message to show."""
    text = fields["lot_size"]
    # ASCII digits only ("²" is a digit to str.isdigit, not to int()); aql.lot_plan says
    # what is out of range (thousands of digits are not even read).
    if not (text.isascii() and text.isdigit()):
        raise ValueError("Enter the lot size as a whole number of units, e.g. 3000.")
    lot_size = int(text) if len(text) <= 12 else MAX_LOT_SIZE + 1
    aql = {}
    for name in DEFECT_CLASSES:
        raw = fields[f"aql_{name}"]
        try:
            aql[name] = float(raw)
        except ValueError:
            raise ValueError(f"The {name} AQL {raw!r} is not a number.") from None
    try:
        return lot_plan(lot_size, fields["level"], aql), aql
    except AqlError as exc:
        raise ValueError(str(exc)[0].upper() + str(exc)[1:] + ".") from None


@router.post("/goldens/{golden_id}/lots")
async def open_lot(golden_id: str, request: Request, service: ServiceDep,
                   visitor: VisitorDep) -> Response:
    form = await read_small_form(request)
    check_csrf(request, visitor, form.get("csrf_token", ""))
    fields = {name: (form.get(name) or default).strip()
              for name, default in LOT_DEFAULTS.items()}
    context = await run_in_threadpool(golden_context, service, visitor, golden_id)
    try:
        if len(fields["reference"]) > 200:
            raise ValueError("Keep the lot's reference to 200 characters.")
        if any(ord(c) < 32 for c in fields["reference"]):
            raise ValueError("The lot's reference has a control character; type it again.")
        plan, aql = _plan_from_fields(fields)
    except ValueError as exc:
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=422)
        # Shown above the lot form (not the inspect form's alert), the typed values kept.
        context.update(lot_values=fields, lot_error=str(exc))
        return render(request, "golden.html", visitor, 422, error=None,
                      values={"unit_label": "", "lot_id": ""}, **context)

    def store() -> str:
        with service.sessions() as session:
            golden = golden_or_404(session, visitor, golden_id)
            lot = Lot(tenant_id=visitor.tenant_id, golden_seq=golden.seq,
                      reference=fields["reference"] or None, lot_size=plan.lot_size,
                      level=plan.level, aql=aql, plan=plan.as_dict())
            session.add(lot)
            session.commit()
            return lot.id

    lot_id = await run_in_threadpool(store)
    return done(request, f"/lots/{lot_id}")


@router.get("/lots/{lot_id}")
def lot_page(lot_id: str, request: Request, service: ServiceDep,
             visitor: VisitorDep) -> HTMLResponse:
    with service.sessions() as session:
        try:
            lot, golden = lot_for_tenant(session, visitor.tenant_id, lot_id)
        except NotFound:
            raise WebError(404, "Lot not found. It may belong to another account, or the link "
                           "is wrong.") from None
        public = lot_public(session, lot, golden)
        inspections = list(session.scalars(
            sa.select(Inspection).where(Inspection.lot_id == lot.id,
                                        Inspection.tenant_id == visitor.tenant_id)
            .order_by(Inspection.seq.desc()).limit(200)))
    return render(request, "lot.html", visitor, lot=public, golden=golden,
                  inspections=inspections, classes=DEFECT_CLASSES, nav="goldens")
