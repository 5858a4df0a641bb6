"""Outline fallback (step 8 of the method): the product's silhouette on the table, for products
whose own texture gives too few distinctive features (smooth gradients, fine periodic fabric).

The outline quadrilateral's corner pairings are the candidates; ECC (Evangelidis & Psarakis
2008) refines them coarse to fine, and the products' insides must then correlate.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from imaging.geometry import homography_jacobian
from vision.register._checks import corners_moved, highpass, plausible, valid_pixels
from vision.register._dense import (
    crop_warp_homography,
    ecc_level_fit,
    ecc_levels,
    tile_correlation,
)
from vision.register._features import GoldenFeatures
from vision.register._silhouette import MIN_PRODUCT_FRACTION

_BORDER_PX = 2.0  # half-working pixels: an outline edge this close to the frame is the frame
_OUTLINE_REFINED = 4  # candidates refined past ECC's coarsest level, best first
# The refined pairing that wins must beat every other one that puts the product elsewhere
# (more than _OUTLINE_SAME_PX off at its corners) by this much interior correlation: a tie is
# no registration. The right way round won by 0.06-0.12 on every weave seen (the fabrics of
# eval_registration.py and eval_randomised.py's tune split), so a wider margin refuses them.
OUTLINE_MIN_MARGIN = 0.03
_OUTLINE_SAME_PX = 4.0
_MAX_ANISOTROPY = 1.35  # stretch ratio of a ~42 degree tilt (1 / cos), beyond hand-held
OUTLINE_MIN_SCORE = 0.5  # interior high-pass correlation an outline registration must reach
# The unit's silhouette taken into the golden must cover the golden's this well (intersection
# over union, where the unit photo shows): ECC's fit starts from the outline but is free to
# wander, and a periodic weave correlates as well a period, or a whole product, away.
OUTLINE_MIN_OVERLAP = 0.85


def _product_outline(blob: np.ndarray | None, full_width: int,
                     side_ratios: Sequence[float] = ()) -> list[np.ndarray]:
    """Candidate quadrilaterals (4, 2) of the product's outline, working pixels.

    `blob` is the product, :func:`product_blob` of the working colour copy, whose width is
    `full_width`. Its outline is fitted by straight lines; edges
    that run along the photo's frame are the frame, not the product. With four product edges
    the corners are their intersections; with three (one side cut off by the frame) the
    fourth is guessed at each of `side_ratios` (cut-off side / middle side, from the golden's
    outline) and left to the refinement.
    Corners go round in the same sense in every photo (positive signed area in pixel
    coordinates), so that only the starting corner is left to choose.
    """
    if blob is None:
        return []
    h, w = blob.shape
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    hull_points = cv2.convexHull(contour.astype(np.float32))
    polygon = cv2.approxPolyDP(hull_points, 0.01 * cv2.arcLength(hull_points, True), True)
    polygon = polygon.reshape(-1, 2).astype(np.float64)
    lines = []  # (point, direction) of each product edge, in order around the outline
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        length = np.linalg.norm(b - a)
        if length < 0.05 * max(h, w):
            continue
        on_frame = [min(p[0], p[1], w - 1 - p[0], h - 1 - p[1]) < _BORDER_PX for p in (a, b)]
        if all(on_frame):
            continue
        # Fit the line to the contour pixels along the middle of the edge, for sub-pixel
        # corners (the polygon's vertices are where the approximation cut the corners).
        direction = (b - a) / length
        normal = np.array([-direction[1], direction[0]])
        along = (contour - a) @ direction
        across = np.abs((contour - a) @ normal)
        near = (across < 3.0) & (along > 0.1 * length) & (along < 0.9 * length)
        if near.sum() >= 10:
            vx, vy, x0, y0 = cv2.fitLine(contour[near].astype(np.float32), cv2.DIST_HUBER,
                                         0, 0.01, 0.01).ravel()
            direction, a = np.array([vx, vy], np.float64), np.array([x0, y0], np.float64)
        lines.append((a, direction))
    if len(lines) not in (3, 4):
        return []

    def meet(first, second) -> np.ndarray | None:
        (p, d), (q, e) = first, second
        matrix = np.array([d, -e]).T
        if abs(np.linalg.det(matrix)) < 0.2:  # nearly parallel: not neighbouring edges
            return None
        t = np.linalg.solve(matrix, q - p)[0]
        return p + t * d

    if len(lines) == 4:
        corners = [meet(lines[i], lines[(i + 1) % 4]) for i in range(4)]
        if any(c is None for c in corners):
            return []
        quads = [np.array([corners[3], *corners[:3]])]
    else:
        # Three edges: find the middle one (it meets both others).
        quads = []
        for i in range(3):
            first, middle, last = lines[i - 1], lines[i], lines[(i + 1) % 3]
            p, q = meet(first, middle), meet(middle, last)
            if p is None or q is None or meet(first, last) is not None:
                continue
            side = np.linalg.norm(q - p)
            for ratio in side_ratios:
                # The cut-off side: along the other two edges, away from the middle one.
                d1 = first[1] * np.sign(np.dot(first[1], first[0] - p) or 1.0)
                d2 = last[1] * np.sign(np.dot(last[1], last[0] - q) or 1.0)
                quads.append(np.array([p + ratio * side * d1, p, q, q + ratio * side * d2]))
    oriented = []
    for quad in quads:
        area = 0.5 * np.sum(quad[:, 0] * np.roll(quad[:, 1], -1)
                            - np.roll(quad[:, 0], -1) * quad[:, 1])
        if abs(area) < MIN_PRODUCT_FRACTION * h * w:
            continue
        oriented.append((quad if area > 0 else quad[::-1]) * (full_width / w))
    return oriented


def _quad_mask(shape: tuple[int, int], quad: np.ndarray, shrink: float = 0.0) -> np.ndarray:
    """uint8 mask (1 inside) of a quadrilateral, shrunk towards its centre by `shrink`."""
    centre = quad.mean(axis=0)
    points = centre + (1.0 - shrink) * (quad - centre)
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(points * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return mask


# (downscale factor, iterations, Gaussian aperture), coarse to fine. The outline's corners
# start within a few pixels, closer than a quarter-size level leaves them (on the tune split
# of eval_randomised.py it moved fabrics from 1.2-5 px to 4-8 px, fitting the broad shading of
# a changed light): the first level is at half size.
_ECC_LEVELS = ((2, 30, 5), (1, 15, 9))
# The winner's last fit, unblurred: the aperture-9 blur of the last level removes a fine weave,
# which then pins the fit only here (tune fabrics 1.3-2.0 px -> 0.4-0.8 px). Only the winner
# gets it: unblurred, the wrong way round locks onto the weave too, and the pairings no longer
# differ by the outline (tune fabrics 28 and 38 became ties).
_LOCK_LEVEL = (1, 40, 1)


def register_by_outline(golden: GoldenFeatures, unit_blob: np.ndarray | None,
                         unit_grey: np.ndarray, unit_ignore_mask: np.ndarray | None
                         ) -> tuple[np.ndarray, float, str | None] | None:
    """(working-resolution unit -> golden homography, its score, why it is ambiguous or None)
    from the product outlines.

    Each pairing of the unit's outline corners with the golden's (four rotations; a photo is
    never mirrored) is a candidate. ECC then fits the homography coarse to fine, with the
    golden's product region (and a rim of table, so that the outline itself pulls) as the
    template: at the blurred levels the outline and the broad shading converge from the
    corners' few-pixel error; the winner's last, unblurred fit then locks the fine texture,
    by then within a fraction of its period. Every candidate gets the first level, the best
    go on. ECC's correlation ignores gain and offset, so exposure and white balance do not
    matter. The score that decides is the correlation of the products' insides: the outlines
    of two different rectangular products match as well as those of the same one.
    """
    golden_quads = _product_outline(golden.product_blob, golden.grey.shape[1])
    if len(golden_quads) != 1:
        return None
    golden_quad = golden_quads[0]
    sides = np.linalg.norm(golden_quad - np.roll(golden_quad, -1, axis=0), axis=1)
    ratio = float((sides[0] + sides[2]) / (sides[1] + sides[3]))
    # Three edges (the frame cuts the product) leave the fourth side to guess.
    unit_quads = _product_outline(unit_blob, unit_grey.shape[1])
    guessed = not unit_quads
    unit_quads = unit_quads or _product_outline(unit_blob, unit_grey.shape[1],
                                                (ratio, 1.0 / ratio))
    if not unit_quads:
        return None
    golden_valid = valid_pixels(golden.grey, golden.ignore_mask)
    unit_valid = valid_pixels(unit_grey, unit_ignore_mask)
    region = cv2.dilate(_quad_mask(golden.grey.shape, golden_quad), np.ones((9, 9), np.uint8))
    region &= golden_valid
    if not region.any():
        return None
    ys, xs = np.nonzero(region)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    crop = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
    template, mask = golden.grey[y0:y1, x0:x1], region[y0:y1, x0:x1]
    # ecc_level_fit normalises each start: unnormalised, ECC diverged from the right
    # pairing's start on 3 of the tune split's 10 fabrics.
    levels = ecc_levels(template, mask, unit_grey, unit_valid, (*_ECC_LEVELS, _LOCK_LEVEL))

    coarse = []
    for unit_quad in unit_quads:
        for turn in range(4):
            H = cv2.getPerspectiveTransform(np.roll(unit_quad, turn, axis=0).astype(np.float32),
                                            golden_quad.astype(np.float32))
            if plausible(H, unit_grey.shape, golden.grey.shape) is not None:
                continue
            # ECC's warp maps template (crop) pixels to unit pixels.
            fitted = ecc_level_fit(levels[0], np.linalg.inv(H) @ crop)
            if fitted is not None:
                coarse.append((_anisotropy(H, golden_quad.mean(axis=0)) <= _MAX_ANISOTROPY,
                               *fitted))
    if not coarse:
        return None
    # A pairing turned by 90 degrees on an oblong product implies a stretch no tilt of a
    # hand-held phone gives; those go last, then by correlation. Periodic products (fabric)
    # correlate as well turned by 180 degrees at this coarse level, hence all go on.
    coarse = [fitted[1:] for fitted in sorted(coarse, key=lambda f: (not f[0], -f[1]))]
    coarse_homographies = [(rho, crop_warp_homography(crop, warp)) for rho, warp in coarse]
    interior = _quad_mask(golden.grey.shape, golden_quad, shrink=0.06)[y0:y1, x0:x1] & mask
    golden_detail = highpass(template)
    refined = []
    for rho, warp in coarse[:_OUTLINE_REFINED]:
        for level in levels[1:-1]:
            fitted = ecc_level_fit(level, warp)
            if fitted is None:
                break
            warp = fitted[1]
        else:
            H = crop_warp_homography(crop, warp)
            if plausible(H, unit_grey.shape, golden.grey.shape) is not None:
                continue
            refined.append((tile_correlation(golden_detail, interior, unit_grey, warp), H, warp,
                            rho))
    if not refined:
        return None
    refined.sort(key=lambda pair: -pair[0])
    score, best, best_warp, best_rho = refined[0]
    # Verified against the other pairings: a weave, or any product that looks alike turned
    # by half a turn, correlates nearly as well the wrong way round (a fabric registered
    # 468 px off at 0.78 on benchmarks/eval_randomised.py's tune pair 28). Only a clear
    # winner over every pairing that puts the product elsewhere is a registration.
    quad = golden_quad.reshape(-1, 1, 2)
    for other_score, other, *_ in refined[1:]:
        if (corners_moved(quad, best, other) > _OUTLINE_SAME_PX
                and other_score > score - OUTLINE_MIN_MARGIN):
            return best, score, (
                f"the product's outline fits two ways round equally well (interior "
                f"correlation {score:.2f} and {other_score:.2f}): photograph the unit turned "
                "the same way as the golden sample, so that its features can be matched")
    # A guessed side lets the fine fit slide along the cut: a weave half a turn off
    # correlated 0.96 there, the right way round, left 5 px off, 0.53
    # (eval_registration.py's phone pair 19). It must also lead where the outline decides,
    # at the first level.
    if guessed and any(corners_moved(quad, best, other) > _OUTLINE_SAME_PX
                       and other_rho > best_rho - OUTLINE_MIN_MARGIN
                       for other_rho, other in coarse_homographies):
        return best, score, (
            "the product runs out of the unit photo and its outline fits two ways round "
            "equally well: photograph the whole product")
    locked = ecc_level_fit(levels[-1], best_warp)
    if locked is not None:
        H = crop_warp_homography(crop, locked[1])
        locked_score = tile_correlation(golden_detail, interior, unit_grey, locked[1])
        # A polish, not a search: kept when it stays near and the fine detail agrees better.
        if (plausible(H, unit_grey.shape, golden.grey.shape) is None
                and corners_moved(quad, best, H) <= _OUTLINE_SAME_PX and locked_score >= score):
            return H, locked_score, None
    return best, score, None


def silhouette_overlap(golden: GoldenFeatures, unit_blob: np.ndarray | None,
                       unit_shape: tuple[int, int], H_work: np.ndarray) -> float:
    """Intersection over union of the golden's product and the unit's, taken into the golden
    by `H_work` (working unit -> golden pixels), where the unit photo shows; 0 when either
    has no product on a table. Independent of the texture the registration was fitted on."""
    golden_blob = golden.product_blob
    if golden_blob is None or unit_blob is None:
        return 0.0
    to_golden_blob = golden_blob.shape[1] / golden.grey.shape[1]
    from_unit_blob = unit_shape[1] / unit_blob.shape[1]
    H = np.diag([to_golden_blob, to_golden_blob, 1.0]) @ H_work @ np.diag(
        [from_unit_blob, from_unit_blob, 1.0])
    size = golden_blob.shape[::-1]
    warped = cv2.warpPerspective(unit_blob, H, size, flags=cv2.INTER_NEAREST) > 0
    seen = cv2.warpPerspective(np.ones_like(unit_blob), H, size, flags=cv2.INTER_NEAREST) > 0
    golden_seen = (golden_blob > 0) & seen
    union = np.count_nonzero(golden_seen | warped)
    return float(np.count_nonzero(golden_seen & warped) / union) if union else 0.0


def _anisotropy(H: np.ndarray, point: np.ndarray) -> float:
    """Ratio of the largest to the smallest stretch of a homography near `point` (>= 1)."""
    singular = np.linalg.svd(homography_jacobian(H, point), compute_uv=False)
    return float(singular[0] / max(singular[1], 1e-12))
