"""The dimensions stage: the compared region's size on each photo's card plane, in mm."""

from __future__ import annotations

import cv2
import numpy as np

from calibration.detect import CardDetection
from vision.report import DimensionsReport

__all__ = ["dimensions"]


def dimensions(roi_box: tuple[int, int, int, int], H_unit_to_golden: np.ndarray,
               golden_card: CardDetection, unit_card: CardDetection, card_width_mm: float
               ) -> DimensionsReport:
    """The ROI's size on each photo's card plane, in mm: unit against golden.

    The ROI's corners are taken to millimetres through the golden card's homography; the same
    product points, found in the unit photo through the registration, through the unit card's.
    The product is assumed to lie in the card's plane (flat products beside the card).
    """
    x, y, w, h = roi_box
    corners = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)
    in_unit = cv2.perspectiveTransform(corners.reshape(-1, 1, 2),
                                       np.linalg.inv(H_unit_to_golden)).reshape(-1, 2)

    def size_mm(points: np.ndarray, card: CardDetection) -> tuple[float, float, float]:
        mm = cv2.perspectiveTransform(points.reshape(-1, 1, 2),
                                      np.linalg.inv(card.homography)).reshape(-1, 2)
        mm *= card_width_mm / card.chart.size_mm[0]
        width = (np.linalg.norm(mm[1] - mm[0]) + np.linalg.norm(mm[2] - mm[3])) / 2
        height = (np.linalg.norm(mm[3] - mm[0]) + np.linalg.norm(mm[2] - mm[1])) / 2
        area = abs(cv2.contourArea(mm.astype(np.float32)))
        return float(width), float(height), float(area)

    gw_mm, gh_mm, g_area = size_mm(corners, golden_card)
    uw_mm, uh_mm, u_area = size_mm(in_unit, unit_card)
    return DimensionsReport(
        scale_ratio=round(float(np.sqrt(u_area / max(g_area, 1e-9))), 5),
        delta_width_mm=round(uw_mm - gw_mm, 3), delta_height_mm=round(uh_mm - gh_mm, 3),
        golden_width_mm=round(gw_mm, 3), golden_height_mm=round(gh_mm, 3),
        unit_width_mm=round(uw_mm, 3), unit_height_mm=round(uh_mm, 3),
    )
