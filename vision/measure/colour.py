"""The colour stage: the compared region's colour in each photo and their CIEDE2000 difference,
with a per-tile map.

The headline colours are averaged from each photo's own pixels (:func:`photo_colours`), each
pixel decoded (and corrected with its photo's card) on its own; the tiles and the global offset
the defect stage discounts come from the analysis images.
"""

from __future__ import annotations

import cv2
import numpy as np

from calibration.fit import ColourCorrection
from imaging import color
from vision.calibrate import ColourPlan, PhotoCalibration, card_agreement, uneven_light_words
from vision.frame import AnalysisFrame, resize_mask
from vision.measure.highlights import reflection_over, steady_colour_region
from vision.report import ColorReport, ColorTiles
from vision.views import AnalysisViews

__all__ = ["TILE_ANALYSIS_PX", "colour_stage", "measure_colour", "photo_colours",
           "unmeasured_colour"]

TILE_ANALYSIS_PX = 64
"""Colour tile edge at analysis resolution."""

REFLECTION_MIN_SHARE = 0.3
"""Of the compared region: a reflection over at least this much of it can carry the region's
colour (see ``ColorReport.delta_e00_without_reflection``). Chosen on eval_randomised's "tune"
split and tune-seeded drift pairs: colour drifts that were not there had reflections over
48-100% of the product, while a dye drift stays beyond the tolerance with the light taken off
whatever its reflection (see docs/decisions.md)."""
_REFLECTION_LIGHT_SLACK = 1.5  # the headline's grey change may be this much of the field's mean


def colour_stage(golden_image: np.ndarray, golden_scale: float, golden: PhotoCalibration,
                 unit_image: np.ndarray, unit: PhotoCalibration, frame: AnalysisFrame,
                 golden_views: AnalysisViews, unit_views: AnalysisViews, plan: ColourPlan,
                 *, highlights: np.ndarray | None = None, light: np.ndarray | None = None
                 ) -> tuple[ColorReport, np.ndarray]:
    """The report's ``color`` part and the global CIELAB offset (unit - golden) that the
    defect stage's colour cue discounts (also when the colour is not measurable).

    `golden_image` is the golden array (`golden_scale` analysis pixels per golden photo
    pixel), `unit_image` the unit array; `frame` says where they are compared. The colours
    are those of the region's steady part (:func:`vision.measure.highlights.
    steady_colour_region`): without the clipped `highlights` (analysis frame, either photo)
    and without what changed unlike the rest, the defect stage's findings. `light` is the
    grey light one photo adds (:func:`vision.measure.highlights.added_light`): when it lies
    over much of the region, the report says how far apart the colours are without it.
    """
    colour_region = steady_colour_region(golden_views.lab_smooth, unit_views.lab_smooth,
                                         frame.region, highlights)
    # The headline colours from the photos' own pixels, not the shrunk analysis images.
    photo_means = photo_colours(golden_image, golden_scale, unit_image, frame.unit_to_golden,
                                colour_region, plan.golden_correction(golden),
                                plan.unit_correction(unit))
    calibrated, note, uncertainty = plan.calibrated, plan.note, plan.uncertainty_e00
    agreement = (card_agreement(golden, unit, color.linear_rgb_to_lab(photo_means[0]))
                 if plan.calibrated and photo_means is not None else None)
    if agreement is not None and agreement.calibration_helps:
        uncertainty = round(agreement.uncertainty_e00, 4)
        note = uneven_light_words(golden, unit, agreement.light)
    elif agreement is not None:
        # Calibrating would move this colour further from the truth than leaving it: the
        # card itself says so. Compare as photographed, with that error as the uncertainty.
        photo_means = photo_colours(golden_image, golden_scale, unit_image,
                                    frame.unit_to_golden, colour_region, None, None)
        calibrated, uncertainty = False, round(agreement.as_photographed, 4)
        note = ("Colours compared as photographed: near this colour the card's patches differ "
                f"between the two photos by {agreement.as_photographed:.2f} Delta-E00 as "
                f"photographed and by {agreement.calibrated:.2f} calibrated (each patch "
                "predicted by its photo's calibration without it"
                + (f"; {np.hypot(agreement.calibrated, agreement.light):.2f} with the cards' "
                   "uneven light" if agreement.light > 0 else "")
                + "), so calibrating would not make the colour more accurate.")
        light = uneven_light_words(golden, unit)
        note = note if light is None else f"{note} {light}"
    report, global_offset = measure_colour(golden_views, unit_views, frame.region, golden_scale,
                                           photo_means, calibrated=calibrated, note=note,
                                           colour_region=colour_region)
    if not plan.measurable:
        return unmeasured_colour(plan.note), global_offset
    update = {"uncertainty_e00": uncertainty}
    if light is not None and photo_means is not None:
        update.update(_reflection(golden_views.linear_smooth, light, colour_region, photo_means,
                                  note))
    return report.model_copy(update=update), global_offset


