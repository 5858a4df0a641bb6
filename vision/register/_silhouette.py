"""The product on the table: its silhouette, found by colour.

The table is the photo's dominant light colour; the product is the largest blob inside the
table that is not table (the colour cards ignored). The silhouette bounds where features are
detected, gives :func:`product_mask`, and is what the outline fallback registers by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from vision.register._features import GoldenFeatures

_TABLE_DELTA_E = 10.0  # CIELUV distance from the table colour within which a pixel is table
MIN_PRODUCT_FRACTION = 0.01  # of the working image: a smaller blob is not the product
# A product stands clearly on a distinct background when the table surrounds it and it is the
# one object there (see _stands_on_table). Chosen on the renders (testkit.scenes: ring 0.99-1.0,
# share 0.67-1.0) and on DeepPCB's "tune" half (boards that fill the frame: ring 0.46-1.0,
# share 0.22-0.88, never both above these).
_MIN_RING_TABLE = 0.95  # of a ring around the product's hull that is table
_MIN_PRODUCT_SHARE = 0.6  # of everything inside the table's hull that is not table
_RING_FRACTION = 0.03  # the ring's width, of the long side
_MIN_CUT_PRODUCT_SHARE = 0.9  # the same share, for a product the frame cuts (no whole ring)
# A table is one piece: of the pixels of the table's colour, its largest connected piece holds
# at least this share. Renders with a product found on the table (testkit.randomised, 26
# photos): 0.987-1.0; DeepPCB goldens the old tests took for a product on a table: striped
# boards 92000001-92000101 0.40-0.45 (their default region was one trace, 11% of the board,
# and 30 of the tune half's 90 missed defects lay outside it), others 0.39-0.79, a few 0.9-1.0.
_MIN_TABLE_CONNECTED = 0.9
# The lighter half's mode is the table only where it covers this much of the photo: on the
# tune split of benchmarks/eval_randomised.py, 0.31-0.83 where a product was found on it;
# 0.00-0.16 where it was the colour of a product lighter than its dark table (13 photos).
_MIN_TABLE_SHARE = 0.2
_WHOLE_PHOTO_MODES = 5  # table colour candidates from the whole photo's histogram
_DARK_TABLE_SMOOTHING = 2.0  # Gaussian sigma, half-working pixels, for those candidates
# A product found on a table colour from the whole photo (not the lighter half's) covers at
# most this fraction of the frame; more is a table on the floor around it.
_MAX_DARK_TABLE_PRODUCT = 0.4


def _table_colour(luv: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
    """CIELUV of the table: the most common colour among the photo's lighter pixels.

    The table is light and uniform and fills more of the lighter half than any product
    (the floor around it is dark), so the mode of a coarse colour histogram there finds it.
    """
    lightness = np.clip(luv[..., 0] * 2.55, 0, 255).astype(np.uint8)
    if not valid.any():
        return None
    threshold, _ = cv2.threshold(lightness[valid], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    modes = _modes(luv[valid & (lightness > threshold)], 1)
    return modes[0] if modes else None


def _near(luv: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Whether each CIELUV pixel (..., 3) lies within _TABLE_DELTA_E of `colour`."""
    difference = luv - colour
    return np.einsum("...k,...k->...", difference, difference) < _TABLE_DELTA_E**2


def _share_near(luv: np.ndarray, valid: np.ndarray, colour: np.ndarray) -> float:
    """The fraction of the valid pixels within _TABLE_DELTA_E of `colour`."""
    return float(_near(luv[valid], colour).mean())


