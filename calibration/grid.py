"""The card locator that needs no `cv2.mcc`: a grid of flat quadrilaterals on a dark frame.

:func:`calibration.detect.find_card` tries it after `cv2.mcc`'s passes; it gives only a rough
quadrilateral, which detection then orients and refines like any other.
"""

from __future__ import annotations

import cv2
import numpy as np

from calibration.charts import COLORCHECKER_CLASSIC

__all__ = ["grid_from_centres", "locate_patch_grid"]

def locate_patch_grid(small: np.ndarray) -> list[np.ndarray]:
    """Rough patch-grid quadrilaterals found without `cv2.mcc`, most likely first.

    A colour chart is a grid of flat, similar-sized quadrilaterals separated by a dark frame.
    Flat regions are found as connected areas of low local gradient; those whose outline is a
    convex quadrilateral are patch candidates; candidates of similar area are grouped, and the
    convex hull of a group's centres, reduced to four vertices, gives the corner patches'
    centres. Those are pushed out by half a pitch to the grid's outer corners. Orientation and
    refinement then check the guess like any other.
    """
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    gradient = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    flat = (gradient < 12).astype(np.uint8)
    flat = cv2.morphologyEx(flat, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    contours, _ = cv2.findContours(flat, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    image_area = grey.shape[0] * grey.shape[1]
    patches = []  # (area, centre)
    for contour in contours:
        area = cv2.contourArea(contour)
        if not (image_area * 2e-4 < area < image_area * 0.02):
            continue
        hull = cv2.convexHull(contour)
        hull_area = cv2.contourArea(hull)
        if area < 0.85 * hull_area:
            continue
        poly = cv2.approxPolyDP(hull, 0.06 * cv2.arcLength(hull, True), True)
        if len(poly) != 4:
            continue
        (cx, cy), (rw, rh), _ = cv2.minAreaRect(contour)
        if min(rw, rh) < 0.4 * max(rw, rh):
            continue
        patches.append((area, np.array([cx, cy])))
    if len(patches) < 12:
        return []
    areas = np.array([a for a, _ in patches])
    centres = np.array([c for _, c in patches])
    quads = []
    # Group by area: each patch's group is everything within a factor 1.6 of its area; the
    # biggest groups first (a chart contributes up to 24 similar patches).
    groups = []
    for a in np.unique(np.round(np.log(areas) / np.log(1.25))):
        member = np.abs(np.log(areas) / np.log(1.25) - a) <= 2
        if member.sum() >= 12:
            groups.append(member)
    groups.sort(key=lambda m: -m.sum())
    for member in groups[:3]:
        quad = grid_from_centres(centres[member], np.median(areas[member]))
        if quad is not None:
            quads.append(quad)
    return quads


def grid_from_centres(centres: np.ndarray, patch_area: float) -> np.ndarray | None:
    """Outer corners of a 4 x 6 grid from its patch centres (corner patches must be found).

    Keeps the centres that have a neighbour at about one pitch (patches of a grid do; scattered
    flat areas of a product mostly do not), then takes the convex hull down to four vertices.
    """
    pitch = np.sqrt(patch_area) * 1.1
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    neighbours = ((distances > 0.7 * pitch) & (distances < 1.6 * pitch)).sum(axis=1)
    centres = centres[neighbours >= 2]
    if len(centres) < 12:
        return None
    hull = cv2.convexHull(centres.astype(np.float32))
    corners = cv2.approxPolyDP(hull, 0.2 * pitch, True).reshape(-1, 2).astype(np.float64)
    if len(corners) != 4:
        return None
    # Order the corner centres clockwise and push them out to the grid's outer corners: the
    # centre grid spans (cols - 1) x (rows - 1) pitches, the outer grid adds a patch.
    centre = corners.mean(axis=0)
    order = np.argsort(np.arctan2(corners[:, 1] - centre[1], corners[:, 0] - centre[0]))
    corners = corners[order]
    side_a = np.linalg.norm(corners[1] - corners[0]) + np.linalg.norm(corners[3] - corners[2])
    side_b = np.linalg.norm(corners[2] - corners[1]) + np.linalg.norm(corners[0] - corners[3])
    # The long side spans 5 pitches, the short side 3; outer corners lie 20/44 pitch further.
    chart = COLORCHECKER_CLASSIC
    src = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    H = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    steps_u, steps_v = (chart.cols - 1, chart.rows - 1) if side_a >= side_b else \
        (chart.rows - 1, chart.cols - 1)
    grow = chart.patch_size_mm / 2.0 / chart.patch_pitch_mm
    du, dv = grow / steps_u, grow / steps_v
    outer = np.array([[-du, -dv], [1 + du, -dv], [1 + du, 1 + dv], [-du, 1 + dv]])
    return cv2.perspectiveTransform(outer.reshape(-1, 1, 2), H).reshape(-1, 2)