def _reflection(golden_linear: np.ndarray, light: np.ndarray, colour_region: np.ndarray,
                photo_means: tuple[np.ndarray, np.ndarray], note: str | None) -> dict:
    """The report's reflection fields, and the note that says them when one lies over the
    region: the colour difference left once the grey light it adds is taken off.

    A reflection that is not clipped adds k * white in linear RGB (the lamp's light, white
    once the card corrected it) and moves the region's headline colour: lighter and less
    saturated, or the reverse when the golden's photo has it. The k taken off is the mean
    change of the three channels of the headline colours, of the reflection's sign and at
    most _REFLECTION_LIGHT_SLACK times its mean light over the region (the field is measured
    conservatively: the quartile nearer none, medians that flatten a peak). A dye's drift
    changes the channels unequally (hue and chroma) and is left.
    """
    share, mean_light = reflection_over(golden_linear, light, colour_region)
    fields = {"reflection_share": round(share, 4)}
    if share < REFLECTION_MIN_SHARE:
        return fields
    golden_rgb, unit_rgb = photo_means
    reach = _REFLECTION_LIGHT_SLACK * mean_light
    k = float(np.clip(np.mean(unit_rgb - golden_rgb), min(0.0, reach), max(0.0, reach)))
    without = float(color.ciede2000(color.linear_rgb_to_lab(golden_rgb),
                                    color.linear_rgb_to_lab(np.maximum(unit_rgb - k, 0.0))))
    which = "golden's" if mean_light < 0 else "unit's"
    words = (f"The {which} photo has grey light added over {share:.0%} of the compared region "
             f"(a reflection or a glossy sheen that is not clipped); without it the colours "
             f"differ by {without:.2f} Delta-E00.")
    return {**fields, "delta_e00_without_reflection": round(without, 4),
            "note": words if note is None else f"{note} {words}"}


def measure_colour(golden: AnalysisViews, unit: AnalysisViews, region: np.ndarray, s: float,
                   photo_means: tuple[np.ndarray, np.ndarray] | None, *,
                   calibrated: bool = False, note: str | None = None,
                   colour_region: np.ndarray | None = None) -> tuple[ColorReport, np.ndarray]:
    """Headline colour difference and per-tile map; also the global Lab offset (unit - golden).

    The headline colours are `photo_means` (:func:`photo_colours`) when there are any, else
    the analysis images' means over `colour_region` (default `region`), as is the offset the
    defect stage discounts; the tiles cover all of `region`. The tiles and the offset come
    from the analysis images, the same images as the defect stage's maps.
    """
    mask = (region if colour_region is None else colour_region).astype(np.uint8)
    # cv2.mean accumulates in float64, like ndarray.mean(dtype=float64), without the copy.
    golden_rgb = np.array(cv2.mean(golden.linear, mask)[:3])
    unit_rgb = np.array(cv2.mean(unit.linear, mask)[:3])
    offset = color.linear_rgb_to_lab(unit_rgb) - color.linear_rgb_to_lab(golden_rgb)
    if photo_means is not None:
        golden_rgb, unit_rgb = photo_means
    golden_lab = color.linear_rgb_to_lab(golden_rgb)
    unit_lab = color.linear_rgb_to_lab(unit_rgb)
    delta_L, delta_C, delta_H = color.delta_lch(golden_lab, unit_lab)
    tiles = colour_tiles(golden.linear, unit.linear, region, s)
    report = ColorReport(
        delta_e00=round(float(color.ciede2000(golden_lab, unit_lab)), 4),
        delta_L=round(float(delta_L), 4), delta_C=round(float(delta_C), 4),
        delta_H=round(float(delta_H), 4),
        delta_e_cmc=round(float(color.delta_e_cmc(golden_lab, unit_lab, l=2, c=1)), 4),
        golden_lab=tuple(round(float(v), 4) for v in golden_lab),
        unit_lab=tuple(round(float(v), 4) for v in unit_lab),
        tiles=tiles, calibrated=calibrated, note=note,
    )
    return report, offset


def unmeasured_colour(note: str | None) -> ColorReport:
    return ColorReport(delta_e00=None, delta_L=None, delta_C=None, delta_H=None,
                       delta_e_cmc=None, golden_lab=None, unit_lab=None, note=note)


