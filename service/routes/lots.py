"""Lots: a shipment judged by AQL sampling (ISO 2859-1) from the inspections that join it."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from service.aql import AqlError, lot_plan
from service.db import Golden, Lot
from service.deps import ServiceDep, SessionDep, TenantDep
from service.pagination import decode_cursor, encode_cursor
from service.queries import LOT_NOT_FOUND, golden_for_tenant, lot_for_tenant, lot_public
from service.replay import IdempotencyKeyHeader, answer_once, json_fingerprint
from service.schemas import LotCreate, LotList, LotPublic

router = APIRouter(prefix="/v1/lots", tags=["lots"])


@router.post("", status_code=201, response_model=LotPublic,
             summary="Open a lot: its AQL sampling plan per defect class",
             description="The plan follows ISO 2859-1 single sampling, normal inspection: the "
             "lot size and level give the code letter, each class's AQL its sample size and "
             "Ac/Re (arrows followed; every unit when the sample reaches the lot size). "
             "Inspections join the lot with `lot_id` set to the lot's id.",
             responses={404: {"description": "Golden sample not found"},
                        422: {"description": "An AQL or level the tables do not cover"}})
async def create_lot(body: LotCreate, request: Request, service: ServiceDep,
                     tenant_id: TenantDep, idempotency_key: IdempotencyKeyHeader = None
                     ) -> LotPublic:
    async def create() -> LotPublic:
        return await run_in_threadpool(_create_lot, service, tenant_id, body)

    return await answer_once(service, tenant_id, idempotency_key,
                             partial(json_fingerprint, request, body), create)


def _create_lot(service, tenant_id: str, body: LotCreate) -> LotPublic:
    with service.sessions() as session:
        golden = golden_for_tenant(session, tenant_id, body.golden_id)
        try:
            plan = lot_plan(body.lot_size, body.level, body.aql)
        except AqlError as exc:
            raise HTTPException(422, str(exc)) from None
        lot = Lot(tenant_id=tenant_id, golden_seq=golden.seq, reference=body.reference,
                  lot_size=body.lot_size, level=plan.level,
                  aql={name: p.aql for name, p in plan.plans.items()}, plan=plan.as_dict())
        session.add(lot)
        session.commit()
        return lot_public(session, lot, golden)


@router.get("", response_model=LotList, summary="List lots, newest first")
def list_lots(
    session: SessionDep, tenant_id: TenantDep,
    golden_id: Annotated[str | None, Query(description="Only lots of this golden.")] = None,
    verdict: Annotated[Literal["accept", "reject", "pending"] | None, Query(
        description="Only lots with this verdict (filtered after paging: a page may hold "
        "fewer items).")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> LotList:
    after = decode_cursor(cursor)
    query = (sa.select(Lot, Golden).join(Golden, Golden.seq == Lot.golden_seq)
             .where(Lot.tenant_id == tenant_id))
    if golden_id is not None:
        query = query.where(Lot.golden_seq == golden_for_tenant(session, tenant_id,
                                                                golden_id).seq)
    if after is not None:
        query = query.where(Lot.seq < after)
    rows = session.execute(query.order_by(Lot.seq.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [lot_public(session, lot, golden) for lot, golden in rows]
    if verdict is not None:
        items = [item for item in items if item.verdict == verdict]
    return LotList(items=items, next_cursor=encode_cursor(rows[-1][0].seq) if more else None)


@router.get("/{lot_id}", response_model=LotPublic,
            summary="Read a lot: progress, defective units per class and the verdict",
            responses={404: {"description": LOT_NOT_FOUND}})
def get_lot(lot_id: str, session: SessionDep, tenant_id: TenantDep) -> LotPublic:
    return lot_public(session, *lot_for_tenant(session, tenant_id, lot_id))
