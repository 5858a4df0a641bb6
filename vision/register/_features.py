"""The copies of a photo that registration works on, and their SIFT features (step 1).

Each photo is reduced once to a *fine* luminance copy (long side up to FINE_SIZE, for the
template refinement) and from that to a *working* copy (long side WORKING_SIZE) that features
are detected on; every scale counts those pixels per full-resolution pixel. The golden photo's
share (:class:`GoldenFeatures`) is made once and reused for every unit; a unit's share
(:class:`UnitFeatures`) needs nothing of the golden's.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import cv2
import numpy as np

from imaging.resample import shrink_to_long_side
from vision.register._checks import highpass
from vision.register._silhouette import product_blob

WORKING_SIZE = 1024
"""Long side, in pixels, of the copies that features are detected on."""

FINE_SIZE = 2048
"""Long side, in pixels, of the copies on which the homography is polished by template
matching (a 12 MP photo is refined at half resolution, a 2 MP photo at full resolution)."""

# Features are first detected on a copy this many times smaller than the working grey, and on
# the working grey itself only when those register the unit with fewer than
# _registration._COARSE_MIN_INLIERS inliers, or not at all. OpenCV's SIFT doubles its
# input before building the pyramid, so the smaller copy still yields features down to about
# one working pixel of scale, at a quarter of the cost.
_COARSE_SHRINK = 2
_GRID = 8
_FEATURE_BOX_MARGIN = 0.15  # of the long side, around the product's box (_detect_around)


@dataclasses.dataclass(frozen=True)
class GoldenFeatures:
    """The golden photo's registration work, computed once and reused for every unit."""

    shape: tuple[int, int]  # full-resolution (height, width)
    scale: float  # working pixels per full-resolution pixel
    grey: np.ndarray  # working-resolution luminance, uint8
    points: np.ndarray  # (N, 2) float32 keypoint positions, working pixels
    descriptors: np.ndarray  # (N, 128) float32 SIFT descriptors
    textured_cells: np.ndarray  # (_GRID, _GRID) bool: cells with enough keypoints to count
    ignore_mask: np.ndarray | None  # working resolution, 0 where the photo is ignored
    fine: np.ndarray  # luminance at up to FINE_SIZE, uint8, for template refinement
    fine_scale: float  # fine pixels per full-resolution pixel
    colour: np.ndarray | None = None  # working-resolution RGB, for the outline fallback
    # product_blob of `colour` (half working resolution); None: no product on a table
    product_blob: np.ndarray | None = None
    detection_shrink: int = 1  # `points` were detected on a copy this many times smaller

    @functools.cached_property
    def full_detail(self) -> GoldenFeatures:
        """The same golden with its features detected on the working grey itself (the
        second, slower attempt of :func:`register`); made on first use and kept."""
        if self.detection_shrink == 1:
            return self
        points, descriptors = _detect_around(self.grey, self.ignore_mask, self.product_blob)
        return dataclasses.replace(self, points=points, descriptors=descriptors,
                                   textured_cells=_textured_cells(points, self.grey.shape),
                                   detection_shrink=1)

    @functools.cached_property
    def detail(self) -> np.ndarray:
        """:func:`highpass` of `grey`, made on first use and kept for every later unit.
        (cached_property writes the instance's __dict__, which a frozen dataclass allows.)
        Shared by every unit: never hand it to an OpenCV call that may write into its inputs
        (OpenCV ignores numpy's read-only flag; see ``_registration._near_aligned``)."""
        return highpass(self.grey)


@dataclasses.dataclass(frozen=True)
class UnitFeatures:
    """A unit photo's share of registration, which needs nothing of the golden's."""

    shape: tuple[int, int]  # full-resolution (height, width)
    grey: np.ndarray  # working-resolution luminance, uint8
    scale: float  # working pixels per full-resolution pixel
    fine: np.ndarray  # luminance at up to FINE_SIZE, uint8, for template refinement
    fine_scale: float  # fine pixels per full-resolution pixel
    ignore_mask: np.ndarray | None  # working resolution, 0 where the photo is ignored
    points: np.ndarray  # (N, 2) float32 keypoint positions, working pixels
    descriptors: np.ndarray  # (N, 128) float32 SIFT descriptors
    # product_blob of the working colour copy (half working resolution), or None
    product_blob: np.ndarray | None = None
    detection_shrink: int = 1  # as GoldenFeatures.detection_shrink
    colour: np.ndarray | None = None  # working-resolution RGB, for the shape fallback

    @functools.cached_property
    def full_detail(self) -> UnitFeatures:
        """These features detected on the working grey itself (see GoldenFeatures)."""
        if self.detection_shrink == 1:
            return self
        points, descriptors = _detect_around(self.grey, self.ignore_mask, self.product_blob)
        return dataclasses.replace(self, points=points, descriptors=descriptors,
                                   detection_shrink=1)

    @functools.cached_property
    def detail(self) -> np.ndarray:
        """:func:`highpass` of `grey`: the identity check's view of the unit (the identity
        warp would reproduce `grey` itself). Made on first use, so a caller waiting for the
        golden can make it meanwhile; read-only like GoldenFeatures.detail."""
        return highpass(self.grey)




