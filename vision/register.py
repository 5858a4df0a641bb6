"""Registration: the homography that puts a unit photo onto the golden photo.

Phone photos of a flat product differ by a homography: any in-plane rotation, zoom, tilt. The
pipeline here is the textbook one, with the checks that make it trustworthy on real photos:

1. SIFT (Lowe 2004) on a working-resolution copy of both photos: rotation- and
   scale-invariant, and its normalised descriptors shrug off exposure and white balance.
2. Lowe's ratio test, then MAGSAC++ (Barath et al. 2020) for the homography.
3. Guided matching: with that first homography, every unit feature is matched again among
   the golden features near where it should land, which recovers the correct matches the
   global ratio test threw away on repetitive or low-contrast texture.
4. Sanity: orientation preserved (a photo is never mirrored), plausible zoom, enough inliers,
   and inliers spread over the golden's textured area. The last one matters: two different
   products photographed beside the same colour card match perfectly *on the card*, and a
   count of inliers alone would call that a registration. (The cards are also masked out of
   matching altogether: they move between photo sessions.)
5. Template refinement at up to FINE_SIZE: golden patches around well-spread inliers are
   found in the warped unit by normalised cross-correlation with a sub-pixel peak, and the
   homography is fitted again. Features alone leave ~1 px errors at the product's corners.
6. Near-aligned fallback for same-size photos whose features do not match (binarised
   circuits): phase correlation for the shift, then the same template refinement on corners.
7. Identity check: on repetitive patterns (circuits, fabric) matching can lock onto a
   neighbouring period, and images from a fixture are often already aligned. When the two
   photos have the same size, the identity is scored like any other candidate and kept when it
   fits at least as well.
8. Lift the homography to full resolution.

The homography maps unit pixels to golden pixels of the full-resolution, EXIF-oriented photos.

References
----------
Lowe, D. G. (2004). Distinctive image features from scale-invariant keypoints. IJCV 60(2),
91-110. doi:10.1023/B:VISI.0000029664.99615.94
Barath, D., Noskova, J., Ivashechkin, M., & Matas, J. (2020). MAGSAC++, a fast, reliable and
accurate robust estimator. CVPR 2020. doi:10.1109/CVPR42600.2020.00138
Kuglin, C. D., & Hines, D. C. (1975). The phase correlation image alignment method. Proc.
IEEE Int. Conf. on Cybernetics and Society, 163-165.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np

from vision._resample import shrink_to_long_side

__all__ = [
    "GoldenFeatures",
    "Registration",
    "prepare_golden_features",
    "register",
    "warp_to_golden",
]

WORKING_SIZE = 1024
"""Long side, in pixels, of the copies that features are detected on."""

FINE_SIZE = 2048
"""Long side, in pixels, of the copies on which the homography is polished by template
matching (a 12 MP photo is refined at half resolution, a 2 MP photo at full resolution)."""

_RATIO = 0.8  # Lowe's ratio test
_PERMISSIVE_RATIO = 0.95  # second pass, for repetitive patterns; must pass guided matching
_MIN_SEED_INLIERS = 8  # a permissive-pass homography needs this many before refinement
_GUIDED_RADIUS_PX = 12.0  # working pixels around the predicted position
_PATCH_RADIUS = 12  # template refinement: golden patch of 25 x 25 fine pixels ...
_SEARCH_RADIUS = 6  # ... searched within +-6 fine pixels of where the homography puts it
_TEMPLATE_GRID = 14  # at most one template per cell of a 14 x 14 grid
_MIN_TEMPLATE_SCORE = 0.8  # normalised cross-correlation a template match must reach
_MIN_TEMPLATE_MATCHES = 12
_RNG_SEED = 20261126
_NEAR_MIN_SCORE = 0.5  # high-pass correlation a near-aligned (template) registration must reach
_RANSAC_THRESHOLD_PX = 2.5  # at working resolution
_MIN_INLIERS = 20
_MIN_COVERAGE = 0.35  # fraction of the golden's textured cells that hold an inlier
_GRID = 8
_MAX_ZOOM = 4.0  # unit-to-golden scale beyond 1/4..4 is not a photo of the same product
_IDENTITY_TOLERANCE = 0.01  # identity wins ties in alignment score


@dataclasses.dataclass(frozen=True)
class GoldenFeatures:
    """The golden photo's registration work, computed once and reused for every unit."""

    shape: tuple[int, int]  # full-resolution (height, width)
    scale: float  # working pixels per full-resolution pixel
    grey: np.ndarray  # working-resolution luminance, uint8
    points: np.ndarray  # (N, 2) float32 keypoint positions, working pixels
    descriptors: np.ndarray  # (N, 128) float32 SIFT descriptors
    textured_cells: np.ndarray  # (_GRID, _GRID) bool: cells with enough keypoints to count
    ignore_mask: np.ndarray | None  # working resolution, 0 where the photo is ignored
    fine: np.ndarray  # luminance at up to FINE_SIZE, uint8, for template refinement
    fine_scale: float  # fine pixels per full-resolution pixel


