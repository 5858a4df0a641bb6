"""Shape fallback: the product's whole silhouette, then the edges of its shading, for products
that neither their texture nor a four-sided outline registers (textureless moulded parts with
rounded corners, bent brushed steel whose highlights move with the view, repetitive fabric).

1. The silhouettes' moments give the affine map up to a turn: each blob whitened by its own
   second moments (Hu 1962: an affine map then leaves only a rotation between them); the turn
   is where the whitened outlines' polar signatures (radius against angle) correlate best.
   Several peaks (a rectangle looks alike half a turn round) are each a candidate.
2. ECC (Evangelidis & Psarakis 2008) aligns the filled silhouettes (affine, then a homography).
3. ECC then fits the homography on the edges of the greys inside the product (the gradient's
   magnitude: a relief lit from another side swaps its bright and dark flanks, but its edges
   stay where they are; the outline against the table pulls too), coarse to fine.
4. Verified three ways: the silhouettes coincide; the edges inside correlate on most tiles;
   and the winner beats every candidate that puts the product elsewhere by a margin (a
   symmetric outline fits as well either way round: only the interior can tell).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from imaging.geometry import homography_jacobian
from vision.register._checks import median_tile_ncc, plausible, valid_pixels
from vision.register._chroma import fit_outline_by_chromaticity
from vision.register._dense import (
    crop_warp_homography,
    ecc_coarse_to_fine,
    ecc_fit,
    ecc_levels,
)
from vision.register._features import GoldenFeatures

_SIGNATURE_BINS = 360  # polar signature: one radius per degree
_TURNS_KEPT = 4  # the best-correlating turns of the signature, each a candidate
# A tilted hand-held photo stretches a product by at most ~1 / cos(42 degrees); a turn that
# needs more (a quarter turn of an oblong part, whitened to a square) is not a candidate.
_MAX_STRETCH = 1.35
_EDGE_SIGMA = 1.5  # working pixels: the greys are smoothed this much before the gradient
_RIM_FRACTION = 0.08  # of the product's short side: its rim, left out of the core
# (downscale factor, iterations, Gaussian aperture), coarse to fine, for the edge fit
_EDGE_LEVELS = ((4, 60, 5), (2, 40, 5), (1, 25, 3))
# Silhouette intersection over union a shape registration must reach: 0.91-0.99 for the
# accepted tune pairs (the cast shadow, part of the blob, moves with the light), 0.89 for a
# moulded part's fit 15 px off.
SHAPE_MIN_OVERLAP = 0.88
# Median tile correlation of the edges inside the product (its rim left out). On the tune
# split of benchmarks/eval_randomised.py the accepted alignments scored 0.68-0.98 and those
# 14-15 px off (silhouettes fitted with the cast shadow in them) 0.29-0.54.
SHAPE_MIN_SCORE = 0.6
SHAPE_MIN_MARGIN = 0.05  # over any candidate that puts the product elsewhere
# How much better the fit must score than the same fit shifted by _PEAK_STEP: on the tune
# split's accepted moulded and steel parts 0.06-0.44; a fabric 0.004 (right by luck) and
# eval_registration.py's twill, registered 124 px off, 0.0004.
SHAPE_MIN_PEAK = 0.03
_PEAK_STEP = 0.03  # of the product's short side: the shift the peak is judged against
_SAME_PX = 4.0  # working px at the product's corners: candidates this close are one
_SHIFT_SIGMAS = (4.0, 2.0)  # working px: edges smoothed for the shift, coarse then fine
_TILES = 4  # the interior score: median over a 4 x 4 grid of tiles
_MIN_TILE_EDGES = 1.0  # a tile whose golden edges vary less than this (grey levels) is blank


def _filled(blob: np.ndarray) -> np.ndarray | None:
    """The blob's largest outer contour, filled (holes through a plate belong to it)."""
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    mask = np.zeros_like(blob)
    cv2.drawContours(mask, [max(contours, key=cv2.contourArea)], -1, 1, -1)
    return mask


