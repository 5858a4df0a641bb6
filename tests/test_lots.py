"""Lot verdicts by AQL sampling (service.lots) and unit defect classes (vision.severity).

Simulated lots have a known truth: which units are defective and in which class.
"""

from __future__ import annotations

import random

import pytest

from service.aql import lot_plan
from service.lots import InspectedUnit, lot_status
from vision.report import (
    CalibrationReport,
    CalibrationSide,
    ColorReport,
    DefectRegion,
    DefectsReport,
    DimensionsReport,
    RegistrationReport,
    Report,
    StructureReport,
)
from vision.severity import failure_classes, unit_defect_class
from vision.spec import SpecError, parse_spec


def _units(classes: list[str | None], verdicts: list[str] | None = None,
           labels: list[str | None] | None = None) -> list[InspectedUnit]:
    verdicts = verdicts or ["fail" if c else "pass" for c in classes]
    labels = labels or [f"unit {i}" for i in range(len(classes))]
    return [InspectedUnit(seq=i, inspection_id=f"i{i}", unit_label=label, verdict=verdict,
                          defect_class=cls)
            for i, (cls, verdict, label) in enumerate(zip(classes, verdicts, labels,
                                                          strict=True))]


def _verdicts_as_units_arrive(plan, units):
    return [lot_status(plan, units[:k]).verdict for k in range(1, len(units) + 1)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_125_units_with_8_major_defective_are_rejected_at_the_8th(seed):
    plan = lot_plan(3000)  # K: n 125, major AQL 2.5 -> Ac 7 / Re 8
    rng = random.Random(seed)
    positions = sorted(rng.sample(range(125), 8))
    classes = [("major" if i in positions else None) for i in range(125)]
    verdicts = _verdicts_as_units_arrive(plan, _units(classes))
    eighth = positions[-1]
    assert verdicts[:eighth] == ["pending"] * eighth
    assert verdicts[eighth] == "reject"
    status = lot_status(plan, _units(classes[:eighth + 1]))
    assert status.defective["major"] == 8 and status.inspected == eighth + 1
    assert "Re 8" in status.reasons[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_125_units_with_7_major_defective_are_accepted_after_the_125th(seed):
    plan = lot_plan(3000)
    rng = random.Random(seed)
    positions = set(rng.sample(range(125), 7))
    classes = [("major" if i in positions else None) for i in range(125)]
    verdicts = _verdicts_as_units_arrive(plan, _units(classes))
    assert verdicts == ["pending"] * 124 + ["accept"]
    status = lot_status(plan, _units(classes))
    assert status.defective == {"critical": 0, "major": 7, "minor": 0}
    assert (status.inspected, status.to_inspect) == (125, 125)


def test_one_critical_unit_rejects_at_once():
    plan = lot_plan(3000)  # critical AQL 0: Ac 0 / Re 1
    status = lot_status(plan, _units([None, None, "critical"]))
    assert status.verdict == "reject" and status.defective["critical"] == 1


def test_a_defective_unit_counts_once_in_its_most_serious_class():
    # The unit's class is already its most serious failure (vision.severity); the lot must not
    # count it again in a lesser class: 10 minor units at minor Ac 10 do not reject.
    plan = lot_plan(3000)
    classes = ["minor"] * 10 + ["major"] * 7 + [None] * 108
    status = lot_status(plan, _units(classes))
    assert status.defective == {"critical": 0, "major": 7, "minor": 10}
    assert status.verdict == "accept"
    assert lot_status(plan, _units(classes[:124] + ["minor"])).verdict == "reject"


def test_inconclusive_units_do_not_count_until_photographed_again():
    plan = lot_plan(5, aql={"major": 6.5, "minor": 6.5})  # A: n 2 per class
    units = _units([None, None, None], verdicts=["pass", "inconclusive", "inconclusive"],
                   labels=["a", "b", "b"])
    status = lot_status(plan, units)
    assert (status.inspected, status.awaiting_rephotograph, status.verdict) == (1, 1, "pending")
    assert any("photograph again" in reason for reason in status.reasons)
    # Unit b photographed a third time, conclusively: it counts, once.
    units.append(InspectedUnit(seq=3, inspection_id="i3", unit_label="b", verdict="pass",
                               defect_class=None))
    status = lot_status(plan, units)
    assert (status.inspected, status.awaiting_rephotograph, status.verdict) == (2, 0, "accept")


def test_a_re_inspected_unit_counts_once_with_its_latest_result_in_its_first_place():
    plan = lot_plan(5, aql={"major": 6.5, "minor": 6.5})
    units = _units(["major", None, None], labels=["a", "b", "a"])
    status = lot_status(plan, units)
    assert status.inspected == 2 and status.defective["major"] == 0
    assert status.verdict == "accept"


def test_units_beyond_the_sample_do_not_change_the_verdict():
    plan = lot_plan(5, aql={"major": 6.5, "minor": 6.5})  # n 2 for every class
    status = lot_status(plan, _units([None, None, "major"]))
    assert status.verdict == "accept" and status.inspected == 2


# --------------------------------------------------------------------------------------------
# Unit classes from the report and the spec's severity rules


def _report(spec: dict | None = None, *, delta_e: float = 0.5, ssim: float = 0.9,
            regions: tuple[tuple[str, float | None], ...] = (), change_mm: float | None = None,
            verdict: str = "fail") -> Report:
    side = CalibrationSide(applied=False)
    return Report(
        verdict=verdict, score=10.0, reasons=[], golden_size=(100, 100), unit_size=(100, 100),
        roi=(0, 0, 100, 100),
        registration=RegistrationReport(ok=True, inliers=50, method="features", coverage=1.0),
        calibration=CalibrationReport(golden=side, unit=side),
        color=ColorReport(delta_e00=delta_e, delta_L=0, delta_C=0, delta_H=0, delta_e_cmc=0,
                          golden_lab=(50, 0, 0), unit_lab=(50, 0, 0), white="D65"),
        structure=StructureReport(ssim=ssim),
        defects=DefectsReport(score=0.9 if regions else 0.0, source="test", regions=[
            DefectRegion(bbox=(1, 1, 5, 5), area_px=25, score=0.9, severity=severity,
                         area_mm2=area_mm2, kind="structure")
            for severity, area_mm2 in regions]),
        dimensions=None if change_mm is None else DimensionsReport(
            scale_ratio=1.0, delta_width_mm=change_mm, delta_height_mm=0.0,
            golden_width_mm=100, golden_height_mm=100, unit_width_mm=100 + change_mm,
            unit_height_mm=100),
        spec=parse_spec(spec), timings_ms={}, versions={})


def test_default_rules_make_every_failure_major_and_keep_region_severity():
    assert unit_defect_class(_report(delta_e=3.0)) == "major"
    assert unit_defect_class(_report(ssim=0.2)) == "major"
    assert unit_defect_class(_report(regions=(("minor", None),))) == "minor"
    assert unit_defect_class(_report(regions=(("minor", None), ("critical", None)))) == \
        "critical"
    # The most serious failure wins: a minor region and a (major) colour drift.
    assert unit_defect_class(_report(delta_e=3.0, regions=(("minor", None),))) == "major"
    assert unit_defect_class(_report(verdict="pass")) is None
    assert unit_defect_class(_report(verdict="inconclusive", delta_e=9.0)) is None


def test_spec_limits_grade_colour_size_and_defect_area():
    spec = {"tolerances": {"delta_e00": 2.0, "dimension_mm": 1.0},
            "chart": {"width_mm": 279.4},
            "severity": {"delta_e00": {"major": 4.0, "critical": 8.0},
                         "dimension_mm": {"major": 3.0, "critical": None},
                         "structure": "minor",
                         "defect_area_mm2": {"major": 4.0, "critical": 50.0}}}
    grade = {de: unit_defect_class(_report(spec, delta_e=de)) for de in (2.5, 4.0, 7.9, 8.0)}
    assert grade == {2.5: "minor", 4.0: "major", 7.9: "major", 8.0: "critical"}
    assert unit_defect_class(_report(spec, change_mm=2.0)) == "minor"
    assert unit_defect_class(_report(spec, change_mm=-3.5)) == "major"
    assert unit_defect_class(_report(spec, ssim=0.1)) == "minor"
    assert unit_defect_class(_report(spec, regions=(("minor", 60.0),))) == "critical"
    assert unit_defect_class(_report(spec, regions=(("critical", 1.0),))) == "minor"
    # Without an area in mm^2 the region keeps its own severity.
    assert unit_defect_class(_report(spec, regions=(("major", None),))) == "major"
    assert set(failure_classes(_report(spec, delta_e=9, ssim=0.1, change_mm=5))) == \
        {"colour", "structure", "dimensions"}


@pytest.mark.parametrize(("spec", "message"), [
    ({"severity": {"delta_e00": {"major": 5, "critical": 3}}}, "must not be below"),
    ({"severity": {"structure": "severe"}}, "severity.structure"),
    ({"severity": {"defect_area_mm2": {"major": 1}}}, "needs chart.width_mm"),
    ({"severity": {"delta_e00": {"major": -1}}}, "greater than or equal to 0"),
    ({"severity": {"colour": {}}}, "Extra inputs"),
])
def test_bad_severity_rules_are_refused_naming_the_field(spec, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)
