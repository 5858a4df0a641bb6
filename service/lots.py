"""Lots judged by AQL sampling: which units count, how many are defective, accept or reject.

The rules, from ISO 2859-1 (single sampling, normal inspection) and the reference's notes:

- Each defect class has its own plan (:mod:`service.aql`); the lot draws the largest sample of
  them and judges each class on the first ``sample_size`` units of it, in inspection order.
- A defective unit counts once, in the class of its most serious failure
  (:func:`vision.severity.unit_defect_class`, under the golden's spec).
- A unit is a ``unit_label``; an inspection without a label is a unit of its own. An
  ``inconclusive`` inspection does not count: the unit waits to be photographed again. When a
  unit was inspected more than once, its latest conclusive inspection counts, in the place of its
  first one (re-photographing a unit does not move it in the sample).
- ``reject`` as soon as any class reaches its Re within its sample, even before the sample is
  complete; ``accept`` once every class's sample is complete with at most Ac defective units;
  otherwise ``pending``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Literal

from service.aql import DEFECT_CLASSES, LotPlan

__all__ = ["InspectedUnit", "LotStatus", "lot_status", "looks_like_lot_id", "report_class"]

LotVerdict = Literal["accept", "reject", "pending"]


@dataclasses.dataclass(frozen=True)
class InspectedUnit:
    """One inspection of a lot, as the lot needs it."""

    seq: int  # creation order
    inspection_id: str
    unit_label: str | None
    verdict: str  # pass, fail or inconclusive
    defect_class: str | None  # critical, major or minor for a failed unit


@dataclasses.dataclass(frozen=True)
class LotStatus:
    verdict: LotVerdict
    inspected: int  # units with a conclusive result that count towards the sample
    to_inspect: int
    awaiting_rephotograph: int  # units whose every inspection so far was inconclusive
    defective: dict[str, int]  # per class, among the counted units
    reasons: list[str]

    @property
    def complete(self) -> bool:
        return self.verdict != "pending"


def report_class(report: dict) -> str | None:
    """The defect class of a stored report (schema 1.2 stores it; older ones are derived)."""
    if report.get("verdict") != "fail":
        return None
    if report.get("defect_class"):
        return report["defect_class"]
    from vision.report import Report
    from vision.severity import unit_defect_class

    return unit_defect_class(Report.model_validate(report))


def looks_like_lot_id(text: str) -> bool:
    """True for a UUID, the form of every lot id; other ``lot_id`` values are free labels."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def lot_status(plan: LotPlan, inspections: Iterable[InspectedUnit]) -> LotStatus:
    """Progress, defective units per class and the verdict of a lot (rules in the module doc)."""
    first_seq: dict[str, int] = {}  # unit -> seq of its first conclusive inspection
    latest: dict[str, InspectedUnit] = {}  # unit -> its latest conclusive inspection
    seen: set[str] = set()
    for inspection in sorted(inspections, key=lambda i: i.seq):
        unit = (f"label:{inspection.unit_label}" if inspection.unit_label
                else f"inspection:{inspection.inspection_id}")
        seen.add(unit)
        if inspection.verdict == "inconclusive":
            continue
        first_seq.setdefault(unit, inspection.seq)
        latest[unit] = inspection
    to_inspect = plan.units_to_inspect
    ordered = sorted(first_seq, key=first_seq.__getitem__)
    counted = [latest[unit].defect_class for unit in ordered[:to_inspect]]
    defective = {name: counted.count(name) for name in DEFECT_CLASSES}

    reasons: list[str] = []
    rejected = False
    for name in DEFECT_CLASSES:
        class_plan = plan.plans[name]
        sample = counted[:class_plan.sample_size]
        found = sample.count(name)
        if found >= class_plan.re:
            rejected = True
            reasons.append(
                f"{found} {name} defective unit{'s' if found != 1 else ''} in the first "
                f"{len(sample)} inspected reach{'es' if found == 1 else ''} the rejection "
                f"number Re {class_plan.re} (AQL {class_plan.aql:g}, sample of "
                f"{class_plan.sample_size}).")
    complete = all(len(counted) >= plan.plans[n].sample_size for n in DEFECT_CLASSES)
    if rejected:
        verdict: LotVerdict = "reject"
    elif complete:
        verdict = "accept"
        reasons.append(
            "Every sample is complete and within its acceptance number: " + "; ".join(
                f"{name} {defective[name]} <= Ac {plan.plans[name].ac}"
                for name in DEFECT_CLASSES) + ".")
    else:
        verdict = "pending"
        reasons.append(f"{len(counted)} of {to_inspect} units inspected; no class has reached "
                       "its rejection number yet.")
    awaiting = len(seen) - len(first_seq)
    if awaiting:
        reasons.append(f"{awaiting} unit{'s' if awaiting != 1 else ''} inconclusive so far: "
                       "photograph again (with the colour card in frame) to count "
                       f"{'them' if awaiting != 1 else 'it'}.")
    return LotStatus(verdict=verdict, inspected=len(counted), to_inspect=to_inspect,
                     awaiting_rephotograph=awaiting, defective=defective, reasons=reasons)
