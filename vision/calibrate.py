"""The calibration stage: each photo's colour card, the correction fitted on it, and the
policy that decides whether colours are compared calibrated, as photographed, or not at all.

The card detection and the fit are :mod:`calibration`'s; this module applies them to one photo
(:class:`PhotoCalibration`), decides for a pair (:func:`colour_plan`) and reports both
(:func:`calibration_report`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from calibration.detect import CardDetection
from calibration.fit import (
    ColourCorrection,
    PatchSamples,
    calibrate_photo,
    chart_linear_reference,
    chart_metric_roots,
    clearly_better,
)
from imaging.color import ciede2000, linear_rgb_to_lab, srgb_to_linear
from vision.report import CalibrationReport, CalibrationSide
from vision.spec import Spec

__all__ = ["UNEVEN_LIGHT_SPREAD", "CardAgreement", "ColourPlan", "PhotoCalibration",
           "calibration_report", "card_agreement", "colour_plan", "colour_uncertainty_e00",
           "is_greyscale", "uneven_light_words"]


@dataclasses.dataclass(frozen=True)
class PhotoCalibration:
    """One photo's colour card and the correction fitted on it (None where not found/fitted)."""

    card: CardDetection | None
    correction: ColourCorrection | None
    samples: PatchSamples | None
    greyscale: bool = False  # the photo has no colour (R = G = B): colour cannot be judged

    @classmethod
    def of(cls, photo: np.ndarray, card: CardDetection | None, *, scale: float = 1.0
           ) -> PhotoCalibration:
        """`scale`: `photo` pixels per pixel of the card's coordinates (reduced decodes)."""
        greyscale = is_greyscale(photo)
        if card is None:
            return cls(None, None, None, greyscale)
        correction, samples = calibrate_photo(photo, card, scale=scale)
        return cls(card, correction, samples, greyscale)


_GREY_MAX_CHANNEL_SPREAD = 3  # 8-bit codes: JPEG chroma rounding of a grey photo stays within


def is_greyscale(photo: np.ndarray) -> bool:
    """True when the photo holds no colour: its channels differ by at most a JPEG's rounding
    (on every 16th pixel of every 16th row, but for one in a thousand)."""
    sample = photo[::16, ::16].astype(np.int16)
    green = sample[..., 1]
    coloured = ((np.abs(sample[..., 0] - green) > _GREY_MAX_CHANNEL_SPREAD)
                | (np.abs(sample[..., 2] - green) > _GREY_MAX_CHANNEL_SPREAD))
    return bool(np.count_nonzero(coloured) <= 0.001 * coloured.size)


def colour_uncertainty_e00(golden: ColourCorrection, unit: ColourCorrection) -> float:
    """Uncertainty (Delta-E00) of a difference between two photos calibrated with these, from
    the calibrations alone: each one's leave-one-patch-out mean CIEDE2000 (how far off it
    predicts a colour it was not fitted on) with its sampling noise, the two photos' errors
    taken as independent (in quadrature). The colour stage replaces it by the card's own
    agreement near the product's colour (:func:`card_agreement`) where it can.
    """
    return float(np.sqrt(golden.loo_delta_e00_mean**2 + unit.loo_delta_e00_mean**2
                         + golden.noise_delta_e00**2 + unit.noise_delta_e00**2))


UNEVEN_LIGHT_SPREAD = 0.02
"""A card's :attr:`ColourCorrection.light_spread` from which the report says that its light is
uneven (the light level varies by +/- 2 % or more over its patches)."""


def _light_percent(spread: float) -> str:
    return f"+/- {100.0 * (np.exp(spread) - 1.0):.0f} %"


def uneven_light_words(golden: PhotoCalibration, unit: PhotoCalibration,
                       light_e00: float | None = None) -> str | None:
    """A sentence for the report when either card is lit unevenly (None when neither is):
    which card, how uneven, and, given `light_e00` (:attr:`CardAgreement.light`), what it adds
    to the colour's uncertainty."""
    uneven = [f"the {name} photo ({_light_percent(photo.correction.light_spread)} across its "
              "patches)"
              for name, photo in (("golden", golden), ("unit", unit))
              if photo.correction is not None
              and photo.correction.light_spread >= UNEVEN_LIGHT_SPREAD]
    if not uneven:
        return None
    counted = ("" if light_e00 is None else
               f" (counted as {light_e00:.2f} Delta-E00 in the colour's uncertainty)")
    return (f"The colour card is lit unevenly in {' and in '.join(uneven)}: the product "
            f"beside it is not lit as the card is{counted}. Light the card and the product "
            "evenly (no lamp to one side, no shadow over the card).")


