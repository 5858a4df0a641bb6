"""Pictures a person can point at: the golden photo with what changed marked on it."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vision.report import DefectRegion

__all__ = ["dimmed", "overlay"]

_SEVERITY_RGB = {"critical": (220, 20, 60), "major": (255, 140, 0), "minor": (255, 215, 0)}
_ROI_RGB = (30, 144, 255)


def dimmed(image: np.ndarray, amount: float = 0.5) -> np.ndarray:
    """The image faded towards grey: what is shown where nothing could be compared."""
    grey = np.full_like(image, 128)
    return cv2.addWeighted(image, 1.0 - amount, grey, amount, 0.0)


def overlay(
    golden: np.ndarray,
    defect_map: np.ndarray,
    regions: Sequence[DefectRegion],
    roi: tuple[int, int, int, int] | None,
    compared: np.ndarray,
    scale: float = 1.0,
) -> np.ndarray:
    """The golden photo with the defect heat, numbered region boxes and the compared ROI.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray
        Golden photo, RGB.
    defect_map : (H, W) uint8 ndarray
        Defect likelihood 0-255 in golden pixels.
    regions : sequence of DefectRegion
        Boxes to draw, numbered in order (the report's order).
    roi : (x, y, w, h) or None
        The compared region, outlined in blue.
    compared : (H, W) bool ndarray
        Pixels that were compared; the rest is faded so nobody reads meaning into it.
    scale : float, optional
        Picture pixels per golden photo pixel, when `golden` is a smaller copy of the photo
        (a reduced decode, the service's stored pictures): the boxes of `regions` and `roi`
        are in the photo's pixels, as the report gives them.
    """
    out = np.where(compared[..., None], golden, dimmed(golden)).astype(np.uint8)
    heat = defect_map.astype(np.float32) / 255.0
    # Only the part of the map above the candidate threshold is tinted, so the picture stays
    # readable: faint evidence everywhere would hide the real findings.
    alpha = np.clip((heat - 0.35) / 0.4, 0.0, 0.7)[..., None]
    red = np.array([255, 0, 0], np.float32)
    out = (out.astype(np.float32) * (1 - alpha) + red * alpha).astype(np.uint8)
    thickness = max(2, round(max(golden.shape[:2]) / 600))
    def in_picture(box: tuple[int, int, int, int]) -> tuple[int, ...]:
        return tuple(box) if scale == 1.0 else tuple(round(v * scale) for v in box)

    if roi is not None:
        x, y, w, h = in_picture(roi)
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), _ROI_RGB, thickness)
    font_scale = max(0.6, max(golden.shape[:2]) / 1500)
    for number, region in enumerate(regions, start=1):
        x, y, w, h = in_picture(region.bbox)
        pad = 2 * thickness
        colour = _SEVERITY_RGB[region.severity]
        cv2.rectangle(out, (x - pad, y - pad), (x + w + pad, y + h + pad), colour, thickness)
        cv2.putText(out, str(number), (x - pad, max(0, y - 2 * pad)), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, colour, thickness, cv2.LINE_AA)
    return out
