"""What the report page derives from a stored report: swatch colours, colour drift in words,
the zoomed crops' geometry. Pure functions, no server."""

from __future__ import annotations

import numpy as np
import pytest

from service.web.present import colour_panel, defect_cards, lab_to_hex, percent_box


@pytest.mark.parametrize(("lab", "hex_"), [
    ((100.0, 0.0, 0.0), "#ffffff"),
    ((0.0, 0.0, 0.0), "#000000"),
    # sRGB primaries in CIELAB D65 (IEC 61966-2-1 via CIE 15:2004), e.g. Lindbloom's tables.
    ((53.2408, 80.0925, 67.2032), "#ff0000"),
    ((87.7347, -86.1827, 83.1793), "#00ff00"),
    ((32.2970, 79.1875, -107.8602), "#0000ff"),
    ((150.0, 0.0, 0.0), "#ffffff"),  # out of gamut: clipped, not wrapped
])
def test_lab_to_hex_known_colours(lab, hex_):
    assert lab_to_hex(lab) == hex_


def _report(delta_L, delta_C, delta_H, golden_lab=(50.0, 40.0, 30.0), delta_e00=2.5):
    return {
        "color": {"delta_e00": delta_e00, "delta_L": delta_L, "delta_C": delta_C,
                  "delta_H": delta_H, "golden_lab": golden_lab, "unit_lab": (48.0, 39.0, 30.0),
                  "calibrated": True, "note": None},
        "spec": {"tolerances": {"delta_e00": 2.0}},
        "calibration": {"golden": {"chart_found": True, "applied": True,
                                   "residual_delta_e00_mean": 0.5,
                                   "residual_delta_e00_max": 1.1},
                        "unit": {"chart_found": False, "applied": False}},
    }


def test_colour_drift_in_words():
    panel = colour_panel(_report(-2.9, -1.2, 0.1))
    # dC* -1.2 is visible but less than half of dL*: the row says so, the summary leaves it.
    assert panel["summary"] == "The unit is darker (dL* -2.90)."
    assert [c["words"] for c in panel["components"]] == [
        "darker", "slightly less saturated", "same hue"]
    assert colour_panel(_report(-2.9, -1.6, 0.1))["summary"] \
        == "The unit is darker (dL* -2.90) and less saturated (dC* -1.60)."
    assert panel["within"] is False and panel["tolerance"] == 2.0
    assert panel["sides"][0]["residual_mean"] == 0.5 and panel["sides"][1]["found"] is False
    # Golden hue 36.9 degrees (a red-orange): a positive dH* turns it towards yellow.
    assert colour_panel(_report(0.1, 0.2, 2.0))["components"][2]["words"] \
        == "shifted in hue towards yellow"
    assert colour_panel(_report(0.1, 0.2, -2.0))["components"][2]["words"] \
        == "shifted in hue towards blue"
    assert colour_panel(_report(0.1, 0.2, 0.3))["summary"] == "No visible colour difference."
    unmeasured = _report(None, None, None, golden_lab=None, delta_e00=None)
    unmeasured["color"]["unit_lab"] = None
    panel = colour_panel(unmeasured)
    assert panel["measured"] is False and panel["summary"] is None


@pytest.mark.parametrize("deltas", [(-2.9, -1.2, 0.1), (4.3, 0.2, -0.4), (0.3, 15.9, 2.0),
                                    (-1.0, 1.1, -0.9), (0.2, 0.1, 0.3)])
def test_the_page_words_the_drift_as_the_verdict_does(deltas):
    """One wording of drift: the report page's summary is the failing verdict's phrase."""
    from vision.judge import judge
    from vision.report import ColorReport, DefectsReport, StructureReport
    from vision.spec import Spec

    report = _report(*deltas, delta_e00=9.0)
    colour = ColorReport(**{k: report["color"][k] for k in (
        "delta_e00", "delta_L", "delta_C", "delta_H", "golden_lab", "unit_lab")},
        delta_e_cmc=9.0)
    reasons = judge(colour, StructureReport(ssim=1.0),
                    DefectsReport(score=0.0, source="ssim+delta_e", regions=[]), None,
                    Spec()).reasons
    phrase = reasons[0].split(": the unit is ", 1)[1].rstrip(".")
    summary = colour_panel(report)["summary"]
    if summary == "No visible colour difference.":
        assert phrase.startswith("different in colour, though")
    else:
        assert summary == f"The unit is {phrase}."


@pytest.mark.parametrize("bbox", [(336, 522, 20, 20), (0, 0, 30, 10), (980, 700, 20, 50),
                                  (100, 100, 600, 500)])