@dataclasses.dataclass(frozen=True)
class Registration:
    """Outcome of registering a unit photo onto the golden photo."""

    ok: bool
    homography: np.ndarray | None  # 3x3, unit pixel -> golden pixel, full resolution
    inliers: int
    rms_px: float | None  # RMS reprojection error of the inliers, full-resolution pixels
    method: str  # "features", "templates", "identity" or "none"
    coverage: float  # fraction of the golden's textured area holding inliers (1: not measured)
    reason: str | None = None  # why registration failed, in words a person can act on


def _greys(rgb: np.ndarray, working_size: int,
           fine_copy: tuple[np.ndarray, float] | None = None
           ) -> tuple[np.ndarray, float, np.ndarray, float]:
    """(working grey, its scale, fine grey, its scale): scales are per full-resolution pixel."""
    fine_rgb, fine_scale = fine_copy or shrink_to_long_side(rgb, FINE_SIZE)
    fine = cv2.cvtColor(fine_rgb, cv2.COLOR_RGB2GRAY)
    working, relative = shrink_to_long_side(fine, working_size)
    return working, fine_scale * relative, fine, fine_scale


_SIFT = None


def _sift() -> cv2.SIFT:
    global _SIFT
    if _SIFT is None:
        _SIFT = cv2.SIFT_create(nfeatures=4000)
    return _SIFT


def _ignore_mask(shape: tuple[int, int], scale: float, ignore: Sequence[np.ndarray]
                 ) -> np.ndarray | None:
    """8-bit detection mask (0 = ignore) from polygons given in full-resolution pixels."""
    if not ignore:
        return None
    mask = np.full(shape, 255, np.uint8)
    for polygon in ignore:
        cv2.fillPoly(mask, [np.round(np.asarray(polygon) * scale).astype(np.int32)], 0)
    return mask