_NEAR_E00 = 10.0  # patches this far (CIEDE2000) from the product's colour weigh e^-1/2 as much


@dataclasses.dataclass(frozen=True)
class CardAgreement:
    """How far apart the two photos put the same card's patches near the product's colour."""

    as_photographed: float  # weighted mean CIEDE2000, both photos decoded as sRGB
    calibrated: float  # the same, each patch as its photo's calibration predicts it unseen
    noise: float  # the two calibrations' sampling noise, in quadrature
    # CIEDE2000 the cards' uneven light moves these colours by (each card's spread of light
    # as a change of exposure, the two in quadrature): the product beside a card is lit
    # neither as its centre nor as any one patch, so a calibration cannot remove this
    light: float = 0.0

    @property
    def calibration_helps(self) -> bool:
        """Clearly: doing nothing is the simpler choice and stands unless clearly beaten."""
        return clearly_better(float(np.hypot(self.calibrated, self.light)),
                              self.as_photographed)

    @property
    def uncertainty_e00(self) -> float:
        """Of the calibrated difference: the card's own disagreement with the noise and the
        uneven light."""
        return float(np.sqrt(self.calibrated**2 + self.noise**2 + self.light**2))


def card_agreement(golden: PhotoCalibration, unit: PhotoCalibration,
                   colour_lab: np.ndarray) -> CardAgreement | None:
    """The card is the same object in both photos, so its patches' difference between them is
    the error of comparing an unchanged colour: as photographed, and calibrated with each
    patch predicted by the fit that left it out (leave-one-patch-out: the calibration's error
    on a colour it was not fitted on). Patches near the product's colour `colour_lab`
    (CIELAB, calibrated) count most: Gaussian weights of their reference colour's CIEDE2000
    from it, :data:`_NEAR_E00` wide. A calibration that is good on the chart on average can be
    worse than none for one colour (a phone's own processing of near-whites, a card lit apart
    from the product); this says so for the colour at hand.

    None when either photo has no correction or no patch is usable in both.
    """
    corrections = (golden.correction, unit.correction)
    if any(c is None or c.loo_lab is None for c in corrections) or golden.samples is None \
            or unit.samples is None:
        return None
    both = np.isfinite(golden.correction.loo_lab).all(axis=1) & np.isfinite(
        unit.correction.loo_lab).all(axis=1)
    if not both.any():
        return None
    reference_lab = linear_rgb_to_lab(chart_linear_reference(golden.card.chart))[both]
    near = ciede2000(reference_lab, np.broadcast_to(np.asarray(colour_lab, np.float64),
                                                    reference_lab.shape))
    weights = np.exp(-0.5 * (near / _NEAR_E00) ** 2) + 1e-9
    weights /= weights.sum()
    raw = [linear_rgb_to_lab(srgb_to_linear(photo.samples.rgb8[both] / 255.0))
           for photo in (golden, unit)]
    # A change of exposure by a factor e^s moves a linear colour c by ~ s c: its CIEDE2000 is
    # |R c| s, R the metric's root at c.
    reference = chart_linear_reference(golden.card.chart)[both]
    exposure_e00 = np.linalg.norm(np.einsum(
        "iab,ib->ia", chart_metric_roots(golden.card.chart)[both], reference), axis=1)
    spread = float(np.hypot(golden.correction.light_spread, unit.correction.light_spread))
    return CardAgreement(
        as_photographed=float(weights @ ciede2000(*raw)),
        calibrated=float(weights @ ciede2000(golden.correction.loo_lab[both],
                                             unit.correction.loo_lab[both])),
        noise=float(np.hypot(golden.correction.noise_delta_e00,
                             unit.correction.noise_delta_e00)),
        light=float(weights @ exposure_e00) * spread,
    )


@dataclasses.dataclass(frozen=True)
class ColourPlan:
    """How a pair's colours are compared."""

    calibrated: bool  # both photos are corrected with their own card
    measurable: bool  # False: the colour is not compared at all (reported as unmeasured)
    note: str | None  # why, in a sentence for the report; None when calibrated
    uncertainty_e00: float | None = None  # of the calibrated difference; None: not calibrated
    greyscale: bool = False  # a photo has no colour: colour is not judged, the rest decides

    def golden_correction(self, golden: PhotoCalibration) -> ColourCorrection | None:
        return golden.correction if self.calibrated else None

    def unit_correction(self, unit: PhotoCalibration) -> ColourCorrection | None:
        return unit.correction if self.calibrated else None


