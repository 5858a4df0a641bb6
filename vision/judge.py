"""The judging stage: the measurements against the spec's tolerances -> verdict, score and
the reasons a person reads.

The score's definition lives in the report schema (:class:`vision.report.Report`); a unit's
defect class for AQL lots in :mod:`vision.severity`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from vision.report import ColorReport, DefectsReport, DimensionsReport, StructureReport
from vision.spec import Spec

__all__ = ["Judgement", "colour_words", "judge"]


class Judgement(NamedTuple):
    verdict: Literal["pass", "fail", "inconclusive"]
    score: float
    reasons: list[str]


def colour_words(report: ColorReport) -> str:
    """'darker (dL* -2.9) and less saturated (dC* -1.2)': the components that matter, in words."""
    parts = []
    components = [
        (report.delta_L, "dL*", "lighter", "darker"),
        (report.delta_C, "dC*", "more saturated", "less saturated"),
    ]
    largest = max(abs(report.delta_L), abs(report.delta_C), abs(report.delta_H))
    for value, symbol, up, down in components:
        if abs(value) >= 0.5 * largest:
            parts.append(f"{up if value > 0 else down} ({symbol} {value:+.1f})")
    if abs(report.delta_H) >= 0.5 * largest:
        parts.append(f"shifted in hue (dH* {report.delta_H:+.1f})")
    return " and ".join(parts)


def judge(colour: ColorReport, structure: StructureReport, defects: DefectsReport,
          dimensions: DimensionsReport | None, spec: Spec) -> Judgement:
    """Verdict, score and reasons. The score's definition lives in the Report schema.

    A part that could not be measured (colour without a card in one photo, dimensions without
    cards) makes the verdict inconclusive unless another part already fails.
    """
    tol = spec.tolerances
    ratios = {
        "structure": (1.0 - structure.ssim) / max(1e-6, 1.0 - tol.ssim_min),
        "defects": len(defects.regions) / max(tol.max_defects, 0.5),
    }
    failures, passes, unmeasured = [], [], []
    calibrated = " (calibrated with the colour card)" if colour.calibrated else ""
    if colour.delta_e00 is None:
        unmeasured.append(colour.note or "Colour could not be measured.")
    else:
        ratios["colour"] = colour.delta_e00 / tol.delta_e00
        if ratios["colour"] > 1:
            failures.append(f"Colour drift Delta-E00 {colour.delta_e00:.1f} exceeds "
                            f"{tol.delta_e00:.1f}{calibrated}: the unit is "
                            f"{colour_words(colour)}.")
        else:
            passes.append(f"Colour within tolerance{calibrated}: Delta-E00 "
                          f"{colour.delta_e00:.1f} <= {tol.delta_e00:.1f}.")
        if colour.note:
            passes.append(colour.note)
    if tol.dimension_mm is not None:
        if dimensions is None:
            unmeasured.append("Dimensions could not be measured: the spec sets "
                              "tolerances.dimension_mm, which needs the colour card in both "
                              "photos.")
        else:
            change = max(abs(dimensions.delta_width_mm), abs(dimensions.delta_height_mm))
            ratios["dimensions"] = change / tol.dimension_mm
            words = (f"width {dimensions.delta_width_mm:+.1f} mm, height "
                     f"{dimensions.delta_height_mm:+.1f} mm (scale {dimensions.scale_ratio:.3f})")
            if change > tol.dimension_mm:
                failures.append(f"Size differs by more than {tol.dimension_mm:g} mm: {words}.")
            else:
                passes.append(f"Size within {tol.dimension_mm:g} mm: {words}.")
    if ratios["structure"] > 1:
        failures.append(f"Structure differs: SSIM {structure.ssim:.2f} is below the floor "
                        f"{tol.ssim_min:.2f}.")
    else:
        passes.append(f"Structure matches: SSIM {structure.ssim:.2f} >= {tol.ssim_min:.2f}.")
    n = len(defects.regions)
    if n > tol.max_defects:
        biggest = defects.regions[0]
        x, y, w, h = biggest.bbox
        failures.append(
            f"{n} defect region{'s' if n != 1 else ''} found where {tol.max_defects} "
            f"{'is' if tol.max_defects == 1 else 'are'} allowed; the largest "
            f"({biggest.severity}, {biggest.kind}, {biggest.area_px} px) is at x={x}, y={y}, "
            f"{w}x{h} px."
        )
    elif n:
        passes.append(f"{n} small defect region(s), within the {tol.max_defects} allowed.")
    else:
        passes.append("No defect regions found.")
    if failures:
        verdict = "fail"
    elif unmeasured:
        return Judgement("inconclusive", 0.0, unmeasured + passes)
    else:
        verdict = "pass"
    score = round(100.0 * max(0.0, 1.0 - max(ratios.values()) / 2.0), 2)
    return Judgement(verdict, score, failures + unmeasured + passes)
