"""The analysis frame: the golden's pixels at the analysis size, the unit warped into them,
and the region that is compared.

Measurements are taken at an *analysis resolution* (long side :data:`ANALYSIS_SIZE`): a phone
photo has far more pixels than a 1 cm defect needs, and sensor noise at full resolution would
otherwise dominate SSIM. Everything reported is mapped back to full-resolution golden pixels.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import cv2
import numpy as np

from imaging.geometry import resized_frame
from vision.register import warp_to_golden
from vision.spec import Spec

if TYPE_CHECKING:
    from vision.prepare import PreparedGolden, PreparedUnit

__all__ = [
    "ANALYSIS_SIZE",
    "AnalysisFrame",
    "analysis_frame",
    "region_box",
    "resize_mask",
    "warp_for_analysis",
]

ANALYSIS_SIZE = 1024
"""Long side, in pixels, of the golden frame in which colour, SSIM and defects are measured."""

_EDGE_ERODE_PX = 4  # drop the resampled rim of the overlap, where interpolation mixes in border
_MIN_ROI_COVERAGE = 0.5  # below this fraction of the ROI inside the overlap: inconclusive
_MIN_OVERLAP = 0.05  # without an ROI: below this fraction of the golden photo: inconclusive
_MAX_BILINEAR_MINIFICATION = 1.5  # unit pixels per analysis pixel the warp takes unfiltered
_MIN_PRODUCT_IN_ROI = 0.5  # of the ROI on the product: then the ROI's table part is left out
# Analysis px around the unit's card: the registration's error off the product's plane and
# the card's outline found at reduced resolution.
_UNIT_CARD_MARGIN_PX = 4


@dataclasses.dataclass(frozen=True)
class AnalysisFrame:
    """The unit in the golden's analysis frame and the region compared there."""

    aligned: np.ndarray  # the unit's RGB uint8, warped into the golden's analysis frame
    region: np.ndarray  # bool, analysis frame: compared pixels (overlap and wanted region)
    roi_box: tuple[int, int, int, int] | None  # the region's box in golden photo pixels
    unit_to_golden: np.ndarray  # homography: unit *array* pixels -> golden photo pixels
    problem: str | None  # why too little of the wanted region is covered to compare; or None
    roi_source: str  # "spec", "product" or "overlap": see vision.report.Report.roi_source


def analysis_frame(golden: PreparedGolden, unit: PreparedUnit, homography: np.ndarray,
                   spec: Spec) -> AnalysisFrame:
    """Warp the unit into the golden's analysis frame and work out the compared region.

    `homography` maps unit photo pixels to golden photo pixels. The region is the spec's ROI,
    or without one the product on the golden (:func:`_default_roi`), within the overlap of the
    two photos. With an ROI, or the product found on the golden, the unit photo must show most
    of it; otherwise the overlap is the region and only has to be big enough to measure.
    """
    s = golden.analysis_scale
    shape = golden.analysis_rgb.shape[:2]
    unit_scale = unit.image.shape[1] / unit.photo_size[0]  # unit array px per unit photo px
    # The homography maps unit photo pixels; the array may be a reduced decode.
    unit_to_golden = homography @ np.diag([1 / unit_scale, 1 / unit_scale, 1.0])
    aligned, valid = warp_for_analysis(unit.image, homography, unit_scale, s, shape)
    cards = _card_masks(golden, unit, homography, s, shape)
    wanted = (_roi_within_product(golden, cards, spec.roi, s, shape) if spec.roi is not None
              else _default_roi(golden, cards, s, shape))
    region = valid & wanted
    roi_box = _golden_box(region, s, golden.size)
    coverage = region.sum() / max(1, wanted.sum())
    bounded = spec.roi is not None or golden.product is not None
    problem = None
    if coverage < (_MIN_ROI_COVERAGE if bounded else _MIN_OVERLAP):
        where = ("the region of interest" if spec.roi is not None
                 else "the product" if bounded else "the golden photo")
        problem = (f"The unit photo covers only {coverage:.0%} of {where}; photograph the "
                   "whole product.")
    roi_source = ("spec" if spec.roi is not None
                  else "product" if golden.product is not None else "overlap")
    return AnalysisFrame(aligned, region, roi_box, unit_to_golden, problem, roi_source)


