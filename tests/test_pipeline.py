"""End-to-end pipeline on synthetic pairs with known truth: verdicts, colour, defects, report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmarks.eval_verdicts import _true_delta_e, region_hits_mask
from tests.helpers.scenes import Camera, lab_shift, make_pair
from vision.pipeline import compare, prepare_golden
from vision.report import SCHEMA_VERSION, Report
from vision.spec import Spec, SpecError, parse_spec

HANDHELD = dataclasses.replace(Camera(), rotation_deg=25.0, tilt_deg=12.0, fill=0.72)


@pytest.mark.parametrize("unit_camera", [None, HANDHELD], ids=["same-pose", "hand-held"])
def test_identical_content_passes(unit_camera):
    pair = make_pair("chelsea", unit_camera=unit_camera, seed=2)
    report = compare(pair.golden, pair.unit, Spec(roi=pair.roi)).report
    assert report.verdict == "pass", report.reasons
    assert report.color.delta_e00 < 0.5
    assert report.structure.ssim > 0.9
    assert report.defects.regions == []
    assert report.score > 80


@pytest.mark.parametrize("kind", ["scratch", "stain", "hole", "foreign", "missing"])
def test_one_centimetre_defect_fails_and_is_located(kind):
    pair = make_pair("astronaut", unit_camera=HANDHELD, defects=((kind, 10.0),), seed=4)
    comparison = compare(pair.golden, pair.unit, Spec(roi=pair.roi))
    report = comparison.report
    assert report.verdict == "fail", report.reasons
    assert region_hits_mask(report.defects.regions, pair.golden_defect_mask)
    assert report.score < 50
    # The defect map is brighter on the defect than elsewhere in the ROI.
    x, y, w, h = pair.roi
    roi_map = comparison.defect_map[y:y + h, x:x + w].astype(float)
    on_defect = comparison.defect_map[pair.golden_defect_mask].astype(float)
    assert on_defect.mean() > roi_map.mean() + 40


def test_colour_drift_is_measured_against_the_truth_and_explained():
    delta = (-3.0, 0.0, 0.0)
    pair = make_pair("coffee", drift=lab_shift(*delta), seed=8)
    report = compare(pair.golden, pair.unit, Spec(roi=pair.roi)).report
    truth = _true_delta_e("coffee", delta, 8)
    assert report.color.delta_e00 == pytest.approx(truth, abs=0.35)
    assert report.color.delta_L < -2.0
    assert abs(report.color.delta_C) < 1.0
    assert report.verdict == "fail"
    assert any("darker" in reason and "Delta-E00" in reason for reason in report.reasons)
    # The tile map shows the drift everywhere on the product, not in one spot.
    tiles = [v for row in report.color.tiles.delta_e00 for v in row if v is not None]
    assert np.median(tiles) > 1.0


def test_tolerance_from_the_spec_decides():
    pair = make_pair("coffee", drift=lab_shift(-3.0, 0.0, 0.0), seed=8)
    loose = Spec(roi=pair.roi, tolerances={"delta_e00": 6.0, "max_defects": 50})
    report = compare(pair.golden, pair.unit, loose).report
    assert report.verdict == "pass", report.reasons
    assert 50 <= report.score < 100


def test_other_product_is_inconclusive_with_a_reason():
    pair = make_pair("astronaut", unit_camera=HANDHELD, unit_product="coffee", seed=1)
    comparison = compare(pair.golden, pair.unit)
    report = comparison.report
    assert report.verdict == "inconclusive"
    assert not report.registration.ok and report.registration.homography is None
    assert report.reasons[0].startswith("The unit could not be registered")
    assert comparison.aligned_unit is None
    assert comparison.defect_map.shape == pair.golden.shape[:2]


def test_report_shape_and_golden_reuse():
    pair = make_pair("rocket", unit_camera=HANDHELD, seed=9)
    golden = prepare_golden(pair.golden)
    first = compare(golden, pair.unit).report
    second = compare(golden, pair.unit).report
    assert first.schema_version == SCHEMA_VERSION
    assert "prepare_golden" not in first.timings_ms  # the golden's work was reused
    assert first.verdict == second.verdict and first.color == second.color
    H = np.array(first.registration.homography)
    assert H.shape == (3, 3) and H[2, 2] == pytest.approx(1.0)
    # Without an ROI the colour card is left out of the compared region.
    card = first.calibration.golden.card_corners
    assert card is not None
    x, y, w, h = first.roi
    assert Report.model_validate_json(first.model_dump_json()) == first
    assert set(first.timings_ms) >= {"register", "color", "structure", "defects"}
    assert {"sealcheck", "schema", "opencv"} <= set(first.versions)
    # The card's centre is excluded: a card-only tile has no colour value.
    cx, cy = np.mean(card, axis=0)
    tiles = first.color.tiles
    col = int((cx - tiles.origin[0]) // tiles.tile_px)
    row = int((cy - tiles.origin[1]) // tiles.tile_px)
    assert tiles.delta_e00[row][col] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "neither valid JSON nor valid YAML"),
        ('{"tolerances": {"delta_e": 2}}', "tolerances.delta_e"),
        ('{"tolerances": {"delta_e00": -1}}', "tolerances.delta_e00"),
        ('{"roi": [0, 0, -5, 10]}', "roi"),
        ("[1, 2]", "must be a mapping"),
    ],
)
def test_bad_spec_is_refused_with_the_field_named(text, message):
    with pytest.raises(SpecError, match=message.replace(".", r"\.")):
        parse_spec(text)


def test_spec_yaml_and_json_agree():
    yaml_spec = parse_spec("roi: [1, 2, 30, 40]\ntolerances:\n  delta_e00: 1.5\n")
    json_spec = parse_spec('{"roi": [1, 2, 30, 40], "tolerances": {"delta_e00": 1.5}}')
    assert yaml_spec == json_spec
    assert yaml_spec.tolerances.ssim_min == Spec().tolerances.ssim_min