def _detect(grey: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    keypoints, descriptors = _sift().detectAndCompute(grey, mask)
    if descriptors is None or len(keypoints) == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    points = np.array([kp.pt for kp in keypoints], np.float32)
    return points, descriptors.astype(np.float32)


def _cell_counts(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    counts = np.zeros((_GRID, _GRID), np.int32)
    if len(points):
        cx = np.clip((points[:, 0] * _GRID / w).astype(int), 0, _GRID - 1)
        cy = np.clip((points[:, 1] * _GRID / h).astype(int), 0, _GRID - 1)
        np.add.at(counts, (cy, cx), 1)
    return counts


def prepare_golden_features(
    golden: np.ndarray, *, ignore: Sequence[np.ndarray] = (), working_size: int = WORKING_SIZE
) -> GoldenFeatures:
    """Detect the golden photo's features once, for any number of units.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray
        The golden photo, RGB, EXIF-oriented.
    ignore : sequence of (K, 2) arrays, optional
        Polygons (full-resolution pixels) whose features must not drive the alignment, such
        as the colour card: it is not part of the product and may lie elsewhere in the unit
        photo.
    working_size : int, optional
        Long side of the copy that features are detected on.
    """
    grey, scale, fine, fine_scale = _greys(golden, working_size)
    ignore_mask = _ignore_mask(grey.shape, scale, ignore)
    points, descriptors = _detect(grey, ignore_mask)
    textured = _cell_counts(points, grey.shape) >= 3
    return GoldenFeatures(golden.shape[:2], scale, grey, points, descriptors, textured,
                          ignore_mask, fine, fine_scale)


def _match(golden: GoldenFeatures, unit_desc: np.ndarray, ratio: float) -> np.ndarray:
    """(K, 2) array of (unit index, golden index) passing Lowe's ratio test."""
    if len(golden.descriptors) < 2 or len(unit_desc) < 2:
        return np.zeros((0, 2), np.int64)
    matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
    pairs = matcher.knnMatch(unit_desc, golden.descriptors, k=2)
    good = [(c[0].queryIdx, c[0].trainIdx) for c in pairs
            if len(c) == 2 and c[0].distance < ratio * c[1].distance]
    return np.array(good, np.int64).reshape(-1, 2)


def _robust_homography(golden: GoldenFeatures, unit_points: np.ndarray, matches: np.ndarray,
                       ratio: float):
    """MAGSAC++ on the matches: (H or None, inlier matches, reason when None)."""
    needed = _MIN_INLIERS if ratio == _RATIO else _MIN_SEED_INLIERS
    if len(matches) < needed:
        return None, matches[:0], (
            f"only {len(matches)} features match between the photos (at least {_MIN_INLIERS} "
            "needed): the unit may be another product, or the photo is blurred or too dark")
    src, dst = unit_points[matches[:, 0]], golden.points[matches[:, 1]]
    H, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, _RANSAC_THRESHOLD_PX,
                                 maxIters=10000, confidence=0.9999)
    if H is None or int(mask.sum()) < needed:
        return None, matches[:0], ("no consistent geometry among the matching features: the "
                                   "unit may be another product")
    return H, matches[mask.ravel().astype(bool)], ""


def _guided_refinement(golden: GoldenFeatures, unit_points: np.ndarray, unit_desc: np.ndarray,
                       H: np.ndarray, inliers: np.ndarray):
    """Re-match every unit feature among the golden features near where H puts it.

    The global ratio test throws away most correct matches on repetitive or low-contrast
    texture (every descriptor has a look-alike somewhere). Once an approximate homography is
    known, a look-alike is only a competitor if it is also *nearby*, so matching within a small
    radius recovers many more correspondences and a much better-constrained homography.
    """
    if len(unit_points) == 0:
        return H, inliers
    from scipy.spatial import cKDTree

    tree = cKDTree(golden.points)
    for radius, threshold in ((_GUIDED_RADIUS_PX, 1.5), (_GUIDED_RADIUS_PX / 2, 1.0)):
        projected = cv2.perspectiveTransform(
            unit_points.reshape(-1, 1, 2).astype(np.float64), H).reshape(-1, 2)
        neighbours = tree.query_ball_point(projected, r=radius)
        pairs = []
        for unit_index, near in enumerate(neighbours):
            if not near:
                continue
            distances = np.linalg.norm(golden.descriptors[near] - unit_desc[unit_index], axis=1)
            order = np.argsort(distances)
            if len(order) > 1 and distances[order[0]] >= _RATIO * distances[order[1]]:
                continue
            pairs.append((unit_index, near[order[0]]))
        if len(pairs) < max(_MIN_SEED_INLIERS, len(inliers)):
            break
        pairs = np.array(pairs, np.int64)
        src, dst = unit_points[pairs[:, 0]], golden.points[pairs[:, 1]]
        H_new, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, threshold,
                                         maxIters=5000, confidence=0.9999)
        if H_new is None or int(mask.sum()) < len(inliers):
            break
        H, inliers = H_new, pairs[mask.ravel().astype(bool)]
    return H, inliers


def _scaled(H: np.ndarray, unit_scale: float, golden_scale: float) -> np.ndarray:
    """Lift a working-resolution homography to full resolution."""
    S_unit = np.diag([unit_scale, unit_scale, 1.0])
    S_golden_inv = np.diag([1.0 / golden_scale, 1.0 / golden_scale, 1.0])
    H_full = S_golden_inv @ H @ S_unit
    return H_full / H_full[2, 2]


