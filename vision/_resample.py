"""Resampling helpers shared by the pipeline stages."""

from __future__ import annotations

import cv2
import numpy as np


def shrink_to_long_side(image: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """Area-filtered copy with its long side at most `long_side`, and the exact scale used.

    The image itself is returned (scale 1) when it is already small enough. The scale is the
    achieved one (new width / old width), which differs from the asked one by rounding.
    """
    h, w = image.shape[:2]
    if max(h, w) <= long_side:
        return image, 1.0
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, small.shape[1] / w