def _whitening(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centroid, whitening 2x2, contour points) of a filled mask."""
    m = cv2.moments(mask, binaryImage=True)
    centre = np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]])
    cov = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / m["m00"]
    values, vectors = np.linalg.eigh(cov)
    white = vectors @ np.diag(1.0 / np.sqrt(np.maximum(values, 1e-9))) @ vectors.T
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    points = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    return centre, white, points


def _signature(centre: np.ndarray, white: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The whitened outline's radius against its angle (one bin a degree), zero-mean."""
    q = (points - centre) @ white.T
    angle = (np.degrees(np.arctan2(q[:, 1], q[:, 0])) % 360.0).astype(int) % _SIGNATURE_BINS
    radius = np.hypot(q[:, 0], q[:, 1])
    signature = np.zeros(_SIGNATURE_BINS)
    np.maximum.at(signature, angle, radius)
    filled = signature > 0
    if filled.sum() < 8:
        return np.zeros(_SIGNATURE_BINS)
    bins = np.arange(_SIGNATURE_BINS)
    signature = np.interp(bins, bins[filled], signature[filled], period=_SIGNATURE_BINS)
    return signature - signature.mean()


def _turns(golden_signature: np.ndarray, unit_signature: np.ndarray) -> list[float]:
    """Turns (degrees, unit -> golden) at which the signatures correlate best, best first:
    local maxima of the circular cross-correlation, at least 20 degrees apart."""
    correlation = np.fft.ifft(np.fft.fft(golden_signature)
                              * np.conj(np.fft.fft(unit_signature))).real
    order = np.argsort(-correlation)
    kept: list[int] = []
    for index in order:
        if all(min(abs(index - k), _SIGNATURE_BINS - abs(index - k)) >= 20 for k in kept):
            kept.append(int(index))
        if len(kept) == _TURNS_KEPT:
            break
    return [float(k) for k in kept]


def _stretch(H: np.ndarray, point: np.ndarray) -> float:
    singular = np.linalg.svd(homography_jacobian(H, point), compute_uv=False)
    return float(singular[0] / max(singular[1], 1e-12))


