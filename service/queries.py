"""Tenant-scoped lookups that the API and the web pages share.

Every lookup takes the tenant's id: another tenant's golden, inspection or lot is not found,
exactly like a missing one (:class:`service.errors.NotFound`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.aql import LotPlan
from service.db import Golden, Inspection, Lot
from service.errors import BadInput, Conflict, NotFound
from service.lots import InspectedUnit, LotStatus, looks_like_lot_id, lot_status, report_class
from service.schemas import LotPublic, LotSummary

__all__ = [
    "GOLDEN_NOT_FOUND",
    "INSPECTION_NOT_FOUND",
    "LOT_NOT_FOUND",
    "check_lot",
    "golden_for_tenant",
    "inspection_for_tenant",
    "lot_for_tenant",
    "lot_public",
    "lot_summary",
    "status_of",
]

GOLDEN_NOT_FOUND = "Golden sample not found"
INSPECTION_NOT_FOUND = "Inspection not found"
LOT_NOT_FOUND = "Lot not found"


def golden_for_tenant(session: Session, tenant_id: str, golden_id: str) -> Golden:
    """The tenant's golden; another tenant's id answers exactly like a missing one."""
    golden = session.scalar(sa.select(Golden).where(Golden.id == golden_id,
                                                    Golden.tenant_id == tenant_id))
    if golden is None:
        raise NotFound(GOLDEN_NOT_FOUND)
    return golden


def inspection_for_tenant(session: Session, tenant_id: str, inspection_id: str
                          ) -> tuple[Inspection, Golden]:
    """The tenant's inspection and the golden it was compared with."""
    return _with_golden(session, Inspection, inspection_id, tenant_id, INSPECTION_NOT_FOUND)


def lot_for_tenant(session: Session, tenant_id: str, lot_id: str) -> tuple[Lot, Golden]:
    """The tenant's lot and the golden its units are inspected against."""
    return _with_golden(session, Lot, lot_id, tenant_id, LOT_NOT_FOUND)


def _with_golden(session: Session, table: type[Inspection] | type[Lot], row_id: str,
                 tenant_id: str, not_found: str) -> tuple:
    row = session.execute(
        sa.select(table, Golden).join(Golden, Golden.seq == table.golden_seq)
        .where(table.id == row_id, table.tenant_id == tenant_id)).first()
    if row is None:
        raise NotFound(not_found)
    return row[0], row[1]


def status_of(session: Session, lot: Lot) -> LotStatus:
    """Progress, defective units per class and the verdict of `lot` (service.lots' rules)."""
    # The report's class is stored in the report (schema 1.2); reading the JSON column whole
    # is what both databases do portably.
    rows = session.execute(
        sa.select(Inspection.seq, Inspection.id, Inspection.unit_label, Inspection.verdict,
                  Inspection.report)
        .where(Inspection.lot_id == lot.id, Inspection.tenant_id == lot.tenant_id))
    units = [InspectedUnit(seq, inspection_id, label, verdict, report_class(report))
             for seq, inspection_id, label, verdict, report in rows]
    return lot_status(LotPlan.from_dict(lot.plan), units)


def lot_public(session: Session, lot: Lot, golden: Golden) -> LotPublic:
    status = status_of(session, lot)
    return LotPublic(
        id=lot.id, golden_id=golden.id, reference=lot.reference, lot_size=lot.lot_size,
        level=lot.level, code_letter=lot.plan["code_letter"], plans=lot.plan["plans"],
        inspected=status.inspected, to_inspect=status.to_inspect,
        awaiting_rephotograph=status.awaiting_rephotograph, defective=status.defective,
        verdict=status.verdict, reasons=status.reasons, created_at=lot.created_at)


def lot_summary(session: Session, inspection: Inspection) -> LotSummary | None:
    """The lot an inspection joined, in short; None unless its lot_id names a lot."""
    if not inspection.lot_id or not looks_like_lot_id(inspection.lot_id):
        return None
    lot = session.scalar(sa.select(Lot).where(Lot.id == inspection.lot_id,
                                              Lot.tenant_id == inspection.tenant_id))
    if lot is None:
        return None
    status = status_of(session, lot)
    return LotSummary(id=lot.id, reference=lot.reference, verdict=status.verdict,
                      inspected=status.inspected, to_inspect=status.to_inspect,
                      unit_class=report_class(inspection.report))


def check_lot(service, tenant_id: str, golden: Golden, lot_id: str) -> None:
    """Refuse, before any work, a unit for a lot that is missing, of another golden or judged.

    Only a UUID names a lot; any other lot_id text is a free label.
    `service` is the :class:`service.operations.Service`.
    """
    if not looks_like_lot_id(lot_id):
        return
    with service.sessions() as session:
        try:
            lot, lot_golden = lot_for_tenant(session, tenant_id, lot_id)
        except NotFound:
            raise NotFound(f"lot {lot_id} not found: open it with POST /v1/lots, or send a "
                           "lot_id that is not a UUID to use it as a plain label") from None
        if lot_golden.seq != golden.seq:
            raise BadInput(f"lot {lot_id} is inspected against golden {lot_golden.id} (SKU "
                           f"{lot_golden.sku}), not {golden.id}; inspect its units against "
                           "that golden")
        status = status_of(session, lot)
    if status.complete:
        raise Conflict(f"lot {lot_id} is already judged ({status.verdict}, "
                       f"{status.inspected} of {status.to_inspect} units counted); open a new "
                       "lot to inspect more units")