def _modes(pixels: np.ndarray, count: int) -> list[np.ndarray]:
    """The `count` most common colours of (N, 3) CIELUV `pixels` (coarse histogram bins, each
    the median of its bin and its neighbours), fewer when the pixels run out."""
    if len(pixels) == 0:  # a flat photo: no table to find
        return []
    # Channels as rows (3, N): numpy reduces contiguous rows several times faster.
    pixels = np.ascontiguousarray(pixels.T)
    bins = np.floor(pixels / np.array([[4.0], [3.0], [3.0]], np.float32)).astype(np.int32)
    bins -= bins.min(axis=1, keepdims=True)
    extent = bins.max(axis=1) + 1
    keys = (bins[0] * extent[1] + bins[1]) * extent[2] + bins[2]
    counts = np.bincount(keys)
    modes = []
    for _ in range(count):
        key = int(np.argmax(counts))
        if counts[key] == 0:
            break
        mode = np.array([[key // (extent[1] * extent[2])], [key // extent[2] % extent[1]],
                         [key % extent[2]]], np.int32)
        near = np.all(np.abs(bins - mode) <= 1, axis=0)
        modes.append(np.median(pixels[:, near], axis=1))
        counts[np.unique(keys[near])] = 0
    return modes


def _convex_hull(mask: np.ndarray) -> np.ndarray:
    """Convex hull of a uint8 mask's nonzero pixels (cv2.convexHull's points).

    From the outer contours' pixels: every corner of the hull lies on them, and there are a
    few hundred of them instead of the hundred thousand pixels of a table (3 ms -> 0.5 ms).
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.convexHull(np.concatenate(contours))


def product_blob(rgb: np.ndarray, ignore_mask: np.ndarray | None) -> np.ndarray | None:
    """uint8 mask (1 on the product) at half the size of `rgb`, or None when no product
    stands clearly on a distinct background (:func:`_stands_on_table`).

    The product is the largest blob that is not table inside the table's convex hull (the
    floor lies outside it, the colour card is ignored). Half the working size is plenty for a
    silhouette, and 4x cheaper; the area filter also blurs away noise and fine texture such
    as a weave.
    """
    size = (rgb.shape[1] // 2, rgb.shape[0] // 2)
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if ignore_mask is not None:
        ignore_mask = cv2.resize(ignore_mask, size, interpolation=cv2.INTER_NEAREST)
    h, w = rgb.shape[:2]
    # CIELUV rather than CIELAB: as uniform for this purpose, and 15x faster in OpenCV 5.
    # 8-bit coding undone: L 0-100, u and v signed.
    luv = cv2.cvtColor(rgb, cv2.COLOR_RGB2Luv).astype(np.float32)
    luv = luv * np.array([100 / 255, 354 / 255, 262 / 255], np.float32) - np.array(
        [0.0, 134.0, 140.0], np.float32)
    valid = np.ones((h, w), bool) if ignore_mask is None else ignore_mask > 0
    table_colour = _table_colour(luv, valid)
    if table_colour is None:
        return None
    product = _product_on(luv, valid, ignore_mask, table_colour)
    if product is not None or _share_near(luv, valid, table_colour) >= _MIN_TABLE_SHARE:
        return product
    # The lighter half's colour covers too little of the photo to be a table: a product
    # lighter than its table (a pale moulded part on slate, a print on dark felt). The
    # table is then among the most common colours of the whole photo (with the floor and the
    # product), smoothed so that a speckled table is one colour: the first under which a
    # product stands on a table, unless that "product" is the table on its floor.
    smooth = cv2.GaussianBlur(luv, (0, 0), _DARK_TABLE_SMOOTHING)
    for colour in _modes(smooth[valid], _WHOLE_PHOTO_MODES):
        if np.linalg.norm(colour - table_colour) < _TABLE_DELTA_E:
            continue
        product = _product_on(smooth, valid, ignore_mask, colour)
        if product is not None and product.mean() <= _MAX_DARK_TABLE_PRODUCT:
            return product
    return None


def _product_on(luv: np.ndarray, valid: np.ndarray, ignore_mask: np.ndarray | None,
                table_colour: np.ndarray) -> np.ndarray | None:
    """:func:`product_blob` for one candidate table colour: the product, or None."""
    h, w = valid.shape
    table = cv2.morphologyEx(_near(luv, table_colour).astype(np.uint8), cv2.MORPH_OPEN,
                             np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(table, connectivity=8)
    if count < 2:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    if areas.max() < _MIN_TABLE_CONNECTED * areas.sum():
        # The table colour lies in pieces of a size: a flat subject's own background between
        # its stripes or traces, not a table around a product.
        return None
    table = (labels == 1 + np.argmax(areas)).astype(np.uint8)
    hull = np.zeros_like(table)
    cv2.fillConvexPoly(hull, _convex_hull(table), 1)
    blobs = hull & (1 - table)
    if ignore_mask is not None:
        blobs &= (cv2.erode(ignore_mask, np.ones((5, 5), np.uint8)) > 0).astype(np.uint8)
    blobs = cv2.morphologyEx(blobs, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    if count < 2:
        return None
    largest = 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])
    if stats[largest, cv2.CC_STAT_AREA] < MIN_PRODUCT_FRACTION * h * w:
        return None
    product = (labels == largest).astype(np.uint8)
    if not _stands_on_table(product, table, blobs, valid):
        return None
    return product


def _stands_on_table(product: np.ndarray, table: np.ndarray, not_table: np.ndarray,
                     valid: np.ndarray) -> bool:
    """True when `product` is an object on a distinct background, not the largest piece of a
    subject that fills the frame (a circuit board's traces, a close-up, a street).

    Two tests: the table surrounds the product (a ring around its convex hull is table) and
    the product is the one object on it (most of what is not table inside the table's hull).
    On a flat subject the "table" is the subject's own background colour, which runs between
    its features: the ring around the largest feature is half other features, and that
    feature is a fraction of them all.
    """
    share = float(product.sum()) / max(1.0, float(not_table.sum()))
    if runs_out_of_frame(product):
        # The frame cuts the ring (a unit photographed too close): the product must then be
        # all that is not table.
        return share >= _MIN_CUT_PRODUCT_SHARE
    hull = np.zeros_like(product)
    cv2.fillConvexPoly(hull, _convex_hull(product), 1)
    width = max(3, int(_RING_FRACTION * max(product.shape)))
    ring = (cv2.dilate(hull, np.ones((width, width), np.uint8)) > 0) & (hull == 0) & valid
    if not ring.any() or float(table[ring].mean()) < _MIN_RING_TABLE:
        return False
    return share >= _MIN_PRODUCT_SHARE


def runs_out_of_frame(blob: np.ndarray | None) -> bool:
    """True when the product found on the table (:func:`product_blob`) reaches the frame.

    Within 3 of the blob's (half-working) pixels: the table's hull and the morphological
    opening leave a cut product's blob a pixel or two short of the edge.
    """
    if blob is None:
        return False
    band = 3
    return bool(blob[:band].any() or blob[-band:].any() or blob[:, :band].any()
                or blob[:, -band:].any())


def product_mask(golden: GoldenFeatures) -> np.ndarray | None:
    """The product on the golden photo: a bool mask at working resolution, or None.

    The convex hull of the largest object on the table (colour card ignored), the same
    silhouette the outline fallback registers by. None when the photo shows no table around
    a product (a close-up, a flat scan): then the whole photo is the product.
    """
    blob = golden.product_blob
    if blob is None:
        return None
    hull = _convex_hull(blob)
    mask = np.zeros_like(blob)
    cv2.fillConvexPoly(mask, hull, 1)
    h, w = golden.colour.shape[:2]
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST) > 0