def warp_for_analysis(unit: np.ndarray, H: np.ndarray, unit_scale: float, s: float,
                       shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resample the unit straight into the golden's analysis frame.

    `H` maps unit photo pixels to golden photo pixels; `unit` is the photo or a reduced decode
    of it (`unit_scale` array pixels per photo pixel); the analysis frame has `s` pixels per
    golden photo pixel.

    A warp that minifies by more than _MAX_BILINEAR_MINIFICATION would alias, so the unit is
    low-passed first: a Gaussian with the variance of an area shrink to 1.5 unit pixels per
    analysis pixel (a box of r = minification / 1.5 unit pixels, variance r^2 / 12) followed
    by a bilinear warp from that copy (r^2 / 6), less the 1 / 6 that the bilinear warp from
    the unit itself adds. OpenCV's area filter at such fractional factors costs 10 ms on a
    2016 x 1512 unit, the Gaussian 2 ms.
    """
    H_analysis = resized_frame(s) @ H @ resized_frame(1 / unit_scale)
    zoom = float(np.sqrt(abs(np.linalg.det(H_analysis[:2, :2]))))  # analysis px per unit px
    box = 1.0 / (_MAX_BILINEAR_MINIFICATION * max(zoom, 1e-9))  # r, in unit pixels
    if box > 1.0:
        unit = cv2.GaussianBlur(unit, (0, 0), float(np.sqrt(box * box / 4.0 - 1.0 / 6.0)))
    aligned, valid = warp_to_golden(unit, H_analysis, shape)
    valid = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8),
                      iterations=_EDGE_ERODE_PX) > 0
    return aligned, valid


def _card_masks(golden: PreparedGolden, unit: PreparedUnit, homography: np.ndarray, s: float,
                shape: tuple[int, int]) -> np.ndarray:
    """Both photos' colour cards in the analysis frame: the golden's where it lies, the unit's
    taken through the registration (`homography`: unit photo px -> golden photo px).

    Nobody puts the card in the same place twice: the unit's card, where it moved to, covers
    table or product that the golden shows bare, and its edges read as a defect region.
    """
    cards = np.zeros(shape, bool)
    if golden.card is not None:
        cards |= golden.card.mask(shape, scale=s)
    if unit.calibration.card is not None:
        quad = cv2.perspectiveTransform(
            unit.calibration.card.outline().reshape(-1, 1, 2).astype(np.float64),
            resized_frame(s) @ homography).reshape(-1, 2)
        unit_card = np.zeros(shape, np.uint8)
        # A corner far outside the frame (a steep view) must not overflow int32.
        quad = np.clip(quad, -4 * max(shape), 4 * max(shape))
        cv2.fillConvexPoly(unit_card, np.round(quad).astype(np.int32), 1)
        side = 2 * _UNIT_CARD_MARGIN_PX + 1
        cards |= cv2.dilate(unit_card, np.ones((side, side), np.uint8)) > 0
    return cards


def _default_roi(golden: PreparedGolden, cards: np.ndarray, s: float, shape: tuple[int, int]
                 ) -> np.ndarray:
    """Without a spec ROI: the product on the golden photo (its convex outline), minus both
    photos' cards (`cards`, :func:`_card_masks`).

    The table under the product is not the product: its texture and the card's place change
    between photo sessions, and comparing them made every hand-held photo fail. No margin
    around the outline: a 1% margin of table already produced a false colour region on a
    bench pair (the table's calibrated colour drifts unlike the product's).
    When no product stands out from a table (a close-up, a flat scan), the whole overlap.

    The outline is shrunk by 2 px: the silhouette is found at half this resolution, so its
    edge may lie a pixel of it (2 px here) out on the table, and on a dark product a rim of
    bright table carries the mean colour (a mean of light): a 3 px rim of table around a
    synthetic Hubble deep field print (golden L* 12.4) read L* 16.9 and a Delta-E00 drift of
    2.04 against a true 2.62; shrunk, 13.4 and 2.58.
    """
    mask = np.ones(shape, bool)
    if golden.product is not None:
        product = cv2.resize(golden.product.astype(np.uint8), shape[::-1],
                             interpolation=cv2.INTER_NEAREST)
        mask = cv2.erode(product, np.ones((5, 5), np.uint8)) > 0
    return mask & ~cards


def _roi_within_product(golden: PreparedGolden, cards: np.ndarray, roi, s: float,
                        shape: tuple[int, int]) -> np.ndarray:
    """The spec's ROI; where a product stands on a table and fills most of the ROI, only the
    product's part of it.

    A region drawn on a phone lands a few tens of pixels outside the product; the table it then
    takes in changes between photo sessions (texture, shadows, the card moved) and the
    product's own outline against it read as defects (the demo pair with a box 30 px too large:
    16 regions along the print's edge besides the scratch). An ROI drawn inside the product,
    or over something the silhouette missed, is kept as drawn.
    """
    mask = _roi_mask(roi, s, shape)
    if golden.product is None:
        return mask
    on_product = mask & _default_roi(golden, cards, s, shape)
    return on_product if on_product.sum() >= _MIN_PRODUCT_IN_ROI * mask.sum() else mask


def _roi_mask(roi, s: float, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    x, y, w, h = roi
    x0, y0 = max(0, int(round(x * s))), max(0, int(round(y * s)))
    x1, y1 = int(round((x + w) * s)), int(round((y + h) * s))
    mask[y0:y1, x0:x1] = True
    return mask


def _golden_box(region: np.ndarray, s: float, size: tuple[int, int]
                ) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(region)
    if len(xs) == 0:
        return None
    gw, gh = size
    x0, y0 = int(xs.min() / s), int(ys.min() / s)
    x1, y1 = min(gw, int(np.ceil((xs.max() + 1) / s))), min(gh, int(np.ceil((ys.max() + 1) / s)))
    return (x0, y0, x1 - x0, y1 - y0)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask enlarged or shrunk (nearest neighbour) to `size` (width, height)."""
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0


def region_box(region: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The region's bounding box grown by `margin` pixels (within the frame); None if empty."""
    ys, xs = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    if len(ys) == 0:
        return None
    ah, aw = region.shape
    return (slice(max(0, ys[0] - margin), min(ah, ys[-1] + 1 + margin)),
            slice(max(0, xs[0] - margin), min(aw, xs[-1] + 1 + margin)))
