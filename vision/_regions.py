"""Hysteresis thresholding shared by the defect finders (the maps' and the model's)."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
from scipy import ndimage


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


def label_joined(mask: np.ndarray, join_gap_px: int) -> tuple[int, np.ndarray]:
    """Label `mask`'s pixels so that pieces with a gap of at most `join_gap_px` share a label.

    A scratch the map shows as dashes, or a speck with a ragged edge, is one defect to the
    person reading the report: it gets one region, with one box. The labels come from the mask
    grown by ceil(gap / 2) px on every side, but only the mask's own pixels carry them, so areas
    and boxes stay those of the evidence. Returns (number of labels including the background 0,
    int32 labels); ``join_gap_px=0`` is plain 8-connectivity.
    """
    mask = (mask > 0).astype(np.uint8)
    if join_gap_px <= 0:
        return cv2.connectedComponents(mask, connectivity=8)
    radius = (join_gap_px + 1) // 2
    grown = cv2.dilate(mask, np.ones((2 * radius + 1,) * 2, np.uint8))
    n, labels = cv2.connectedComponents(grown, connectivity=8)
    labels[mask == 0] = 0
    return n, labels


def joined_regions(mask: np.ndarray, join_gap_px: int
                   ) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray, int]]:
    """The regions of :func:`label_joined`: (x, y, w, h) box, pixels within it (bool), area."""
    if join_gap_px < 0:
        raise ValueError(f"join_gap_px must be at least 0; got {join_gap_px}")
    n, labels = label_joined(mask, join_gap_px)
    areas = np.bincount(labels.ravel(), minlength=n)
    for label, box in enumerate(ndimage.find_objects(labels, max_label=n - 1), start=1):
        if box is None:
            continue
        y, x = box[0].start, box[1].start
        yield ((x, y, box[1].stop - x, box[0].stop - y), labels[box] == label,
               int(areas[label]))