def _greys(rgb: np.ndarray, working_size: int,
           fine_copy: tuple[np.ndarray, float] | None = None, full_width: int | None = None
           ) -> tuple[np.ndarray, float, np.ndarray, float]:
    """(working grey, its scale, fine grey, its scale): scales are per full-resolution pixel.

    `full_width` is the photo's width when `rgb` is a reduced decode of it (see
    :func:`_full_shape`); the scales then still count full-resolution pixels.
    """
    fine_rgb, fine_scale = fine_copy or shrink_to_long_side(rgb, FINE_SIZE)
    fine_scale *= rgb.shape[1] / (full_width or rgb.shape[1])
    fine = cv2.cvtColor(fine_rgb, cv2.COLOR_RGB2GRAY)
    working, relative = shrink_to_long_side(fine, working_size)
    return working, fine_scale * relative, fine, fine_scale


def _full_shape(rgb: np.ndarray, full_size: tuple[int, int] | None) -> tuple[int, int]:
    """(height, width) of the full-resolution photo that `rgb` shows.

    A photo decoded at a reduced size (``vision.decode.load_image(reduce=2)``, through the
    JPEG's DCT) carries `full_size` (width, height) so that homographies stay in the photo's
    own pixels; without it the array is the photo.
    """
    if full_size is None:
        return rgb.shape[:2]
    width, height = full_size
    return height, width


_SIFT = None


def _sift() -> cv2.SIFT:
    global _SIFT
    if _SIFT is None:
        _SIFT = cv2.SIFT_create(nfeatures=4000)
    return _SIFT


def _ignore_mask(shape: tuple[int, int], scale: float, ignore: Sequence[np.ndarray]
                 ) -> np.ndarray | None:
    """8-bit detection mask (0 = ignore) from polygons given in full-resolution pixels."""
    if not ignore:
        return None
    mask = np.full(shape, 255, np.uint8)
    for polygon in ignore:
        cv2.fillPoly(mask, [np.round(np.asarray(polygon) * scale).astype(np.int32)], 0)
    return mask


def _detect(grey: np.ndarray, mask: np.ndarray | None = None, shrink: int = 1
            ) -> tuple[np.ndarray, np.ndarray]:
    """SIFT keypoint positions (in `grey`'s pixels) and descriptors, detected on `grey` or on
    a copy `shrink` times smaller (block means; the mask shrinks by block minimum, so no
    ignored pixel leaks in)."""
    if shrink > 1:
        h, w = grey.shape[0] // shrink, grey.shape[1] // shrink
        if min(h, w) < 16:
            return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
        grey = cv2.resize(grey[:h * shrink, :w * shrink], (w, h), interpolation=cv2.INTER_AREA)
        if mask is not None:
            mask = _block_minimum(mask[:h * shrink, :w * shrink], shrink)
    keypoints, descriptors = _sift().detectAndCompute(grey, mask)
    if descriptors is None or len(keypoints) == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    points = np.array([kp.pt for kp in keypoints], np.float32)
    if shrink > 1:  # pixel centres: coarse x covers fine (x + 0.5) * shrink - 0.5
        points = (points + 0.5) * shrink - 0.5
    return points, descriptors.astype(np.float32)


def _block_minimum(mask: np.ndarray, shrink: int) -> np.ndarray:
    """A 0/255 mask `shrink` times smaller (its sides divisible by `shrink`): 255 only where
    the whole block is 255. Read from the block means, which an integer-factor area resize
    gives exactly (20x faster than ndarray.min over the blocks)."""
    h, w = mask.shape[0] // shrink, mask.shape[1] // shrink
    block_mean = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
    return np.where(block_mean == 255, np.uint8(255), np.uint8(0))