def colour_plan(golden: PhotoCalibration, unit: PhotoCalibration, spec: Spec, *,
                calibrate: bool = True) -> ColourPlan:
    """The calibration policy.

    Calibrated when each photo has a usable card; compared as photographed when neither has a
    card (unless the spec requires one); otherwise the colour cannot be compared fairly, and
    the note names the photo that lacks the card. `calibrate` False compares as photographed
    whatever the cards (to see what the calibration changed).
    """
    grey = [name for name, photo in (("golden", golden), ("unit", unit)) if photo.greyscale]
    if grey:
        return ColourPlan(False, False, "Colour cannot be judged from a greyscale photo (the "
                          f"{' and the '.join(grey)} photo{'s have' if len(grey) == 2 else ' has'}"
                          " no colour); structure and defects are judged without it.",
                          greyscale=True)
    if not calibrate:
        return ColourPlan(False, True, "Calibration switched off: colours are compared as "
                          "photographed.")
    if golden.correction is not None and unit.correction is not None:
        return ColourPlan(True, True, None, round(colour_uncertainty_e00(
            golden.correction, unit.correction), 4))
    problems = []
    for name, photo in (("golden", golden), ("unit", unit)):
        if photo.card is None:
            problems.append(f"no colour card was found in the {name} photo")
        elif photo.correction is None:
            usable = int(photo.samples.usable.sum()) if photo.samples is not None else 0
            problems.append(f"the colour card in the {name} photo has only {usable} usable "
                            "patches (clipped, black or uneven)")
    if golden.card is None and unit.card is None:
        if spec.chart.required:
            return ColourPlan(False, False, "No colour card in either photo, and the spec "
                              "requires one (chart.required): photograph the card beside the "
                              "product.")
        return ColourPlan(False, True, "No colour card in either photo: colours are compared "
                          "as photographed, so a change of light or camera shows as drift.")
    return ColourPlan(False, False, "Colour not compared: " + " and ".join(problems) +
                      "; photograph both the golden sample and the unit with the card in the "
                      "frame.")


def calibration_report(golden: PhotoCalibration, unit: PhotoCalibration, plan: ColourPlan,
                       spec: Spec) -> CalibrationReport:
    """The report's ``calibration`` part: what was found and fitted on each photo."""
    return CalibrationReport(
        golden=_calibration_side(golden, applied=plan.calibrated, spec=spec),
        unit=_calibration_side(unit, applied=plan.calibrated, spec=spec),
    )


def _round_points(points: np.ndarray) -> list[tuple[float, float]]:
    return [(round(float(x), 2), round(float(y), 2)) for x, y in points]


def _calibration_side(photo: PhotoCalibration, *, applied: bool, spec: Spec) -> CalibrationSide:
    card, correction = photo.card, photo.correction
    if card is None:
        return CalibrationSide(applied=False, chart_found=False, note=None)
    corners = _round_points(card.corners)
    side = dict(
        applied=applied, chart_found=True, note=None, corners=corners,
        confidence=card.confidence, method=card.method, chart=card.chart.name,
        card_corners=corners, card_confidence=card.confidence,
        px_per_mm=(None if spec.chart.width_mm is None
                   else round(card.px_per_mm(spec.chart.width_mm), 4)),
    )
    names = card.chart.patch_names
    if photo.samples is not None:
        side["excluded_patches"] = {names[i]: problem for i, problem
                                    in enumerate(photo.samples.problems) if problem}
    if correction is not None:
        residual = correction.residual_delta_e00
        side.update(
            tone_curve=correction.tone_curve,
            gamma=None if correction.gamma is None else round(correction.gamma, 4),
            model=correction.model,
            residual_delta_e00_mean=round(correction.residual_mean, 4),
            residual_delta_e00_max=round(correction.residual_max, 4),
            residual_delta_e00={n: None if np.isnan(v) else round(float(v), 3)
                                for n, v in zip(names, residual, strict=True)},
            loo_delta_e00_mean=correction.loo_delta_e00_mean,
            light_spread=correction.light_spread,
        )
        notes = [correction.warning]
        if correction.light_spread >= UNEVEN_LIGHT_SPREAD:
            notes.append(f"The card is lit unevenly: its light varies by "
                         f"{_light_percent(correction.light_spread)} across the patches.")
        side["note"] = " ".join(n for n in notes if n) or None
    return CalibrationSide(**side)