def _refine_by_templates(golden: GoldenFeatures, unit_fine: np.ndarray, H: np.ndarray,
                         anchors: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Polish a homography by matching small golden patches in the warped unit.

    Features are located to a fraction of a *working* pixel, and they thin out towards the
    product's corners, where the ROI's corners are; an error there is magnified. Here, at the
    fine resolution, a patch of the golden around each well-spread feature is searched for in
    the unit resampled through the current homography (normalised cross-correlation, so a
    change of exposure or white balance does not matter; sub-pixel peak by a parabola fit),
    and the homography is fitted again to those correspondences.

    Parameters
    ----------
    H : (3, 3) ndarray
        Unit fine pixels -> golden fine pixels.
    anchors : (N, 2) ndarray
        Golden fine-pixel positions of inlier features: where the texture is.

    Returns
    -------
    (H, rms) with rms the residual in golden fine pixels, or (H unchanged, None).
    """
    r, search = _PATCH_RADIUS, _SEARCH_RADIUS
    h, w = golden.fine.shape
    margin = r + search + 1
    inside = ((anchors[:, 0] >= margin) & (anchors[:, 0] < w - margin)
              & (anchors[:, 1] >= margin) & (anchors[:, 1] < h - margin))
    anchors = anchors[inside]
    if len(anchors) < _MIN_TEMPLATE_MATCHES:
        return H, None
    # One anchor per grid cell, so the fit is not dominated by the busiest part of the product.
    cells = (np.floor(anchors[:, 1] * _TEMPLATE_GRID / h) * _TEMPLATE_GRID
             + np.floor(anchors[:, 0] * _TEMPLATE_GRID / w)).astype(int)
    _, first = np.unique(cells, return_index=True)
    window = 2 * (r + search) + 1
    golden_points, unit_points = [], []
    H_inv = np.linalg.inv(H)
    for x, y in np.round(anchors[first]).astype(int):
        patch = golden.fine[y - r:y + r + 1, x - r:x + r + 1]
        if patch.std() < 4.0:  # flat: no position information
            continue
        x0, y0 = x - r - search, y - r - search
        shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
        warped = cv2.warpPerspective(unit_fine, shift @ H, (window, window),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        scores = cv2.matchTemplate(warped, patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, (px, py) = cv2.minMaxLoc(scores)
        if best < _MIN_TEMPLATE_SCORE or not (0 < px < 2 * search and 0 < py < 2 * search):
            continue
        dx = px + _parabola_peak(scores[py, px - 1:px + 2]) - search
        dy = py + _parabola_peak(scores[py - 1:py + 2, px]) - search
        golden_points.append((x, y))
        unit_points.append((x + dx, y + dy))
    if len(golden_points) < _MIN_TEMPLATE_MATCHES:
        return H, None
    golden_points = np.array(golden_points, np.float64)
    # Where the golden patch was found in the warped unit, taken back into unit pixels.
    unit_points = cv2.perspectiveTransform(
        np.array(unit_points, np.float64).reshape(-1, 1, 2), H_inv).reshape(-1, 2)
    refined, mask = cv2.findHomography(unit_points, golden_points, cv2.USAC_MAGSAC, 1.0,
                                       maxIters=5000, confidence=0.9999)
    if refined is None or int(mask.sum()) < _MIN_TEMPLATE_MATCHES:
        return H, None
    keep = mask.ravel().astype(bool)
    projected = cv2.perspectiveTransform(unit_points[keep].reshape(-1, 1, 2), refined)
    residual = np.linalg.norm(projected.reshape(-1, 2) - golden_points[keep], axis=1)
    return refined / refined[2, 2], float(np.sqrt(np.mean(residual**2)))


def _near_aligned(golden: GoldenFeatures, unit_grey: np.ndarray, unit_scale: float,
                  unit_fine: np.ndarray, unit_fine_scale: float,
                  unit_ignore_mask: np.ndarray | None):
    """Register photos from a fixture or scanner that are aligned up to a few pixels.

    Repetitive boards and fabrics can defeat descriptor matching (every feature has
    look-alikes), yet such photos often come from a jig, off by a small shift. Phase
    correlation finds the shift; template refinement then fits the homography on every
    textured spot. Accepted only if templates agree and the result correlates well.

    Returns (Registration, working-resolution homography) or None.
    """
    window = cv2.createHanningWindow(golden.grey.shape[::-1], cv2.CV_32F)
    (sx, sy), _ = cv2.phaseCorrelate(_highpass(golden.grey), _highpass(unit_grey), window)
    max_shift = 0.05 * max(golden.grey.shape)
    if np.hypot(sx, sy) > max_shift:
        return None
    H_work = np.array([[1.0, 0.0, -sx], [0.0, 1.0, -sy], [0.0, 0.0, 1.0]])
    H_fine = _scaled(H_work, unit_scale / unit_fine_scale, golden.scale / golden.fine_scale)
    # Corners rather than SIFT blobs: a binarised circuit has few blobs but many corners.
    h, w = golden.fine.shape
    corners = cv2.goodFeaturesToTrack(golden.fine, maxCorners=4 * _TEMPLATE_GRID**2,
                                      qualityLevel=0.01, minDistance=max(h, w) / 60)
    if corners is None:
        return None
    H_fine, rms_fine = _refine_by_templates(golden, unit_fine, H_fine, corners.reshape(-1, 2))
    # Too few templates to fit a homography: the shift alone, if it correlates well enough.
    H_work = _scaled(H_fine, unit_fine_scale / unit_scale, golden.fine_scale / golden.scale)
    if (_plausible(H_work, unit_grey.shape) is not None
            or _alignment_score(golden, unit_grey, H_work, unit_ignore_mask) < _NEAR_MIN_SCORE):
        return None
    registration = Registration(
        ok=True,
        homography=_scaled(H_fine, unit_fine_scale, golden.fine_scale),
        inliers=0,
        rms_px=None if rms_fine is None else rms_fine / golden.fine_scale,
        method="templates",
        coverage=1.0,
    )
    return registration, H_work


def _parabola_peak(values: np.ndarray) -> float:
    """Sub-sample offset (-0.5..0.5) of the peak of three samples around a maximum."""
    left, centre, right = (float(v) for v in values)
    curvature = left - 2.0 * centre + right
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def _plausible(H: np.ndarray, unit_shape: tuple[int, int]) -> str | None:
    """Why a homography cannot be a photo of the same flat product, or None if it can."""
    h, w = unit_shape
    corners = np.array([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]], np.float64)
    mapped = cv2.perspectiveTransform(corners, H).reshape(-1, 2)
    # Every corner must stay in front of the camera: the denominator keeps its sign.
    denominators = corners.reshape(-1, 2) @ H[2, :2] + H[2, 2]
    if np.any(denominators <= 0):
        return "the alignment folds the photo over itself"
    if not cv2.isContourConvex(mapped.astype(np.float32).reshape(-1, 1, 2)):
        return "the alignment folds the photo over itself"
    signed_area = 0.5 * np.sum(mapped[:, 0] * np.roll(mapped[:, 1], -1)
                               - np.roll(mapped[:, 0], -1) * mapped[:, 1])
    if signed_area <= 0:
        return "the alignment mirrors the photo, which a camera cannot do"
    zoom = np.sqrt(signed_area / (w * h))
    if not 1.0 / _MAX_ZOOM <= zoom <= _MAX_ZOOM:
        return f"the implied zoom ({zoom:.2f}x) is not plausible for the same product"
    return None


def _highpass(grey: np.ndarray) -> np.ndarray:
    """Zero-mean local structure: removes exposure and slow shading before comparing."""
    g = grey.astype(np.float32)
    return g - cv2.GaussianBlur(g, (0, 0), 6)


def _alignment_score(golden: GoldenFeatures, unit_grey: np.ndarray, H_work: np.ndarray,
                     unit_ignore_mask: np.ndarray | None) -> float:
    """Normalised cross-correlation of high-passed luminance over the overlap (-1..1).

    Ignored areas (the colour cards, which move between photo sessions) do not count.
    """
    h, w = golden.grey.shape
    warped = cv2.warpPerspective(unit_grey, H_work, (w, h), flags=cv2.INTER_LINEAR)
    unit_valid = (np.full(unit_grey.shape, 255, np.uint8) if unit_ignore_mask is None
                  else unit_ignore_mask)
    valid = cv2.warpPerspective(unit_valid, H_work, (w, h), flags=cv2.INTER_NEAREST)
    if golden.ignore_mask is not None:
        valid = np.minimum(valid, golden.ignore_mask)
    valid = cv2.erode(valid, np.ones((15, 15), np.uint8)) > 0
    if valid.sum() < 0.05 * h * w:
        return -1.0
    a = _highpass(golden.grey)[valid]
    b = _highpass(warped)[valid]
    a -= a.mean()
    b -= b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else -1.0


def register(
    golden: np.ndarray | GoldenFeatures,
    unit: np.ndarray,
    *,
    unit_ignore: Sequence[np.ndarray] = (),
    working_size: int = WORKING_SIZE,
    unit_fine: tuple[np.ndarray, float] | None = None,
) -> Registration:
    """Find the homography mapping `unit` pixels onto `golden` pixels.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray or GoldenFeatures
        The golden photo, or its features from :func:`prepare_golden_features`.
    unit : (H, W, 3) uint8 ndarray
        The unit photo, RGB, EXIF-oriented.
    unit_ignore : sequence of (K, 2) arrays, optional
        Polygons in the unit photo to keep out of matching (see `prepare_golden_features`).
    working_size : int, optional
        Long side of the copies that features are detected on.
    unit_fine : (ndarray, float), optional
        ``shrink_to_long_side(unit, FINE_SIZE)`` when the caller already made it (the
        pipeline shares it with card detection), so the full photo is not shrunk twice.

    Returns
    -------
    Registration
        ``ok`` is False, with a ``reason``, when the unit cannot be put onto the golden
        sample (another product, a blurred photo, too little texture).
    """
    if not isinstance(golden, GoldenFeatures):
        golden = prepare_golden_features(golden, working_size=working_size)
    # FLANN's randomised trees and the robust estimators draw from OpenCV's per-thread RNG:
    # seed it so the same photos always give the same report (re-scoring relies on that).
    cv2.setRNGSeed(_RNG_SEED)
    unit_grey, unit_scale, unit_fine, unit_fine_scale = _greys(unit, working_size, unit_fine)
    unit_ignore_mask = _ignore_mask(unit_grey.shape, unit_scale, unit_ignore)
    unit_points, unit_desc = _detect(unit_grey, unit_ignore_mask)
    candidate, candidate_work, reason = None, None, ""
    # First the strict ratio test; if that leaves too little (repetitive patterns such as
    # fabric, where every descriptor has look-alikes), a permissive pass whose result must
    # then earn its keep through guided matching and the same checks.
    for ratio in (_RATIO, _PERMISSIVE_RATIO):
        matches = _match(golden, unit_desc, ratio)
        H, inliers, reason = _robust_homography(golden, unit_points, matches, ratio)
        if H is None:
            continue
        H, inliers = _guided_refinement(golden, unit_points, unit_desc, H, inliers)
        n_inliers = len(inliers)
        src, dst = unit_points[inliers[:, 0]], golden.points[inliers[:, 1]]
        covered = _cell_counts(dst, golden.grey.shape) > 0
        textured = golden.textured_cells
        coverage = float((covered & textured).sum() / max(1, textured.sum()))
        problem = _plausible(H, unit_grey.shape)
        if n_inliers < _MIN_INLIERS:
            reason = (f"only {n_inliers} features agree on one alignment (at least "
                      f"{_MIN_INLIERS} needed): the unit may be another product")
        elif coverage < _MIN_COVERAGE:
            reason = (f"the features agree only over {coverage:.0%} of the golden's "
                      "detailed area: the unit is probably another product")
        elif problem:
            reason = problem
        else:
            H_fine = _scaled(H, unit_scale / unit_fine_scale, golden.scale / golden.fine_scale)
            H_fine, rms_fine = _refine_by_templates(golden, unit_fine, H_fine,
                                                    dst * (golden.fine_scale / golden.scale))
            if rms_fine is None:  # refinement not possible: keep the feature homography
                projected = cv2.perspectiveTransform(
                    src.reshape(-1, 1, 2).astype(np.float64), H)
                residual = np.linalg.norm(projected.reshape(-1, 2) - dst, axis=1)
                rms_full = float(np.sqrt(np.mean(residual**2))) / golden.scale
            else:
                rms_full = rms_fine / golden.fine_scale
            candidate = Registration(
                ok=True,
                homography=_scaled(H_fine, unit_fine_scale, golden.fine_scale),
                inliers=n_inliers,
                rms_px=rms_full,
                method="features",
                coverage=coverage,
            )
            candidate_work = H
            break

    if candidate is None and unit.shape[:2] == golden.shape:
        near = _near_aligned(golden, unit_grey, unit_scale, unit_fine, unit_fine_scale,
                             unit_ignore_mask)
        if near is not None:
            candidate, candidate_work = near

    if unit.shape[:2] == golden.shape:
        identity_score = _alignment_score(golden, unit_grey, np.eye(3), unit_ignore_mask)
        features_score = (_alignment_score(golden, unit_grey, candidate_work, unit_ignore_mask)
                          if candidate is not None else -1.0)
        if identity_score >= features_score - _IDENTITY_TOLERANCE and identity_score > 0.5:
            return Registration(
                ok=True,
                homography=np.eye(3),
                inliers=candidate.inliers if candidate is not None else 0,
                rms_px=None,
                method="identity",
                coverage=1.0,
            )
    if candidate is not None:
        return candidate
    return Registration(ok=False, homography=None, inliers=0, rms_px=None, method="none",
                        coverage=0.0, reason=reason)


def warp_to_golden(
    unit: np.ndarray, homography: np.ndarray, golden_shape: tuple[int, int], *,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample `unit` into the golden frame: (aligned image, bool mask of the overlap)."""
    h, w = golden_shape
    aligned = cv2.warpPerspective(unit, homography, (w, h), flags=interpolation,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = cv2.warpPerspective(np.full(unit.shape[:2], 255, np.uint8), homography, (w, h),
                                flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    return aligned, valid > 0