def test_crop_shows_the_defect_box_at_the_stated_zoom(bbox):
    size = (1000, 750)
    report = {"golden_size": size, "calibration": {"golden": {"px_per_mm": 4.0}},
              "defects": {"regions": [{"bbox": bbox, "area_px": 300, "area_mm2": 18.75,
                                       "score": 0.9, "severity": "major",
                                       "kind": "structure"}]}}
    card = defect_cards(report)[0]
    crop = card["crop"]
    # Undo the CSS (box width W: picture width W * width_pct / 100, offsets left/top);
    # within 0.1 px, the rounding of the percentages.
    crop_w = size[0] * 100 / crop.width_pct
    crop_h = crop_w / crop.aspect
    x0, y0 = -crop.left_pct / 100 * crop_w, -crop.top_pct / 100 * crop_h
    assert 0 <= x0 + 0.1 and x0 + crop_w <= size[0] + 0.1
    assert 0 <= y0 + 0.1 and y0 + crop_h <= size[1] + 0.1
    x, y, w, h = bbox
    assert x0 - 0.1 <= x and x + w <= x0 + crop_w + 0.1  # the defect is inside the crop
    assert y0 - 0.1 <= y and y + h <= y0 + crop_h + 0.1
    bx, by, bw, bh = crop.box
    assert np.allclose([x0 + bx / 100 * crop_w, y0 + by / 100 * crop_h], [x, y], atol=0.1)
    assert np.isclose(bw / 100 * crop_w, w, atol=0.1)
    assert crop.zoom == round(size[0] / crop_w, 1)
    assert card["extent"] == f"{w / 4:.1f} x {h / 4:.1f} mm" and card["area"] == "18.8 mm²"


def test_percent_box():
    assert percent_box((100, 75, 500, 375), (1000, 750)) == (10.0, 10.0, 50.0, 50.0)
    assert percent_box(None, (1000, 750)) is None


def test_not_measured_names_what_an_inconclusive_report_lacks():
    from service.web.present import not_measured

    compared = dict(_report(None, None, None, delta_e00=None), roi=(10, 10, 50, 50),
                    structure={"ssim": 0.98}, dimensions=None)
    assert not_measured(compared) == ["colour"]
    compared["spec"]["tolerances"]["dimension_mm"] = 1.0
    assert not_measured(compared) == ["colour", "size"]
    assert not_measured(dict(compared, roi=None)) == ["alignment", "colour", "structure",
                                                      "defects"]


@pytest.mark.parametrize(("value", "quantity", "signed", "text"), [
    (1.449, "delta_e", False, "1.45"), (-0.004, "mm", True, "0.00"), (-0.04, "mm", True, "-0.04"),
    (0.3, "delta_e", True, "+0.30"), (-0.0, "ssim", False, "0.000"), (91.5, "score", False, "92"),
])
def test_numbers_print_one_way_and_never_as_negative_zero(value, quantity, signed, text):
    from vision.numbers import format_number

    assert format_number(value, quantity, signed=signed) == text
    with pytest.raises(ValueError, match="quantity is invalid"):
        format_number(1.0, "furlongs")


@pytest.mark.parametrize(("without", "verdict"), [(1.2, "inconclusive"), (2.6, "fail"),
                                                  (None, "fail")])
def test_a_drift_that_a_reflection_explains_is_inconclusive_not_a_fail(without, verdict):
    """Delta-E00 5.3 beyond the tolerance 2.0: a fail, unless the grey light a reflection adds
    over the product explains it (what is left without it is within the tolerance); then the
    colour cannot be measured, and the reason says so and why."""
    from vision.judge import judge
    from vision.report import ColorReport, DefectsReport, StructureReport
    from vision.spec import Spec

    colour = ColorReport(delta_e00=5.3, delta_L=-5.2, delta_C=0.8, delta_H=0.1,
                         delta_e_cmc=5.0, golden_lab=(50.0, -20.0, 15.0),
                         unit_lab=(44.8, -20.5, 15.6), reflection_share=0.82,
                         delta_e00_without_reflection=without)
    judgement = judge(colour, StructureReport(ssim=1.0),
                      DefectsReport(score=0.0, source="ssim+delta_e", regions=[]), None, Spec())
    assert judgement.verdict == verdict
    first = judgement.reasons[0]
    if verdict == "inconclusive":
        assert first.startswith("Colour cannot be measured under a reflection")
        assert "82% of the product" in first and "darker (dL* -5.20)" in first
    else:
        assert first.startswith("Colour drift Delta-E00 5.30 exceeds 2.00")
