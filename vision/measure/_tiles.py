"""Square tiles of an image, each tile's pixels in a row: the local statistics (medians,
quartiles) of the colour measures run along contiguous memory, one call for every tile."""

from __future__ import annotations

import numpy as np


def tile_pixels(image: np.ndarray, t: int) -> np.ndarray:
    """(..., rows, cols, t * t): the pixels of each t x t tile of `image` (..., rows * t,
    cols * t) in a row."""
    *lead, height, width = image.shape
    rows, cols = height // t, width // t
    return image.reshape(*lead, rows, t, cols, t).swapaxes(-3, -2).reshape(
        *lead, rows, cols, t * t)
