"""Find the colour card in a photo.

This first version only *locates* a ColorChecker Classic with OpenCV's `cv2.mcc` detector, so
that the pipeline can keep the card out of registration and out of the default region of
interest: two different products photographed beside the same card would otherwise "register"
perfectly on the card. Colour correction from the patches comes with the calibration issue.

OpenCV 5 trap (see ../shared/guides/opencv5.md): `process(image, 1)` takes the number of charts,
not the chart type, and a new detector's chart type must be set explicitly.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from vision._resample import shrink_to_long_side

__all__ = ["CardDetection", "find_card"]

_DETECTION_SIZE = 1024  # long side the detector runs on; corners are mapped back
_FRAME_MARGIN = 0.12  # the detector's box hugs the patches; the card's frame extends beyond


@dataclasses.dataclass(frozen=True)
class CardDetection:
    """Where a colour card is, in full-resolution photo pixels."""

    chart: str
    corners: np.ndarray  # (4, 2) float64, the patch area's corners in detector order
    cost: float  # the detector's fit cost; lower is better

    @property
    def confidence(self) -> float:
        """0-1, from the detector's cost (typical good detections cost < 0.03)."""
        return float(np.exp(-self.cost / 0.05))

    def outline(self, margin: float = _FRAME_MARGIN) -> np.ndarray:
        """The card's outline including its frame: the corners pushed out by `margin`."""
        centre = self.corners.mean(axis=0)
        return centre + (self.corners - centre) * (1.0 + 2.0 * margin)

    def mask(self, shape: tuple[int, int], *, scale: float = 1.0) -> np.ndarray:
        """Boolean mask of the card (with frame) in an image of `shape` at `scale` x full size."""
        mask = np.zeros(shape, np.uint8)
        polygon = np.round(self.outline() * scale).astype(np.int32)
        cv2.fillConvexPoly(mask, polygon, 1)
        return mask.astype(bool)


def find_card(rgb: np.ndarray, *, detection_size: int = _DETECTION_SIZE,
              full_size: tuple[int, int] | None = None) -> CardDetection | None:
    """Locate a ColorChecker Classic 24 in an RGB photo; None when there is none.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
        The photo, RGB, EXIF-oriented.
    detection_size : int, optional
        Long side of the downscaled copy the detector runs on (the detector's cost grows with
        the pixel count, and the card is large enough to be found at ~1 MP).
    full_size : (width, height), optional
        When `rgb` is itself a downscaled copy of a photo (e.g. an analysis copy already made),
        the photo's size: the corners are then returned in the photo's pixels.
    """
    h, w = rgb.shape[:2]
    full_w, full_h = full_size or (w, h)
    small, _ = shrink_to_long_side(rgb, detection_size)
    scale_x, scale_y = small.shape[1] / full_w, small.shape[0] / full_h
    detector = cv2.mcc.CCheckerDetector_create()
    detector.setColorChartType(cv2.mcc.MCC24)
    if not detector.process(np.ascontiguousarray(small[..., ::-1]), 1):
        return None
    checker = detector.getBestColorChecker()
    corners = np.asarray(checker.getBox(), np.float64).reshape(4, 2)
    corners[:, 0] /= scale_x
    corners[:, 1] /= scale_y
    return CardDetection(chart="colorchecker-classic", corners=corners,
                         cost=float(checker.getCost()))