def _textured_cells(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Grid cells with enough keypoints to count towards the coverage check."""
    return cell_counts(points, shape) >= 3


def cell_counts(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    counts = np.zeros((_GRID, _GRID), np.int32)
    if len(points):
        cx = np.clip((points[:, 0] * _GRID / w).astype(int), 0, _GRID - 1)
        cy = np.clip((points[:, 1] * _GRID / h).astype(int), 0, _GRID - 1)
        np.add.at(counts, (cy, cx), 1)
    return counts


def prepare_golden_features(
    golden: np.ndarray, *, ignore: Sequence[np.ndarray] = (), working_size: int = WORKING_SIZE,
    full_size: tuple[int, int] | None = None,
) -> GoldenFeatures:
    """Detect the golden photo's features once, for any number of units.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray
        The golden photo, RGB, EXIF-oriented.
    ignore : sequence of (K, 2) arrays, optional
        Polygons (full-resolution pixels) whose features must not drive the alignment, such
        as the colour card: it is not part of the product and may lie elsewhere in the unit
        photo.
    working_size : int, optional
        Long side of the copy that features are detected on.
    full_size : (width, height), optional
        The photo's size when `golden` is a reduced decode of it; positions (the `ignore`
        polygons, the homographies of :func:`register`) are then in the photo's pixels.
    """
    shape = _full_shape(golden, full_size)
    fine_copy = shrink_to_long_side(golden, FINE_SIZE)
    grey, scale, fine, fine_scale = _greys(golden, working_size, fine_copy, shape[1])
    ignore_mask = _ignore_mask(grey.shape, scale, ignore)
    colour = _working_colour(golden, grey.shape, fine_copy)
    blob = product_blob(colour, ignore_mask)
    points, descriptors = _detect_around(grey, ignore_mask, blob, _COARSE_SHRINK)
    return GoldenFeatures(shape, scale, grey, points, descriptors,
                          _textured_cells(points, grey.shape), ignore_mask, fine, fine_scale,
                          colour, blob, _COARSE_SHRINK)


def prepare_unit_features(
    unit: np.ndarray, *, ignore: Sequence[np.ndarray] = (), working_size: int = WORKING_SIZE,
    fine_copy: tuple[np.ndarray, float] | None = None, full_size: tuple[int, int] | None = None,
) -> UnitFeatures:
    """Detect a unit photo's features (the parameters are those of :func:`register`).

    Independent of the golden photo, so a caller holding both photos can run it beside
    :func:`prepare_golden_features` (OpenCV releases the GIL) and pass it to :func:`register`.
    """
    fine_copy = fine_copy or shrink_to_long_side(unit, FINE_SIZE)
    shape = _full_shape(unit, full_size)
    grey, scale, fine, fine_scale = _greys(unit, working_size, fine_copy, shape[1])
    ignore_mask = _ignore_mask(grey.shape, scale, ignore)
    colour = _working_colour(unit, grey.shape, fine_copy)
    blob = product_blob(colour, ignore_mask)
    points, descriptors = _detect_around(grey, ignore_mask, blob, _COARSE_SHRINK)
    return UnitFeatures(shape, grey, scale, fine, fine_scale, ignore_mask, points,
                        descriptors, blob, _COARSE_SHRINK, colour)


def _detect_around(grey: np.ndarray, mask: np.ndarray | None, blob: np.ndarray | None,
                   shrink: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_detect` on the product's box (the blob's, plus a margin) when a product was
    found on a table, else on the whole photo; positions in `grey`'s pixels either way.

    Only the product's features can be right: the table under it and the card move between
    photo sessions (the card is masked anyway). SIFT's cost is its area, and the product
    covered 16-39% of the bench photos: 85 -> 30 ms per photo.
    """
    if blob is None:
        return _detect(grey, mask, shrink)
    h, w = grey.shape
    ys, xs = np.nonzero(blob)
    sy, sx = h / blob.shape[0], w / blob.shape[1]
    margin = _FEATURE_BOX_MARGIN * max(h, w)
    y0, y1 = max(0, int(ys.min() * sy - margin)), min(h, int((ys.max() + 1) * sy + margin))
    x0, x1 = max(0, int(xs.min() * sx - margin)), min(w, int((xs.max() + 1) * sx + margin))
    points, descriptors = _detect(grey[y0:y1, x0:x1],
                                  None if mask is None else mask[y0:y1, x0:x1], shrink)
    return points + np.array([x0, y0], np.float32), descriptors


def _working_colour(rgb: np.ndarray, shape: tuple[int, int],
                    fine_copy: tuple[np.ndarray, float] | None = None) -> np.ndarray:
    """RGB copy with the working grey's geometry (same resizing path as :func:`_greys`)."""
    fine_rgb, _ = fine_copy or shrink_to_long_side(rgb, FINE_SIZE)
    if fine_rgb.shape[:2] == shape:
        return fine_rgb
    return cv2.resize(fine_rgb, shape[::-1], interpolation=cv2.INTER_AREA)
