"""Measures against a synthetic pair's known truth, shared by the tests and the eval scripts
(benchmarks/eval_registration.py, eval_verdicts.py)."""

from __future__ import annotations

import cv2
import numpy as np

from calibration.detect import find_card
from testkit.scenes import lab_shift, product_artwork
from vision.compare import register_unit
from vision.prepare import prepare_golden


def register(golden: np.ndarray, unit: np.ndarray):
    """Registration exactly as the pipeline runs it (colour cards kept out of matching)."""
    return register_unit(prepare_golden(golden), unit, find_card(unit))


def roi_corner_error(H_true: np.ndarray, H_est: np.ndarray, roi) -> float:
    """Mean distance (golden px) between ROI corners mapped by the true and estimated homography.

    The ROI corners are taken back into the unit photo with the true homography, then
    forward with the estimated one; a perfect estimate lands on the corners again.
    """
    x, y, w, h = roi
    golden = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)
    unit = cv2.perspectiveTransform(golden.reshape(-1, 1, 2), np.linalg.inv(H_true))
    estimated = cv2.perspectiveTransform(unit, H_est).reshape(-1, 2)
    return float(np.linalg.norm(estimated - golden, axis=1).mean())


def region_hits_mask(regions, mask: np.ndarray) -> bool:
    """True when a reported box covers at least a third of the true defect's pixels."""
    total = mask.sum()
    for region in regions:
        x, y, w, h = region.bbox
        if mask[y:y + h, x:x + w].sum() >= total / 3:
            return True
    return False


def true_delta_e(product: str, delta, seed: int) -> float:
    """CIEDE2000 between the product artwork's mean colour before and after the drift.

    Computed the way the pipeline reads a colour (mean linear RGB, one conversion), on the
    artwork itself, so it is the truth that a perfect camera and alignment would measure.
    """
    from imaging import color

    art = product_artwork(product, 1200, seed=seed).astype(np.float64) / 255.0
    drifted = lab_shift(*delta)(art)
    golden = color.linear_rgb_to_lab(color.srgb_to_linear(art).reshape(-1, 3).mean(axis=0))
    unit = color.linear_rgb_to_lab(color.srgb_to_linear(drifted).reshape(-1, 3).mean(axis=0))
    return float(color.ciede2000(golden, unit))


Box = tuple[int, int, int, int]  # x, y, w, h


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - w * h
    return w * h / union if union > 0 else 0.0


def _centre_inside(a: Box, b: Box) -> bool:
    """The centre of `a` lies inside `b`."""
    cx, cy = a[0] + a[2] / 2, a[1] + a[3] / 2
    return b[0] <= cx <= b[0] + b[2] and b[1] <= cy <= b[1] + b[3]


def boxes_match(region: Box, truth: Box, rule: str) -> float:
    """How well a reported region matches a truth box under `rule` (0: not at all).

    "iou33": DeepPCB's rule, IoU > 0.33. "on_defect": the region is on the defect: IoU >= 0.1,
    or the centre of either box inside the other. The value (the IoU, or a small positive
    number for a centre-inside match with less overlap) orders the greedy matching.
    """
    iou = box_iou(region, truth)
    if rule == "iou33":
        return iou if iou > 0.33 else 0.0
    if rule == "on_defect":
        if iou >= 0.1 or _centre_inside(region, truth) or _centre_inside(truth, region):
            return max(iou, 1e-6)
        return 0.0
    raise ValueError(f'rule must be "iou33" or "on_defect", got {rule!r}')


def match_boxes(regions: list[Box], truth: list[Box], *, rule: str) -> list[tuple[int, int]]:
    """One reported region per truth box, best matches first: [(region index, truth index)]."""
    scored = sorted(((boxes_match(r, t, rule), i, j) for i, r in enumerate(regions)
                     for j, t in enumerate(truth)), reverse=True)
    used_regions, used_truth, pairs = set(), set(), []
    for score, i, j in scored:
        if score > 0 and i not in used_regions and j not in used_truth:
            used_regions.add(i)
            used_truth.add(j)
            pairs.append((i, j))
    return pairs