def _edges(grey: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the smoothed grey (float32)."""
    smooth = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), _EDGE_SIGMA)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.magnitude(gx, gy)


def _normalised(warp: np.ndarray) -> np.ndarray:
    """`warp` scaled so that its last element is 1: OpenCV's ECC fits a homography's first
    eight elements with the ninth taken as 1, and diverges ("iterations do not converge")
    from a warp that is right only up to scale (the inverse of a homography, 0.68 there)."""
    return warp / warp[2, 2]


def _scale(factor: float) -> np.ndarray:
    return np.diag([factor, factor, 1.0])


def register_by_shape(golden: GoldenFeatures, unit_blob: np.ndarray | None,
                      unit_grey: np.ndarray, unit_ignore_mask: np.ndarray | None,
                      overlap: Callable[[np.ndarray], float],
                      unit_colour: np.ndarray | None = None
                      ) -> tuple[np.ndarray, float, str | None] | None:
    """(working-resolution unit -> golden homography, interior score, why it is refused or
    None) from the products' silhouettes and the edges of their shading; None when there is
    no silhouette to start from or nothing converges. `overlap(H_work)` is the silhouettes'
    intersection over union under a working-resolution homography. With `unit_colour` (the
    unit's working RGB) each edge fit is refitted on the outline's chromaticity
    (:mod:`._chroma`), which a change of light does not move."""
    if golden.product_blob is None or unit_blob is None:
        return None
    golden_mask, unit_mask = _filled(golden.product_blob), _filled(unit_blob)
    if golden_mask is None or unit_mask is None:
        return None
    # Blob pixels -> working pixels.
    to_golden = golden.grey.shape[1] / golden_mask.shape[1]
    to_unit = unit_grey.shape[1] / unit_mask.shape[1]
    golden_centre, golden_white, golden_points = _whitening(golden_mask)
    unit_centre, unit_white, unit_points = _whitening(unit_mask)
    turns = _turns(_signature(golden_centre, golden_white, golden_points),
                   _signature(unit_centre, unit_white, unit_points))
    unit_valid = valid_pixels(unit_grey, unit_ignore_mask)
    golden_soft = cv2.GaussianBlur(golden_mask.astype(np.float32), (0, 0), 2.0)
    unit_soft = cv2.GaussianBlur(unit_mask.astype(np.float32), (0, 0), 2.0)
    blob_valid_golden = np.ones_like(golden_mask)
    blob_valid_unit = cv2.resize(unit_valid, unit_mask.shape[::-1],
                                 interpolation=cv2.INTER_NEAREST)
    candidates = []
    for turn in turns:
        c, s = np.cos(np.radians(turn)), np.sin(np.radians(turn))
        A = np.linalg.inv(golden_white) @ np.array([[c, -s], [s, c]]) @ unit_white
        if np.linalg.det(A) <= 0:
            continue
        H_blob = np.eye(3)
        H_blob[:2, :2] = A
        H_blob[:2, 2] = golden_centre - A @ unit_centre
        if _stretch(H_blob, golden_centre) > _MAX_STRETCH:
            continue
        # ECC's warp maps template (golden) pixels to unit pixels.
        warp = np.linalg.inv(H_blob)
        for motion in (cv2.MOTION_AFFINE, cv2.MOTION_HOMOGRAPHY):
            fitted = ecc_fit(golden_soft, blob_valid_golden, unit_soft, blob_valid_unit,
                             _normalised(warp), 50, 5, motion)
            if fitted is None:
                break
            warp = fitted[1]
        else:
            H_work = _scale(to_golden) @ np.linalg.inv(warp) @ _scale(1.0 / to_unit)
            candidates.append(H_work / H_work[2, 2])
    if not candidates:
        return None
    regions = _product_regions(golden, golden_mask)
    if regions is None:
        return None
    region, (x0, y0, x1, y1), core = regions
    crop = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
    golden_edges, unit_edges = _edges(golden.grey), _edges(unit_grey)
    template = golden_edges[y0:y1, x0:x1]
    stages = ecc_levels(template, region[y0:y1, x0:x1], unit_edges, unit_valid, _EDGE_LEVELS)

    def fitted_edges(H_work: np.ndarray) -> np.ndarray | None:
        """ECC on the edges, coarse to fine, from `H_work`; None unless the full level
        converges to a plausible homography."""
        fitted = ecc_coarse_to_fine(stages, np.linalg.inv(H_work) @ crop)
        if fitted is None:
            return None
        H = crop_warp_homography(crop, fitted[1])
        return H if plausible(H, unit_grey.shape, golden.grey.shape) is None else None

    def interior(H: np.ndarray) -> float:
        return edge_correlation(golden_edges, core, unit_edges, H)

    step = max(4.0, _PEAK_STEP * min(x1 - x0, y1 - y0))
    refined = []
    for H_work in candidates:
        H = fitted_edges(_shifted(template, region[y0:y1, x0:x1], unit_edges, H_work, crop))
        if H is None:
            continue
        if unit_colour is not None and golden.colour is not None:
            # The edges of a relief's shading move with the light (moulded parts under a
            # changed light 1-15 px off on the tune split); its outline's colour does not.
            by_colour = fit_outline_by_chromaticity(
                golden.colour, _working(golden_mask, golden.grey.shape), unit_colour,
                _working(unit_mask, unit_grey.shape), unit_ignore_mask, H)
            H = H if by_colour is None else by_colour
        refined.append((interior(H), H))
    if not refined:
        return None
    refined.sort(key=lambda pair: -pair[0])
    score, best = refined[0]
    iou = overlap(best)
    if iou < SHAPE_MIN_OVERLAP:
        return best, score, (
            f"the product's shape suggests an alignment under which the two silhouettes do "
            f"not coincide ({iou:.0%} overlap): photograph the whole product against a plain "
            "table, or the unit may be another product")
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64).reshape(-1, 1, 2)
    for other_score, other in refined[1:]:
        moved = np.linalg.norm(cv2.perspectiveTransform(
            cv2.perspectiveTransform(corners, np.linalg.inv(best)), other) - corners,
            axis=2).mean()
        if moved > _SAME_PX and other_score > score - SHAPE_MIN_MARGIN:
            return best, score, (
                f"the product's shape fits two ways round nearly equally well (edge "
                f"correlation {score:.2f} and {other_score:.2f}): photograph the unit turned "
                "the same way as the golden sample")
    # The inside must pin the product's place: the same edges a few pixels away must score
    # clearly lower. A fine weave's edges, blurred to an even sheen, correlate as well
    # wherever they are put (a twill registered 124 px off at 0.97 otherwise).
    around = max(interior(_moved(best, dx, dy))
                 for dx, dy in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)))
    if score - around < SHAPE_MIN_PEAK:
        return best, score, (
            f"the inside of the product does not fix its place (edge correlation {score:.2f} "
            f"there and {around:.2f} {step:.0f} px away): the unit may be another product")
    return best, score, None


def _product_regions(golden: GoldenFeatures, golden_mask: np.ndarray
                     ) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray] | None:
    """(the region the edge fit looks at, its box (x0, y0, x1, y1), the core the score looks
    at), working pixels, from the golden's filled silhouette; None when nothing is left."""
    golden_valid = valid_pixels(golden.grey, golden.ignore_mask)
    # The edge fit over the golden's product (and a rim of table: the outline pulls too).
    product = cv2.resize(golden_mask, golden.grey.shape[::-1], interpolation=cv2.INTER_NEAREST)
    region = cv2.dilate(product, np.ones((9, 9), np.uint8)) & golden_valid
    ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return None
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    # The core: the product without its rim, where the cast shadow and a rounded edge's
    # shading (both changed by the light) lie; what the first fit and the score look at.
    rim = max(7, int(_RIM_FRACTION * min(x1 - x0, y1 - y0)))
    core = cv2.erode(product, np.ones((rim, rim), np.uint8)) & golden_valid
    if not core.any():
        return None
    return region, (int(x0), int(y0), int(x1), int(y1)), core


def interior_score(golden: GoldenFeatures, unit_grey: np.ndarray, H_work: np.ndarray) -> float:
    """The score :func:`register_by_shape` decides by (:func:`edge_correlation` over the
    product's core) of any working-resolution unit -> golden homography; -1 without a
    product on the golden's table."""
    golden_mask = None if golden.product_blob is None else _filled(golden.product_blob)
    regions = None if golden_mask is None else _product_regions(golden, golden_mask)
    if regions is None:
        return -1.0
    return edge_correlation(_edges(golden.grey), regions[2], _edges(unit_grey), H_work)


def _working(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A silhouette (blob pixels) at the working size `shape`."""
    return cv2.resize(mask, shape[::-1], interpolation=cv2.INTER_NEAREST)


def _moved(H: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """`H` followed by a shift of (dx, dy) golden pixels."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]]) @ H


def _shifted(template: np.ndarray, mask: np.ndarray, unit_edges: np.ndarray,
             H_work: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """`H_work` corrected by the shift that phase correlation (Kuglin & Hines 1975) finds
    between the golden's edges and the unit's taken into the golden by it. The silhouette
    a product stands in includes its cast shadow, which moves with the light: the silhouettes'
    fit can be off by more than ECC's reach on thin edges."""
    size = template.shape[::-1]
    to_crop = np.linalg.inv(crop) @ H_work
    weight = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 4.0)
    for sigma in _SHIFT_SIGMAS:
        warped = cv2.warpPerspective(unit_edges, to_crop, size, flags=cv2.INTER_LINEAR)
        a = cv2.GaussianBlur(template, (0, 0), sigma) * weight
        b = cv2.GaussianBlur(warped, (0, 0), sigma) * weight
        window = cv2.createHanningWindow(size, cv2.CV_32F)
        (sx, sy), _ = cv2.phaseCorrelate(a, b, window)
        to_crop = np.array([[1.0, 0.0, -sx], [0.0, 1.0, -sy], [0.0, 0.0, 1.0]]) @ to_crop
    H = crop @ to_crop
    return H / H[2, 2]


def edge_correlation(golden_edges: np.ndarray, region: np.ndarray, unit_edges: np.ndarray,
                     H_work: np.ndarray) -> float:
    """Median over a 4 x 4 grid of tiles of the correlation of the edge images inside
    `region` (golden pixels), the unit's taken into the golden by `H_work`; -1 when fewer
    than half the tiles hold edges. Per tile and the median, so that a defect's edges do
    not make the product look like another one."""
    h, w = golden_edges.shape
    warped = cv2.warpPerspective(unit_edges, H_work, (w, h), flags=cv2.INTER_LINEAR)
    seen = cv2.warpPerspective(np.ones(unit_edges.shape, np.uint8), H_work, (w, h),
                               flags=cv2.INTER_NEAREST)
    valid = (region > 0) & (cv2.erode(seen, np.ones((9, 9), np.uint8)) > 0)
    if valid.sum() < 0.5 * max(1, int(np.count_nonzero(region))):
        return -1.0
    return median_tile_ncc(golden_edges, warped, valid, tiles=_TILES, min_std=_MIN_TILE_EDGES,
                           min_tiles=_TILES * _TILES // 2)
