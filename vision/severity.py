"""How serious a defect region and a failed unit are.

A region's severity comes from its area (:func:`area_severity`, the one rule the comparison and
the defect model's own regions share). A failed unit's defect class is the class it counts in
when a lot is judged by AQL:

ISO 2859-1 counts a defective unit once, in the class of its most serious defect (critical,
major, minor). Which measured values make which class is the spec's call
(:class:`vision.spec.SeverityRules`); this module applies it to a finished report, so that a lot
can classify reports stored before the rules changed in the same way as new ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vision.spec import DefectClass

if TYPE_CHECKING:
    from vision.report import Report

__all__ = [
    "CLASS_ORDER",
    "CRITICAL_AREA_FRACTION",
    "MAJOR_AREA_FRACTION",
    "area_severity",
    "failure_classes",
    "unit_defect_class",
]

CLASS_ORDER: tuple[DefectClass, ...] = ("critical", "major", "minor")  # most serious first

CRITICAL_AREA_FRACTION = 0.01
"""A region covering more than this fraction of the compared area is 'critical'."""
MAJOR_AREA_FRACTION = 0.001
"""... more than this, 'major'; smaller regions are 'minor'."""


def area_severity(fraction: float, *, critical: float = CRITICAL_AREA_FRACTION,
                  major: float = MAJOR_AREA_FRACTION) -> DefectClass:
    """A defect region's severity from the fraction of the compared area it covers."""
    return "critical" if fraction > critical else "major" if fraction > major else "minor"


def failure_classes(report: Report) -> dict[str, DefectClass]:
    """The class of each tolerance the report fails, by what failed.

    Keys: 'colour', 'dimensions', 'structure', 'defects'. The tests of each failure are the
    verdict's own (vision.judge.judge): a key is here exactly when that part failed.
    """
    spec, rules, tol = report.spec, report.spec.severity, report.spec.tolerances
    classes: dict[str, DefectClass] = {}
    if report.color.delta_e00 is not None and report.color.delta_e00 > tol.delta_e00:
        classes["colour"] = rules.delta_e00.classify(report.color.delta_e00)
    dims = report.dimensions
    if tol.dimension_mm is not None and dims is not None:
        change = max(abs(dims.delta_width_mm), abs(dims.delta_height_mm))
        if change > tol.dimension_mm:
            classes["dimensions"] = rules.dimension_mm.classify(change)
    if report.structure.ssim is not None and report.structure.ssim < tol.ssim_min:
        classes["structure"] = rules.structure
    regions = report.defects.regions
    if len(regions) > tol.max_defects:
        by_area = rules.defect_area_mm2

        def region_class(region) -> DefectClass:
            if by_area is not None and region.area_mm2 is not None and spec.chart.width_mm:
                return by_area.classify(region.area_mm2)
            return region.severity

        classes["defects"] = min((region_class(r) for r in regions), key=CLASS_ORDER.index)
    return classes


def unit_defect_class(report: Report) -> DefectClass | None:
    """The class a unit counts in: its most serious failure; None unless the verdict is fail."""
    if report.verdict != "fail":
        return None
    classes = failure_classes(report)
    if not classes:
        # A fail without a recognised failure would be a new kind of failure this module does
        # not know yet: count it as major rather than let a failed unit pass the lot.
        return "major"
    return min(classes.values(), key=CLASS_ORDER.index)