def photo_colours(golden: np.ndarray, s: float, unit: np.ndarray, unit_to_golden: np.ndarray,
                  region: np.ndarray, golden_correction: ColourCorrection | None,
                  unit_correction: ColourCorrection | None
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean linear RGB of the compared region in each photo's own pixels (None: no pixel).

    Why not the analysis images' means: those were shrunk and warped from the photos by
    averaging 8-bit code values, and the mean of codes decodes darker than the mean of the
    light (the tone curve is convex). On a high-contrast product (stars on black, fine print)
    the ROI colour came out up to 0.9 L* dark that way (a synthetic Hubble deep field, 2016 px
    photo shrunk to 1008: L* 11.5 against 12.4 from the photo's pixels; truth 12.4). Here each
    pixel is decoded and corrected on its own, then averaged. The photos are sampled on a
    stride that picks pixels (it does not average them), so the cost is that of the analysis
    size.

    The region is a piece of the product's surface, as the golden frame shows it. A unit
    photographed at a slant shows the near part of it with more pixels than the far part, so
    each unit pixel is weighted by the surface it covers: the area scale of the homography
    there, |det H| / w^3 with w the homography's third coordinate. (Unweighted, a unit tilted
    by 23 degrees came out 1.3 L* bright on a product darker at its far end.)

    `golden` and `unit` are the photos' arrays; `unit_to_golden` maps unit array pixels to
    golden photo pixels; `region` is in the analysis frame, `s` analysis pixels per golden
    photo pixel.
    """
    golden_step = _sample_step(golden.shape, region.shape)
    golden_grid = golden[::golden_step, ::golden_step]
    golden_inside = resize_mask(region, golden_grid.shape[1::-1])
    unit_step = _sample_step(unit.shape, region.shape)
    unit_grid = unit[::unit_step, ::unit_step]
    # Unit grid pixel -> analysis pixel; the region is read through it (an inverse map).
    H = np.diag([s, s, 1.0]) @ unit_to_golden @ np.diag([unit_step, unit_step, 1.0])
    inside = cv2.warpPerspective(region.astype(np.uint8), H, unit_grid.shape[1::-1],
                                 flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    if not inside.any() or not golden_inside.any():
        return None
    # Only the region's bounding boxes are decoded and corrected (the region is the product).
    x, y, bw, bh = cv2.boundingRect(inside)
    ys, xs = np.mgrid[y:y + bh, x:x + bw].astype(np.float32)
    w = H[2, 0] * xs + H[2, 1] * ys + H[2, 2]
    # |det H| is the same for every pixel: left out.
    unit_weight = (inside[y:y + bh, x:x + bw] * np.abs(w) ** -3.0).astype(np.float32)
    unit_part = unit_grid[y:y + bh, x:x + bw]
    x, y, bw, bh = cv2.boundingRect(golden_inside.astype(np.uint8))
    golden_weight = golden_inside[y:y + bh, x:x + bw].astype(np.float32)
    return (_weighted_mean_linear(golden_grid[y:y + bh, x:x + bw], golden_weight,
                                  golden_correction),
            _weighted_mean_linear(unit_part, unit_weight, unit_correction))


def _weighted_mean_linear(rgb8: np.ndarray, weight: np.ndarray,
                          correction: ColourCorrection | None) -> np.ndarray:
    """Weighted mean of `rgb8` decoded to linear RGB (calibrated by `correction`, else sRGB)."""
    rgb8 = np.ascontiguousarray(rgb8)
    linear = color.srgb8_to_linear(rgb8) if correction is None else correction.apply(rgb8)
    weighted = cv2.multiply(linear, cv2.merge([weight] * 3))
    return np.array(cv2.sumElems(weighted)[:3]) / float(weight.sum(dtype=np.float64))


def _sample_step(image_shape: tuple[int, ...], analysis_shape: tuple[int, ...]) -> int:
    """Stride that samples a photo at about the analysis resolution (>= 1)."""
    return max(1, int(image_shape[0] / max(analysis_shape[0], 1)))


def colour_tiles(golden_linear: np.ndarray, unit_linear: np.ndarray, region: np.ndarray,
                  s: float) -> ColorTiles:
    t = TILE_ANALYSIS_PX
    h, w = region.shape
    rows, cols = h // t, w // t
    oy, ox = (h - rows * t) // 2, (w - cols * t) // 2
    crop = (slice(oy, oy + rows * t), slice(ox, ox + cols * t))
    if rows == 0 or cols == 0:  # a frame narrower than one tile: no tile to report
        return ColorTiles(tile_px=int(round(t / s)), origin=(int(round(ox / s)),
                                                             int(round(oy / s))),
                          delta_e00=[[] for _ in range(rows)])
    weight = region[crop].astype(np.float32)
    weight3 = cv2.merge([weight] * 3)
    # An area resize by the whole factor t is the exact mean of each t x t tile (float32
    # sums of 4096 values: relative error ~1e-6, far below the 0.001 the report rounds to).
    fraction = cv2.resize(weight, (cols, rows), interpolation=cv2.INTER_AREA)
    counts = fraction.astype(np.float64) * (t * t)

    def tile_means(linear: np.ndarray) -> np.ndarray:
        masked = cv2.multiply(linear[crop], weight3)
        means = cv2.resize(masked, (cols, rows), interpolation=cv2.INTER_AREA)
        return means.reshape(rows, cols, 3).astype(np.float64) / np.maximum(
            fraction, 1.0 / (t * t))[..., None]

    delta = color.ciede2000(color.linear_rgb_to_lab(tile_means(golden_linear)),
                            color.linear_rgb_to_lab(tile_means(unit_linear)))
    usable = counts >= 0.5 * t * t
    values = [[round(float(delta[r, c]), 3) if usable[r, c] else None for c in range(cols)]
              for r in range(rows)]
    return ColorTiles(tile_px=int(round(t / s)), origin=(int(round(ox / s)), int(round(oy / s))),
                      delta_e00=values)
