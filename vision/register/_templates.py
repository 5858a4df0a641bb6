"""Template refinement (step 5 of the method): a homography polished at the fine resolution.

Golden patches around well-spread anchors are found in the warped unit by normalised
cross-correlation with a sub-pixel peak, and the homography is fitted again to them.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.register._features import GoldenFeatures

_PATCH_RADIUS = 12  # template refinement: golden patch of 25 x 25 fine pixels ...
_SEARCH_RADIUS = 6  # ... searched within +-6 fine pixels of where the homography puts it
TEMPLATE_GRID = 14  # at most one template per cell of a 14 x 14 grid
_MIN_TEMPLATE_SCORE = 0.8  # normalised cross-correlation a template match must reach
_MIN_TEMPLATE_MATCHES = 12


def refine_by_templates(golden: GoldenFeatures, unit_fine: np.ndarray, H: np.ndarray,
                         anchors: np.ndarray, *, search: int = _SEARCH_RADIUS
                         ) -> tuple[np.ndarray, float | None]:
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
    search : int, optional
        How far (fine pixels) around where `H` puts a patch it is searched for; a repetitive
        pattern whose period is shorter than twice this can be matched a period off.

    Returns
    -------
    (H, rms) with rms the residual in golden fine pixels, or (H unchanged, None).
    """
    r = _PATCH_RADIUS
    h, w = golden.fine.shape
    margin = r + search + 1
    inside = ((anchors[:, 0] >= margin) & (anchors[:, 0] < w - margin)
              & (anchors[:, 1] >= margin) & (anchors[:, 1] < h - margin))
    anchors = anchors[inside]
    if len(anchors) < _MIN_TEMPLATE_MATCHES:
        return H, None
    # One anchor per grid cell, so the fit is not dominated by the busiest part of the product.
    cells = (np.floor(anchors[:, 1] * TEMPLATE_GRID / h) * TEMPLATE_GRID
             + np.floor(anchors[:, 0] * TEMPLATE_GRID / w)).astype(int)
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


def _parabola_peak(values: np.ndarray) -> float:
    """Sub-sample offset (-0.5..0.5) of the peak of three samples around a maximum."""
    left, centre, right = (float(v) for v in values)
    curvature = left - 2.0 * centre + right
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
