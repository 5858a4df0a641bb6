"""Hysteresis thresholding shared by the defect finders (the maps' and the model's)."""

from __future__ import annotations

from collections.abc import Iterator

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
    y0, x0, y1, x1 = label_boxes(labels, n)
    for label in range(1, n):
        if areas[label] == 0:
            continue
        box = np.s_[y0[label]:y1[label], x0[label]:x1[label]]
        yield ((int(x0[label]), int(y0[label]), int(x1[label] - x0[label]),
                int(y1[label] - y0[label])), labels[box] == label, int(areas[label]))


def label_boxes(labels: np.ndarray, n: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(y0, x0, y1, x1), each of length `n`: the half-open bounding box of every label's pixels
    (what ``scipy.ndimage.find_objects`` gives; labels without pixels get an empty box). Written
    with NumPy because importing scipy.ndimage cost ~0.2 s of every `sealcheck compare`."""
    ys, xs = np.nonzero(labels)
    owner = labels[ys, xs]  # the label of each labelled pixel
    y0, x0 = np.full(n, labels.shape[0], np.int64), np.full(n, labels.shape[1], np.int64)
    y1, x1 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    np.minimum.at(y0, owner, ys)
    np.minimum.at(x0, owner, xs)
    np.maximum.at(y1, owner, ys + 1)
    np.maximum.at(x1, owner, xs + 1)
    return y0, x0, y1, x1
