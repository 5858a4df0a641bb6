"""Registration: the homography that puts a unit photo onto the golden photo.

Phone photos of a flat product differ by a homography: any in-plane rotation, zoom, tilt. The
pipeline here is the textbook one, with the checks that make it trustworthy on real photos:

1. SIFT (Lowe 2004) on a working-resolution copy of both photos: rotation- and
   scale-invariant, and its normalised descriptors shrug off exposure and white balance.
2. Lowe's ratio test, then MAGSAC++ (Barath et al. 2020) for the homography.
3. Sanity: orientation preserved (a photo is never mirrored), plausible zoom, enough inliers,
   and inliers spread over the golden's textured area. The last one matters: two different
   products photographed beside the same colour card match perfectly *on the card*, and a
   count of inliers alone would call that a registration.
4. Identity check: on repetitive patterns (circuits, fabric) matching can lock onto a
   neighbouring period, and images from a fixture are often already aligned. When the two
   photos have the same size, the identity is scored like any other candidate and kept when it
   fits at least as well.
5. Lift the homography from working resolution to full resolution.

The homography maps unit pixels to golden pixels of the full-resolution, EXIF-oriented photos.

References
----------
Lowe, D. G. (2004). Distinctive image features from scale-invariant keypoints. IJCV 60(2),
91-110. doi:10.1023/B:VISI.0000029664.99615.94
Barath, D., Noskova, J., Ivashechkin, M., & Matas, J. (2020). MAGSAC++, a fast, reliable and
accurate robust estimator. CVPR 2020. doi:10.1109/CVPR42600.2020.00138
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

__all__ = [
    "GoldenFeatures",
    "Registration",
    "prepare_golden_features",
    "register",
    "warp_to_golden",
]

WORKING_SIZE = 1024
"""Long side, in pixels, of the copies that features are detected on."""

_RATIO = 0.8  # Lowe's ratio test
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


@dataclasses.dataclass(frozen=True)
class Registration:
    """Outcome of registering a unit photo onto the golden photo."""

    ok: bool
    homography: np.ndarray | None  # 3x3, unit pixel -> golden pixel, full resolution
    inliers: int
    rms_px: float | None  # RMS reprojection error of the inliers, full-resolution pixels
    method: str  # "features", "identity" or "none"
    coverage: float  # fraction of the golden's textured area that holds inliers
    reason: str | None = None  # why registration failed, in words a person can act on


def _working_grey(rgb: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    small = rgb
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        # The achieved scale differs from the asked one by rounding; use the exact one.
        scale = small.shape[1] / w
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    return grey, scale


_SIFT = None


def _sift() -> cv2.SIFT:
    global _SIFT
    if _SIFT is None:
        _SIFT = cv2.SIFT_create(nfeatures=4000)
    return _SIFT


def _detect(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keypoints, descriptors = _sift().detectAndCompute(grey, None)
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


def prepare_golden_features(golden: np.ndarray, *, working_size: int = WORKING_SIZE
                            ) -> GoldenFeatures:
    """Detect the golden photo's features once, for any number of units.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray
        The golden photo, RGB, EXIF-oriented.
    working_size : int, optional
        Long side of the copy that features are detected on.
    """
    grey, scale = _working_grey(golden, working_size)
    points, descriptors = _detect(grey)
    textured = _cell_counts(points, grey.shape) >= 3
    return GoldenFeatures(golden.shape[:2], scale, grey, points, descriptors, textured)


def _match(golden: GoldenFeatures, unit_desc: np.ndarray) -> list[tuple[int, int]]:
    if len(golden.descriptors) < 2 or len(unit_desc) < 2:
        return []
    matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
    pairs = matcher.knnMatch(unit_desc, golden.descriptors, k=2)
    good = []
    for candidates in pairs:
        if len(candidates) == 2 and candidates[0].distance < _RATIO * candidates[1].distance:
            good.append((candidates[0].queryIdx, candidates[0].trainIdx))
    return good


def _scaled(H: np.ndarray, unit_scale: float, golden_scale: float) -> np.ndarray:
    """Lift a working-resolution homography to full resolution."""
    S_unit = np.diag([unit_scale, unit_scale, 1.0])
    S_golden_inv = np.diag([1.0 / golden_scale, 1.0 / golden_scale, 1.0])
    H_full = S_golden_inv @ H @ S_unit
    return H_full / H_full[2, 2]


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


def _alignment_score(golden: GoldenFeatures, unit_grey: np.ndarray, H_work: np.ndarray) -> float:
    """Normalised cross-correlation of high-passed luminance over the overlap (-1..1)."""
    h, w = golden.grey.shape
    warped = cv2.warpPerspective(unit_grey, H_work, (w, h), flags=cv2.INTER_LINEAR)
    valid = cv2.warpPerspective(np.full(unit_grey.shape, 255, np.uint8), H_work, (w, h),
                                flags=cv2.INTER_NEAREST)
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
    working_size: int = WORKING_SIZE,
) -> Registration:
    """Find the homography mapping `unit` pixels onto `golden` pixels.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray or GoldenFeatures
        The golden photo, or its features from :func:`prepare_golden_features`.
    unit : (H, W, 3) uint8 ndarray
        The unit photo, RGB, EXIF-oriented.
    working_size : int, optional
        Long side of the copies that features are detected on.

    Returns
    -------
    Registration
        ``ok`` is False, with a ``reason``, when the unit cannot be put onto the golden
        sample (another product, a blurred photo, too little texture).
    """
    if not isinstance(golden, GoldenFeatures):
        golden = prepare_golden_features(golden, working_size=working_size)
    unit_grey, unit_scale = _working_grey(unit, working_size)
    unit_points, unit_desc = _detect(unit_grey)
    matches = _match(golden, unit_desc)

    candidate = None
    reason = (f"only {len(matches)} features match between the photos (at least {_MIN_INLIERS} "
              "needed): the unit may be another product, or the photo is blurred or too dark")
    if len(matches) >= _MIN_INLIERS:
        src = unit_points[[q for q, _ in matches]]
        dst = golden.points[[t for _, t in matches]]
        H, inlier_mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, _RANSAC_THRESHOLD_PX,
                                            maxIters=10000, confidence=0.9999)
        if H is None:
            reason = "no consistent geometry among the matching features: another product?"
        else:
            inliers = inlier_mask.ravel().astype(bool)
            n_inliers = int(inliers.sum())
            covered = _cell_counts(dst[inliers], golden.grey.shape) > 0
            textured = golden.textured_cells
            coverage = float((covered & textured).sum() / max(1, textured.sum()))
            problem = _plausible(H, unit_grey.shape)
            if n_inliers < _MIN_INLIERS:
                reason = (f"only {n_inliers} features agree on one alignment (at least "
                          f"{_MIN_INLIERS} needed): the unit may be another product")
            elif coverage < _MIN_COVERAGE:
                reason = (f"the features agree only over {coverage:.0%} of the golden's "
                          "detailed area (a shared colour card or background?): the unit "
                          "is probably another product")
            elif problem:
                reason = problem
            else:
                projected = cv2.perspectiveTransform(src[inliers].reshape(-1, 1, 2).astype(
                    np.float64), H).reshape(-1, 2)
                residual = np.linalg.norm(projected - dst[inliers], axis=1) / golden.scale
                candidate = Registration(
                    ok=True,
                    homography=_scaled(H, unit_scale, golden.scale),
                    inliers=n_inliers,
                    rms_px=float(np.sqrt(np.mean(residual**2))),
                    method="features",
                    coverage=coverage,
                )
                candidate_work = H

    if unit.shape[:2] == golden.shape:
        identity_score = _alignment_score(golden, unit_grey, np.eye(3))
        features_score = (_alignment_score(golden, unit_grey, candidate_work)
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
