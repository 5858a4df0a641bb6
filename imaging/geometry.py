"""Homography geometry shared by registration and card detection."""

from __future__ import annotations

import numpy as np


def homography_jacobian(H: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(2, 2) derivative of the homography's mapping at `point` (x, y): how it stretches there."""
    x, y = point
    denominator = H[2, 0] * x + H[2, 1] * y + H[2, 2]
    mapped = (H[:2, :2] @ np.asarray(point, np.float64) + H[:2, 2]) / denominator
    return (H[:2, :2] - np.outer(mapped, H[2, :2])) / denominator
