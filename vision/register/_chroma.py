"""The product's outline in chromaticity: a fit of the silhouette that a change of light leaves
where it is (the shape fallback's last step).

A product of one colour on a table of another (a moulded part, a steel plate, a cloth) is
outlined by its colour as much as by its brightness. Brightness moves with the light: the
shading of a rounded rim, the cast shadow on the table, a highlight. Chromaticity (each
channel over their sum) does not: a Lambertian surface and its shadow keep their
chromaticity under any light of one colour, so the boundary between the product's
chromaticity and the table's stays on the product's edge. ECC (Evangelidis & Psarakis 2008)
fits that boundary: a band around the golden's silhouette, coarse to fine.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.register._checks import corners_moved, plausible, valid_pixels
from vision.register._dense import crop_warp_homography, ecc_coarse_to_fine, ecc_levels

_BAND_PX = 7  # working pixels each side of the silhouette's outline that the fit looks at
_RING_PX = 15  # working pixels beyond the silhouette whose chromaticity is the table's
_DARK_OFFSET = 8.0  # grey levels added before the ratio, so that dark noise does not dominate
# (downscale factor, iterations, Gaussian aperture), coarse to fine: the shape's edge fit
# leaves a moulded part under a changed light 1-15 px off (eval_randomised.py, tune split). A
# quarter-size level diverged from 14 px off on the thin band, where the half-size one
# converged; a coarse level that does not converge is skipped, the last one must.
_LEVELS = ((2, 40, 5), (1, 40, 5), (1, 30, 1))
# ECC's correlation the fit must reach over the band: 0.95-0.99 on the tune split's moulded
# and steel parts; where product and table have nearly one chromaticity the band is noise.
CHROMA_MIN_RHO = 0.9
CHROMA_MAX_MOVE = 16.0  # working px at the product's corners: further is a search, not a fit


def chromaticity_contrast(rgb: np.ndarray, product: np.ndarray) -> np.ndarray | None:
    """float32 image: each pixel's chromaticity (r, g over r + g + b) from the table's (the
    mean over a ring around `product`, a uint8 mask of the same size) along the direction to
    the product's mean chromaticity; 0 on the table, 1 on the product. None when there is no
    ring or both have one chromaticity."""
    values = rgb.astype(np.float32) + _DARK_OFFSET
    chroma = values[..., :2] / values.sum(axis=2, keepdims=True)
    inside = product > 0
    ring = (cv2.dilate(product, np.ones((2 * _RING_PX + 1,) * 2, np.uint8)) > 0) & ~inside
    if not ring.any() or not inside.any():
        return None
    table = chroma[ring].mean(axis=0)
    towards = chroma[inside].mean(axis=0) - table
    length2 = float(towards @ towards)
    if length2 < 1e-8:
        return None
    return (((chroma - table) @ towards) / length2).astype(np.float32)


def fit_outline_by_chromaticity(golden_rgb: np.ndarray, golden_product: np.ndarray,
                                unit_rgb: np.ndarray, unit_product: np.ndarray,
                                unit_ignore_mask: np.ndarray | None, H_work: np.ndarray
                                ) -> np.ndarray | None:
    """`H_work` (working unit -> golden pixels) refitted on the band around the golden's
    silhouette in :func:`chromaticity_contrast`, or None when the fit does not converge,
    correlates less than CHROMA_MIN_RHO, moves the product's corners further than
    CHROMA_MAX_MOVE or is no photo of the same flat product. The products are uint8 masks at
    the photos' working size."""
    golden_contrast = chromaticity_contrast(golden_rgb, golden_product)
    unit_contrast = chromaticity_contrast(unit_rgb, unit_product)
    if golden_contrast is None or unit_contrast is None:
        return None
    kernel = np.ones((2 * _BAND_PX + 1,) * 2, np.uint8)
    band = cv2.dilate(golden_product, kernel) - cv2.erode(golden_product, kernel)
    ys, xs = np.nonzero(band)
    if len(ys) == 0:
        return None
    # The band's box, and a margin for ECC's blur: the fit looks at nothing else.
    h, w = band.shape
    x0, y0 = max(0, xs.min() - _BAND_PX), max(0, ys.min() - _BAND_PX)
    x1, y1 = min(w, xs.max() + 1 + _BAND_PX), min(h, ys.max() + 1 + _BAND_PX)
    crop = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]])
    template, mask = golden_contrast[y0:y1, x0:x1], band[y0:y1, x0:x1]
    unit_valid = valid_pixels(unit_product, unit_ignore_mask)
    # ECC's warp maps template (cropped golden) pixels to unit pixels.
    fitted = ecc_coarse_to_fine(ecc_levels(template, mask, unit_contrast, unit_valid, _LEVELS),
                                np.linalg.inv(H_work) @ crop)
    if fitted is None:
        return None
    H = crop_warp_homography(crop, fitted[1])
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                       np.float64).reshape(-1, 1, 2)
    move = corners_moved(corners, H_work, H)
    rho = fitted[0]
    if (rho < CHROMA_MIN_RHO or move > CHROMA_MAX_MOVE
            or plausible(H, unit_rgb.shape[:2], golden_rgb.shape[:2]) is not None):
        return None
    return H
