"""Hysteresis thresholding shared by the defect finders (the maps' and the model's)."""

from __future__ import annotations

import cv2
import numpy as np


def hysteresis(seeds: np.ndarray, grown: np.ndarray) -> np.ndarray:
    """The 8-connected components of ``seeds | grown`` that hold a seed, as a uint8 0/1 mask.

    As in Canny's edge detector: a region needs a confident core (`seeds`) and then extends
    over the connected, weaker evidence (`grown`), so it is measured at its real size.
    """
    seeds = seeds > 0
    n, labels = cv2.connectedComponents((seeds | (grown > 0)).astype(np.uint8), connectivity=8)
    seeded = np.zeros(n, bool)
    seeded[np.unique(labels[seeds])] = True
    seeded[0] = False
    return seeded[labels].astype(np.uint8)
