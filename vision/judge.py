"""The judging stage: the measurements against the spec's tolerances -> verdict, score and
the reasons a person reads.

The score's definition lives in the report schema (:class:`vision.report.Report`); a unit's
defect class for AQL lots in :mod:`vision.severity`.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from vision.numbers import format_number
from vision.report import ColorReport, DefectsReport, DimensionsReport, StructureReport
from vision.spec import Spec

__all__ = [
    "NEGLIGIBLE_DELTA",
    "DriftComponent",
    "Judgement",
    "colour_words",
    "drift_components",
    "drift_in_words",
    "judge",
    "size_in_words",
]


class Judgement(NamedTuple):
    verdict: Literal["pass", "fail", "inconclusive"]
    score: float
    reasons: list[str]


NEGLIGIBLE_DELTA = 0.5
"""A component of a colour difference below this is "the same": roughly half of the
just-noticeable difference (about 1 Delta-E00), so a reader is not sent looking for nothing."""
_SLIGHT_DELTA = 1.5  # below this a visible component is "slight"

# Approximate CIELAB hue angles (degrees) of the colour names people use, in the direction a
# positive dH* turns (counter-clockwise in the a*b* plane).
_HUE_NAMES = ((40.0, "red"), (90.0, "yellow"), (160.0, "green"), (280.0, "blue"))
_MIN_NAMED_CHROMA = 3.0  # a near-grey golden has no hue to name


class DriftComponent(NamedTuple):
    """One component of a colour difference, in words."""

    symbol: str  # "dL*", "dC*" or "dH*"
    value: float | None  # None: not measured
    words: str  # "darker", "slightly less saturated", "shifted in hue towards yellow", ...
    telling: bool  # one of the components that describe the drift (see drift_components)


def drift_components(delta_L: float | None, delta_C: float | None, delta_H: float | None,
                     golden_lab: tuple[float, float, float] | None = None
                     ) -> tuple[DriftComponent, DriftComponent, DriftComponent]:
    """The colour difference unit - golden as lightness, saturation and hue, in words.

    This is the one wording of drift: the verdict's reasons (:func:`colour_words`) and the
    web report page both use it. A component is *telling* when it is visible (at least
    NEGLIGIBLE_DELTA) and at least half the largest one: the components a person should
    look for. `golden_lab` names the direction of a hue shift ("towards yellow").
    """
    values = [v for v in (delta_L, delta_C, delta_H) if v is not None]
    largest = max((abs(v) for v in values), default=0.0)

    def component(value, symbol, up, down, same) -> DriftComponent:
        if value is None:
            return DriftComponent(symbol, None, "not measured", False)
        if abs(value) < NEGLIGIBLE_DELTA:
            words = same
        else:
            words = ("slightly " if abs(value) < _SLIGHT_DELTA else "") + (
                up if value > 0 else down)
        telling = abs(value) >= max(NEGLIGIBLE_DELTA, 0.5 * largest)
        return DriftComponent(symbol, value, words, telling)

    hue = component(delta_H, "dH*", "shifted in hue", "shifted in hue", "same hue")
    if hue.value is not None and abs(hue.value) >= NEGLIGIBLE_DELTA and golden_lab is not None:
        _, a, b = golden_lab
        if math.hypot(a, b) >= _MIN_NAMED_CHROMA:
            angle = math.degrees(math.atan2(b, a)) % 360.0
            hue = hue._replace(words=f"{hue.words} towards {_towards(angle, hue.value)}")
    return (component(delta_L, "dL*", "lighter", "darker", "same lightness"),
            component(delta_C, "dC*", "more saturated", "less saturated", "same saturation"),
            hue)


def _towards(hue: float, turn: float) -> str:
    """The named hue a turn of the hue angle `hue` (degrees) by the sign of `turn` heads to."""
    if turn > 0:
        ahead = [name for angle, name in _HUE_NAMES if angle > hue + 5]
        return ahead[0] if ahead else _HUE_NAMES[0][1]
    behind = [name for angle, name in _HUE_NAMES if angle < hue - 5]
    return behind[-1] if behind else _HUE_NAMES[-1][1]


_SPREAD_DRIFT = (f"different in colour, though lightness, saturation and hue each differ by less "
                 f"than {NEGLIGIBLE_DELTA}")


def drift_in_words(components: tuple[DriftComponent, ...]) -> str:
    """'darker (dL* -2.9) and slightly less saturated (dC* -1.4)': the telling components of
    :func:`drift_components` in a phrase, or '' when none is visible."""
    return " and ".join(f"{c.words} ({c.symbol} {format_number(c.value, 'delta_e', signed=True)})"
                        for c in components if c.telling)


def colour_words(report: ColorReport) -> str:
    """The drift of a colour report in words (:func:`drift_in_words`)."""
    return drift_in_words(drift_components(report.delta_L, report.delta_C, report.delta_H,
                                           report.golden_lab))


def size_in_words(dimensions: DimensionsReport) -> str:
    """'width +0.42 mm, height 0.00 mm (scale 1.004)': the size change, as the reasons and
    the CLI's summary print it."""
    return (f"width {format_number(dimensions.delta_width_mm, 'mm', signed=True)} mm, height "
            f"{format_number(dimensions.delta_height_mm, 'mm', signed=True)} mm (scale "
            f"{format_number(dimensions.scale_ratio, 'scale')})")


def judge(colour: ColorReport, structure: StructureReport, defects: DefectsReport,
          dimensions: DimensionsReport | None, spec: Spec, *, colour_applies: bool = True
          ) -> Judgement:
    """Verdict, score and reasons. The score's definition lives in the Report schema.

    A part that could not be measured (colour without a card in one photo, dimensions without
    cards) makes the verdict inconclusive unless another part already fails. Colour that
    does not apply (`colour_applies` False: a greyscale photo has none to judge) is said, and
    the rest decides, unless the spec requires the colour card (then colour matters: the
    verdict is inconclusive).
    """
    tol = spec.tolerances
    ratios = {
        "structure": (1.0 - structure.ssim) / max(1e-6, 1.0 - tol.ssim_min),
        "defects": len(defects.regions) / max(tol.max_defects, 0.5),
    }
    failures, passes, unmeasured = [], [], []
    calibrated = " (calibrated with the colour card)" if colour.calibrated else ""
    if colour.delta_e00 is None:
        decides = colour_applies or spec.chart.required
        (unmeasured if decides else passes).append(colour.note or "Colour could not be measured.")
    else:
        ratios["colour"] = colour.delta_e00 / tol.delta_e00
        measured, limit = (format_number(v, "delta_e") for v in (colour.delta_e00,
                                                                  tol.delta_e00))
        uncertainty = colour.uncertainty_e00 or 0.0
        without = colour.delta_e00_without_reflection
        beyond = colour.delta_e00 - uncertainty > tol.delta_e00
        if beyond and without is not None and without <= tol.delta_e00:
            # Added white over the product is what a faded dye looks like too: say that the
            # colour cannot be read under it rather than claim a drift or pass it.
            unmeasured.append(
                f"Colour cannot be measured under a reflection: Delta-E00 {measured} exceeds "
                f"{limit}, but grey light added over "
                f"{colour.reflection_share or 0.0:.0%} of the "
                f"product (a lamp's reflection or a glossy sheen) makes such a difference (the "
                f"unit is {colour_words(colour) or _SPREAD_DRIFT}); without that light it is "
                f"{format_number(without, 'delta_e')}. Photograph both again without the "
                "reflection (move the lamp or the camera, or diffuse the light) to measure "
                "the colour.")
        elif beyond:
            failures.append(f"Colour drift Delta-E00 {measured} exceeds {limit}{calibrated}: "
                            f"the unit is {colour_words(colour) or _SPREAD_DRIFT}.")
        elif colour.delta_e00 + uncertainty > tol.delta_e00:
            unmeasured.append(
                f"Colour cannot be decided: Delta-E00 {measured} +/- "
                f"{format_number(uncertainty, 'delta_e')} against the limit {limit}. The "
                "colour card's own patches near this colour differ that much between the two "
                "photos (calibrated: each as its photo's fit predicts it without it); light "
                "the card like the product, without glare or shadow, to narrow it.")
        else:
            passes.append(f"Colour within tolerance{calibrated}: Delta-E00 {measured} <= "
                          f"{limit}.")
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
            words = size_in_words(dimensions)
            limit = format_number(tol.dimension_mm, "mm")
            if change > tol.dimension_mm:
                failures.append(f"Size differs by more than {limit} mm: {words}.")
            else:
                passes.append(f"Size within {limit} mm: {words}.")
    ssim, floor = (format_number(v, "ssim") for v in (structure.ssim, tol.ssim_min))
    if ratios["structure"] > 1:
        failures.append(f"Structure differs: SSIM {ssim} is below the floor {floor}.")
    else:
        passes.append(f"Structure matches: SSIM {ssim} >= {floor}.")
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
