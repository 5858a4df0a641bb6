"""Registration: the homography that puts a unit photo onto the golden photo.

Phone photos of a flat product differ by a homography: any in-plane rotation, zoom, tilt. The
pipeline here is the textbook one, with the checks that make it trustworthy on real photos:

1. SIFT (Lowe 2004) on a working-resolution copy of both photos: rotation- and
   scale-invariant, and its normalised descriptors shrug off exposure and white balance.
   Detected first on copies half that size (a quarter of the cost); steps 2-5 run again on
   the working copies' own features when those register the unit with few inliers.
2. Lowe's ratio test, then MAGSAC++ (Barath et al. 2020) for the homography.
3. Guided matching: with that first homography, every unit feature is matched again among
   the golden features near where it should land, which recovers the correct matches the
   global ratio test threw away on repetitive or low-contrast texture.
4. Sanity: orientation preserved (a photo is never mirrored), plausible zoom, enough inliers,
   and inliers spread over the golden's textured area. The last one matters: two different
   products photographed beside the same colour card match perfectly *on the card*, and a
   count of inliers alone would call that a registration. (The cards are also masked out of
   matching altogether: they move between photo sessions.)
5. Template refinement at up to FINE_SIZE: golden patches around well-spread inliers are
   found in the warped unit by normalised cross-correlation with a sub-pixel peak, and the
   homography is fitted again. Features alone leave ~1 px errors at the product's corners.
6. Near-aligned fallback for same-size photos whose features do not match (binarised
   circuits): phase correlation for the shift, then the same template refinement on corners.
7. Identity check: on repetitive patterns (circuits, fabric) matching can lock onto a
   neighbouring period, and images from a fixture are often already aligned. When the two
   photos have the same size, the identity is scored like any other candidate and kept when it
   fits at least as well.
8. Outline fallback, only when nothing above registered: products whose own texture gives
   too few distinctive features (a smooth gradient, a fine fabric) still have a distinctive
   silhouette on the table. The product's outline quadrilateral is found in both photos
   (the largest non-table blob inside the table, colour cards ignored); its four corner
   pairings are candidates, refined coarse to fine by ECC (Evangelidis & Psarakis 2008),
   and kept only if the products' insides then correlate (two different rectangular
   products have matching outlines, not matching contents).
9. Lift the homography to full resolution.

The homography maps unit pixels to golden pixels of the full-resolution, EXIF-oriented photos.

References
----------
Lowe, D. G. (2004). Distinctive image features from scale-invariant keypoints. IJCV 60(2),
91-110. doi:10.1023/B:VISI.0000029664.99615.94
Barath, D., Noskova, J., Ivashechkin, M., & Matas, J. (2020). MAGSAC++, a fast, reliable and
accurate robust estimator. CVPR 2020. doi:10.1109/CVPR42600.2020.00138
Kuglin, C. D., & Hines, D. C. (1975). The phase correlation image alignment method. Proc.
IEEE Int. Conf. on Cybernetics and Society, 163-165.
Evangelidis, G. D., & Psarakis, E. Z. (2008). Parametric image alignment using enhanced
correlation coefficient maximization. IEEE TPAMI 30(10), 1858-1865.
doi:10.1109/TPAMI.2008.113
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import cv2
import numpy as np

from imaging.geometry import homography_jacobian
from imaging.resample import shrink_to_long_side

__all__ = [
    "GoldenFeatures",
    "Registration",
    "prepare_golden_features",
    "register",
    "warp_to_golden",
]

WORKING_SIZE = 1024
"""Long side, in pixels, of the copies that features are detected on."""

FINE_SIZE = 2048
"""Long side, in pixels, of the copies on which the homography is polished by template
matching (a 12 MP photo is refined at half resolution, a 2 MP photo at full resolution)."""

# Features are first detected on a copy this many times smaller than the working grey, and on
# the working grey itself only when those register the unit with fewer than
# _COARSE_MIN_INLIERS inliers, or not at all. OpenCV's SIFT doubles its
# input before building the pyramid, so the smaller copy still yields features down to about
# one working pixel of scale, at a quarter of the cost (~30% of a compare's CPU time before).
_COARSE_SHRINK = 2
# A coarse registration with fewer inliers is tried again with the working greys' features
# (and kept only if that finds nothing): in benchmarks/eval_registration.py (seed 2026) the
# coarse registrations off by 2-10 px all had 23-49 inliers, the accurate ones mostly more.
_COARSE_MIN_INLIERS = 60
_RATIO = 0.8  # Lowe's ratio test
# Descriptor pairs up to which brute-force matching is used: about where FLANN (4 trees, 64
# checks) becomes as fast on 2 cores (2000 x 2000 features: ~50 ms each).
_EXACT_MATCH_PAIRS = 2000 * 2000
_PERMISSIVE_RATIO = 0.95  # second pass, for repetitive patterns; must pass guided matching
_MIN_SEED_INLIERS = 8  # a permissive-pass homography needs this many before refinement
_GUIDED_RADIUS_PX = 12.0  # working pixels around the predicted position
_PATCH_RADIUS = 12  # template refinement: golden patch of 25 x 25 fine pixels ...
_SEARCH_RADIUS = 6  # ... searched within +-6 fine pixels of where the homography puts it
_TEMPLATE_GRID = 14  # at most one template per cell of a 14 x 14 grid
_MIN_TEMPLATE_SCORE = 0.8  # normalised cross-correlation a template match must reach
_MIN_TEMPLATE_MATCHES = 12
_RNG_SEED = 20261126
_NEAR_MIN_SCORE = 0.5  # high-pass correlation a near-aligned (template) registration must reach
_RANSAC_THRESHOLD_PX = 2.5  # at working resolution
_MIN_INLIERS = 20
_MIN_COVERAGE = 0.35  # fraction of the golden's textured cells that hold an inlier
_GRID = 8
_FEATURE_BOX_MARGIN = 0.15  # of the long side, around the product's box (_detect_around)
_MAX_ZOOM = 4.0  # unit-to-golden scale beyond 1/4..4 is not a photo of the same product
_IDENTITY_TOLERANCE = 0.01  # identity wins ties in alignment score


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
    # _product_blob of `colour` (half working resolution); None: no product on a table
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
        """:func:`_highpass` of `grey`, made on first use and kept for every later unit.
        (cached_property writes the instance's __dict__, which a frozen dataclass allows.)
        Shared by every unit: never hand it to an OpenCV call that may write into its inputs
        (OpenCV ignores numpy's read-only flag; see :func:`_near_aligned`)."""
        return _highpass(self.grey)


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
    # _product_blob of the working colour copy (half working resolution), or None
    product_blob: np.ndarray | None = None
    detection_shrink: int = 1  # as GoldenFeatures.detection_shrink

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
        """:func:`_highpass` of `grey`: the identity check's view of the unit (the identity
        warp would reproduce `grey` itself). Made on first use, so a caller waiting for the
        golden can make it meanwhile; read-only like GoldenFeatures.detail."""
        return _highpass(self.grey)


@dataclasses.dataclass(frozen=True)
class Registration:
    """Outcome of registering a unit photo onto the golden photo."""

    ok: bool
    homography: np.ndarray | None  # 3x3, unit pixel -> golden pixel, full resolution
    inliers: int
    rms_px: float | None  # RMS reprojection error of the inliers, full-resolution pixels
    method: str  # "features", "templates", "identity", "outline" or "none"
    coverage: float  # fraction of the golden's textured area holding inliers (1: not measured)
    reason: str | None = None  # why registration failed, in words a person can act on


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
    return _cell_counts(points, shape) >= 3


def _cell_counts(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
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
    blob = _product_blob(colour, ignore_mask)
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
    blob = _product_blob(_working_colour(unit, grey.shape, fine_copy), ignore_mask)
    points, descriptors = _detect_around(grey, ignore_mask, blob, _COARSE_SHRINK)
    return UnitFeatures(shape, grey, scale, fine, fine_scale, ignore_mask, points,
                        descriptors, blob, _COARSE_SHRINK)


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


def _match(golden: GoldenFeatures, unit_desc: np.ndarray, ratio: float) -> np.ndarray:
    """(K, 2) array of (unit index, golden index) passing Lowe's ratio test."""
    if len(golden.descriptors) < 2 or len(unit_desc) < 2:
        return np.zeros((0, 2), np.int64)
    if len(golden.descriptors) * len(unit_desc) <= _EXACT_MATCH_PAIRS:
        # Exact and, at these sizes, faster than FLANN (7 vs 18 ms for 860 x 600 features).
        matcher = cv2.BFMatcher(cv2.NORM_L2)
    else:
        matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
    pairs = matcher.knnMatch(unit_desc, golden.descriptors, k=2)
    good = [(c[0].queryIdx, c[0].trainIdx) for c in pairs
            if len(c) == 2 and c[0].distance < ratio * c[1].distance]
    return np.array(good, np.int64).reshape(-1, 2)


def _robust_homography(golden: GoldenFeatures, unit_points: np.ndarray, matches: np.ndarray,
                       ratio: float):
    """MAGSAC++ on the matches: (H or None, inlier matches, reason when None)."""
    needed = _MIN_INLIERS if ratio == _RATIO else _MIN_SEED_INLIERS
    if len(matches) < needed:
        return None, matches[:0], (
            f"only {len(matches)} features match between the photos (at least {_MIN_INLIERS} "
            "needed): the unit may be another product, or the photo is blurred or too dark")
    src, dst = unit_points[matches[:, 0]], golden.points[matches[:, 1]]
    H, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, _RANSAC_THRESHOLD_PX,
                                 maxIters=10000, confidence=0.9999)
    if H is None or int(mask.sum()) < needed:
        return None, matches[:0], ("no consistent geometry among the matching features: the "
                                   "unit may be another product")
    return H, matches[mask.ravel().astype(bool)], ""


def _guided_refinement(golden: GoldenFeatures, unit_points: np.ndarray, unit_desc: np.ndarray,
                       H: np.ndarray, inliers: np.ndarray):
    """Re-match every unit feature among the golden features near where H puts it.

    The global ratio test throws away most correct matches on repetitive or low-contrast
    texture (every descriptor has a look-alike somewhere). Once an approximate homography is
    known, a look-alike is only a competitor if it is also *nearby*, so matching within a small
    radius recovers many more correspondences and a much better-constrained homography.
    """
    if len(unit_points) == 0:
        return H, inliers
    for radius, threshold in ((_GUIDED_RADIUS_PX, 1.5), (_GUIDED_RADIUS_PX / 2, 1.0)):
        projected = cv2.perspectiveTransform(
            unit_points.reshape(-1, 1, 2).astype(np.float64), H).reshape(-1, 2)
        pairs = _nearby_matches(golden, unit_desc, *_points_within(golden.points, projected,
                                                                    radius))
        if len(pairs) < max(_MIN_SEED_INLIERS, len(inliers)):
            break
        src, dst = unit_points[pairs[:, 0]], golden.points[pairs[:, 1]]
        H_new, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, threshold,
                                         maxIters=5000, confidence=0.9999)
        if H_new is None or int(mask.sum()) < len(inliers):
            break
        H, inliers = H_new, pairs[mask.ravel().astype(bool)]
    return H, inliers


def _nearby_matches(golden: GoldenFeatures, unit_desc: np.ndarray, query_ids: np.ndarray,
                    point_ids: np.ndarray) -> np.ndarray:
    """(K, 2) (unit index, golden index): each unit feature's best descriptor match among its
    nearby golden features (the pairs of :func:`_points_within`), kept when it passes Lowe's
    ratio test against the second best nearby (or has no other neighbour).

    All pairs at once: one descriptor distance per pair, then a sort by (unit feature,
    distance); a Python loop over the features cost ~10 ms per registration.
    """
    if len(query_ids) == 0:
        return np.zeros((0, 2), np.int64)
    difference = golden.descriptors[point_ids] - unit_desc[query_ids]
    distances = np.sqrt(np.einsum("ij,ij->i", difference, difference))
    # Ties keep the lower golden index first (point_ids ascend within a query).
    order = np.lexsort((point_ids, distances, query_ids))
    query_ids, point_ids, distances = query_ids[order], point_ids[order], distances[order]
    first = np.flatnonzero(np.r_[True, query_ids[1:] != query_ids[:-1]])
    counts = np.diff(np.r_[first, len(query_ids)])
    best = distances[first]
    second = np.where(counts > 1, distances[np.minimum(first + 1, len(distances) - 1)], np.inf)
    keep = (counts == 1) | (best < _RATIO * second)
    return np.stack([query_ids[first[keep]], point_ids[first[keep]]], axis=1).astype(np.int64)


def _points_within(points: np.ndarray, queries: np.ndarray, radius: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Every (query index, point index) pair of `points` within `radius` of a query, sorted
    by query, then point index.

    A grid of radius-sized cells searched with sorted cell keys: each query looks at its own
    cell and the 8 around it, all queries at once. (It replaces scipy's cKDTree, whose import
    alone cost the command line half a second.)
    """
    none = (np.empty(0, np.int64), np.empty(0, np.int64))
    if len(points) == 0 or len(queries) == 0:
        return none
    points64 = points.astype(np.float64)
    point_cells = np.floor(points64 / radius).astype(np.int64)
    query_cells = np.floor(queries / radius).astype(np.int64)
    low = np.minimum(point_cells.min(axis=0), query_cells.min(axis=0)) - 1
    span = int(max(point_cells[:, 1].max(), query_cells[:, 1].max()) - low[1] + 3)
    point_keys = (point_cells[:, 0] - low[0]) * span + (point_cells[:, 1] - low[1])
    order = np.argsort(point_keys, kind="stable")
    sorted_keys = point_keys[order]
    query_ids, point_ids = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            keys = (query_cells[:, 0] + dx - low[0]) * span + (query_cells[:, 1] + dy - low[1])
            first = np.searchsorted(sorted_keys, keys, "left")
            counts = np.searchsorted(sorted_keys, keys, "right") - first
            total = int(counts.sum())
            if total == 0:
                continue
            owner = np.repeat(np.arange(len(queries)), counts)
            within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            query_ids.append(owner)
            point_ids.append(order[np.repeat(first, counts) + within])
    if not query_ids:
        return none
    query_ids, point_ids = np.concatenate(query_ids), np.concatenate(point_ids)
    offset = points64[point_ids] - queries[query_ids]
    keep = np.einsum("ij,ij->i", offset, offset) <= radius * radius
    query_ids, point_ids = query_ids[keep], point_ids[keep]
    sort = np.lexsort((point_ids, query_ids))
    return query_ids[sort], point_ids[sort]


def _scaled(H: np.ndarray, unit_scale: float, golden_scale: float) -> np.ndarray:
    """Lift a working-resolution homography to full resolution."""
    S_unit = np.diag([unit_scale, unit_scale, 1.0])
    S_golden_inv = np.diag([1.0 / golden_scale, 1.0 / golden_scale, 1.0])
    H_full = S_golden_inv @ H @ S_unit
    return H_full / H_full[2, 2]


def _refine_by_templates(golden: GoldenFeatures, unit_fine: np.ndarray, H: np.ndarray,
                         anchors: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Polish a homography by matching small golden patches in the warped unit.

    Features are located to a fraction of a *working* pixel, and they thin out towards the
    product's corners, where the ROI's corners are; an error there is magnified. Here, at the
    fine resolution, a patch of the golden around each well-spread feature is searched for in
    the unit resampled through the current homography (normalised cross-correlation, so a
    change of exposure or white balance does not matter; sub-pixel peak by a parabola fit),
    and the homography is fitted again to those correspondences.

    Parameters
    ----------
    H : (3, 3) ndarray
        Unit fine pixels -> golden fine pixels.
    anchors : (N, 2) ndarray
        Golden fine-pixel positions of inlier features: where the texture is.

    Returns
    -------
    (H, rms) with rms the residual in golden fine pixels, or (H unchanged, None).
    """
    r, search = _PATCH_RADIUS, _SEARCH_RADIUS
    h, w = golden.fine.shape
    margin = r + search + 1
    inside = ((anchors[:, 0] >= margin) & (anchors[:, 0] < w - margin)
              & (anchors[:, 1] >= margin) & (anchors[:, 1] < h - margin))
    anchors = anchors[inside]
    if len(anchors) < _MIN_TEMPLATE_MATCHES:
        return H, None
    # One anchor per grid cell, so the fit is not dominated by the busiest part of the product.
    cells = (np.floor(anchors[:, 1] * _TEMPLATE_GRID / h) * _TEMPLATE_GRID
             + np.floor(anchors[:, 0] * _TEMPLATE_GRID / w)).astype(int)
    _, first = np.unique(cells, return_index=True)
    window = 2 * (r + search) + 1
    golden_points, unit_points = [], []
    H_inv = np.linalg.inv(H)
    for x, y in np.round(anchors[first]).astype(int):
        patch = golden.fine[y - r:y + r + 1, x - r:x + r + 1]
        if patch.std() < 4.0:  # flat: no position information
            continue
        x0, y0 = x - r - search, y - r - search
        shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
        warped = cv2.warpPerspective(unit_fine, shift @ H, (window, window),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        scores = cv2.matchTemplate(warped, patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, (px, py) = cv2.minMaxLoc(scores)
        if best < _MIN_TEMPLATE_SCORE or not (0 < px < 2 * search and 0 < py < 2 * search):
            continue
        dx = px + _parabola_peak(scores[py, px - 1:px + 2]) - search
        dy = py + _parabola_peak(scores[py - 1:py + 2, px]) - search
        golden_points.append((x, y))
        unit_points.append((x + dx, y + dy))
    if len(golden_points) < _MIN_TEMPLATE_MATCHES:
        return H, None
    golden_points = np.array(golden_points, np.float64)
    # Where the golden patch was found in the warped unit, taken back into unit pixels.
    unit_points = cv2.perspectiveTransform(
        np.array(unit_points, np.float64).reshape(-1, 1, 2), H_inv).reshape(-1, 2)
    refined, mask = cv2.findHomography(unit_points, golden_points, cv2.USAC_MAGSAC, 1.0,
                                       maxIters=5000, confidence=0.9999)
    if refined is None or int(mask.sum()) < _MIN_TEMPLATE_MATCHES:
        return H, None
    keep = mask.ravel().astype(bool)
    projected = cv2.perspectiveTransform(unit_points[keep].reshape(-1, 1, 2), refined)
    residual = np.linalg.norm(projected.reshape(-1, 2) - golden_points[keep], axis=1)
    return refined / refined[2, 2], float(np.sqrt(np.mean(residual**2)))


def _near_aligned(golden: GoldenFeatures, unit_grey: np.ndarray, unit_scale: float,
                  unit_fine: np.ndarray, unit_fine_scale: float,
                  unit_ignore_mask: np.ndarray | None):
    """Register photos from a fixture or scanner that are aligned up to a few pixels.

    Repetitive boards and fabrics can defeat descriptor matching (every feature has
    look-alikes), yet such photos often come from a jig, off by a small shift. Phase
    correlation finds the shift; template refinement then fits the homography on every
    textured spot. Accepted only if templates agree and the result correlates well.

    Returns (Registration, working-resolution homography) or None.
    """
    window = cv2.createHanningWindow(golden.grey.shape[::-1], cv2.CV_32F)
    # A copy: with a window, and a size DFT needs no padding for (640 x 640 DeepPCB boards),
    # OpenCV's phaseCorrelate multiplies the window into its inputs in place; it would
    # corrupt the cached detail, and every later alignment score with it.
    (sx, sy), _ = cv2.phaseCorrelate(golden.detail.copy(), _highpass(unit_grey), window)
    max_shift = 0.05 * max(golden.grey.shape)
    if np.hypot(sx, sy) > max_shift:
        return None
    H_work = np.array([[1.0, 0.0, -sx], [0.0, 1.0, -sy], [0.0, 0.0, 1.0]])
    H_fine = _scaled(H_work, unit_scale / unit_fine_scale, golden.scale / golden.fine_scale)
    # Corners rather than SIFT blobs: a binarised circuit has few blobs but many corners.
    h, w = golden.fine.shape
    corners = cv2.goodFeaturesToTrack(golden.fine, maxCorners=4 * _TEMPLATE_GRID**2,
                                      qualityLevel=0.01, minDistance=max(h, w) / 60)
    if corners is None:
        return None
    H_fine, rms_fine = _refine_by_templates(golden, unit_fine, H_fine, corners.reshape(-1, 2))
    # Too few templates to fit a homography: the shift alone, if it correlates well enough.
    H_work = _scaled(H_fine, unit_fine_scale / unit_scale, golden.fine_scale / golden.scale)
    if (_plausible(H_work, unit_grey.shape) is not None
            or _alignment_score(golden, unit_grey, H_work, unit_ignore_mask) < _NEAR_MIN_SCORE):
        return None
    registration = Registration(
        ok=True,
        homography=_scaled(H_fine, unit_fine_scale, golden.fine_scale),
        inliers=0,
        rms_px=None if rms_fine is None else rms_fine / golden.fine_scale,
        method="templates",
        coverage=1.0,
    )
    return registration, H_work


def _parabola_peak(values: np.ndarray) -> float:
    """Sub-sample offset (-0.5..0.5) of the peak of three samples around a maximum."""
    left, centre, right = (float(v) for v in values)
    curvature = left - 2.0 * centre + right
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def _plausible(H: np.ndarray, unit_shape: tuple[int, int]) -> str | None:
    """Why a homography cannot be a photo of the same flat product, or None if it can."""
    h, w = unit_shape
    corners = np.array([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]], np.float64)
    mapped = cv2.perspectiveTransform(corners, H).reshape(-1, 2)
    # Every corner must stay in front of the camera: the denominator keeps its sign.
    denominators = corners.reshape(-1, 2) @ H[2, :2] + H[2, 2]
    if np.any(denominators <= 0):
        return "the alignment folds the photo over itself"
    if not cv2.isContourConvex(mapped.astype(np.float32).reshape(-1, 1, 2)):
        return "the alignment folds the photo over itself"
    signed_area = 0.5 * np.sum(mapped[:, 0] * np.roll(mapped[:, 1], -1)
                               - np.roll(mapped[:, 0], -1) * mapped[:, 1])
    if signed_area <= 0:
        return "the alignment mirrors the photo, which a camera cannot do"
    zoom = np.sqrt(signed_area / (w * h))
    if not 1.0 / _MAX_ZOOM <= zoom <= _MAX_ZOOM:
        return f"the implied zoom ({zoom:.2f}x) is not plausible for the same product"
    return None


_HIGHPASS_SIGMA = 6.0  # working pixels


def _highpass(grey: np.ndarray) -> np.ndarray:
    """Zero-mean local structure: removes exposure and slow shading before comparing.

    The Gaussian (sigma _HIGHPASS_SIGMA) is applied at half resolution: an area halving
    (a 2-pixel box, variance 1/4 px^2), the blur, a bilinear enlargement (variance ~2/3 px^2),
    the blur's sigma reduced so the three add up to the same low-pass. Within 1 % of the
    full-resolution blur (rms 0.1 grey levels on 12 of high-pass signal), at a tenth of its
    cost (5 -> 0.5 ms for a 1008 x 756 working grey).
    """
    g = grey.astype(np.float32)
    h, w = g.shape
    half = cv2.resize(g, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    sigma_half = np.sqrt(_HIGHPASS_SIGMA**2 - 0.25 - 2.0 / 3.0) / 2.0
    low = cv2.resize(cv2.GaussianBlur(half, (0, 0), sigma_half), (w, h),
                     interpolation=cv2.INTER_LINEAR)
    return g - low


def _alignment_score(golden: GoldenFeatures, unit_grey: np.ndarray, H_work: np.ndarray,
                     unit_ignore_mask: np.ndarray | None,
                     unit_detail: np.ndarray | None = None) -> float:
    """Normalised cross-correlation of high-passed luminance over the overlap (-1..1).

    Ignored areas (the colour cards, which move between photo sessions) do not count.
    `unit_detail`: :func:`_highpass` of `unit_grey` when the caller has it (UnitFeatures.detail);
    used for the identity, whose warp would give `unit_grey` back unchanged.
    """
    h, w = golden.grey.shape
    unit_valid = (np.full(unit_grey.shape, 255, np.uint8) if unit_ignore_mask is None
                  else unit_ignore_mask)
    if unit_detail is not None and unit_grey.shape == (h, w) and np.array_equal(H_work,
                                                                                 np.eye(3)):
        detail, valid = unit_detail, unit_valid
    else:
        warped = cv2.warpPerspective(unit_grey, H_work, (w, h), flags=cv2.INTER_LINEAR)
        valid = cv2.warpPerspective(unit_valid, H_work, (w, h), flags=cv2.INTER_NEAREST)
        detail = _highpass(warped)
    if golden.ignore_mask is not None:
        valid = np.minimum(valid, golden.ignore_mask)
    valid = cv2.erode(valid, np.ones((15, 15), np.uint8)) > 0
    if valid.sum() < 0.05 * h * w:
        return -1.0
    return _ncc(golden.detail[valid], detail[valid])


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation (-1..1) of two equally long samples; -1 when either is
    flat (nothing to correlate)."""
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else -1.0


def register(
    golden: np.ndarray | GoldenFeatures,
    unit: np.ndarray,
    *,
    unit_ignore: Sequence[np.ndarray] = (),
    working_size: int = WORKING_SIZE,
    unit_fine: tuple[np.ndarray, float] | None = None,
    unit_full_size: tuple[int, int] | None = None,
    unit_features: UnitFeatures | None = None,
) -> Registration:
    """Find the homography mapping `unit` pixels onto `golden` pixels.

    Parameters
    ----------
    golden : (H, W, 3) uint8 ndarray or GoldenFeatures
        The golden photo, or its features from :func:`prepare_golden_features`.
    unit : (H, W, 3) uint8 ndarray
        The unit photo, RGB, EXIF-oriented.
    unit_ignore : sequence of (K, 2) arrays, optional
        Polygons in the unit photo to keep out of matching (see `prepare_golden_features`).
    working_size : int, optional
        Long side of the copies that features are detected on.
    unit_fine : (ndarray, float), optional
        ``shrink_to_long_side(unit, FINE_SIZE)`` when the caller already made it (the
        pipeline shares it with card detection), so the full photo is not shrunk twice.
    unit_full_size : (width, height), optional
        The unit photo's size when `unit` is a reduced decode of it: the homography then maps
        the photo's pixels, not the array's.
    unit_features : UnitFeatures, optional
        :func:`prepare_unit_features` of `unit`, when the caller already made it (with the
        same `unit_ignore`, `working_size`, `unit_fine` and `unit_full_size`, which are then
        not used again).

    Returns
    -------
    Registration
        ``ok`` is False, with a ``reason``, when the unit cannot be put onto the golden
        sample (another product, a blurred photo, too little texture).
    """
    if not isinstance(golden, GoldenFeatures):
        golden = prepare_golden_features(golden, working_size=working_size)
    # FLANN's randomised trees and the robust estimators draw from OpenCV's per-thread RNG:
    # seed it so the same photos always give the same report (re-scoring relies on that).
    cv2.setRNGSeed(_RNG_SEED)
    features = unit_features or prepare_unit_features(
        unit, ignore=unit_ignore, working_size=working_size, fine_copy=unit_fine,
        full_size=unit_full_size)
    unit_shape = features.shape
    unit_grey, unit_scale = features.grey, features.scale
    unit_fine, unit_fine_scale = features.fine, features.fine_scale
    unit_ignore_mask = features.ignore_mask
    candidate, candidate_work, reason = None, None, ""
    # Features of the coarse copies first; those of the working greys only when the coarse
    # ones do not register the unit, or with fewer than _COARSE_MIN_INLIERS inliers.
    attempts = 2 if golden.detection_shrink > 1 or features.detection_shrink > 1 else 1
    for attempt in range(1, attempts + 1):
        cv2.setRNGSeed(_RNG_SEED)  # each attempt as if it were the only one
        # The second attempt's features are detected only now (golden.full_detail is kept).
        found, found_work, reason = _register_by_features(
            *((golden, features) if attempt == 1 else
              (golden.full_detail, features.full_detail)))
        if found is not None:
            candidate, candidate_work = found, found_work
            if attempt == attempts or found.inliers >= _COARSE_MIN_INLIERS:
                break

    if candidate is None and unit_shape == golden.shape:
        near = _near_aligned(golden, unit_grey, unit_scale, unit_fine, unit_fine_scale,
                             unit_ignore_mask)
        if near is not None:
            candidate, candidate_work = near

    if unit_shape == golden.shape:
        identity_score = _alignment_score(golden, unit_grey, np.eye(3), unit_ignore_mask,
                                          features.detail)
        # The candidate's own score only matters when the identity could win at all.
        features_score = (_alignment_score(golden, unit_grey, candidate_work, unit_ignore_mask)
                          if candidate is not None and identity_score > 0.5 else -1.0)
        if identity_score >= features_score - _IDENTITY_TOLERANCE and identity_score > 0.5:
            return Registration(
                ok=True,
                homography=np.eye(3),
                inliers=candidate.inliers if candidate is not None else 0,
                rms_px=None,
                method="identity",
                coverage=1.0,
            )
    if candidate is not None:
        return candidate
    # Last resort, only where nothing else registered (so no result that registers today
    # changes): the product's silhouette on the table.
    if golden.colour is not None:
        outline = _register_by_outline(golden, features.product_blob, unit_grey,
                                       unit_ignore_mask)
        if outline is not None and outline[1] >= _OUTLINE_MIN_SCORE:
            return Registration(
                ok=True,
                homography=_scaled(outline[0], unit_scale, golden.scale),
                inliers=0,
                rms_px=None,
                method="outline",
                coverage=1.0,
            )
        if _runs_out_of_frame(features.product_blob):
            # "Probably another product" would send the inspector the wrong way: the photo
            # is what to fix.
            reason = ("the product runs out of the unit photo, and too few of its features "
                      "match to register it without its whole outline: photograph the whole "
                      "product")
    return Registration(ok=False, homography=None, inliers=0, rms_px=None, method="none",
                        coverage=0.0, reason=reason)


def _register_by_features(golden: GoldenFeatures, features: UnitFeatures
                          ) -> tuple[Registration | None, np.ndarray | None, str]:
    """Steps 2-5 of the module's pipeline: (registration, working-resolution homography, "")
    when the features register the unit, else (None, None, why not)."""
    unit_points, unit_desc = features.points, features.descriptors
    unit_grey, unit_scale = features.grey, features.scale
    unit_fine, unit_fine_scale = features.fine, features.fine_scale
    reason = ""
    # First the strict ratio test; if that leaves too little (repetitive patterns such as
    # fabric, where every descriptor has look-alikes), a permissive pass whose result must
    # then earn its keep through guided matching and the same checks.
    for ratio in (_RATIO, _PERMISSIVE_RATIO):
        matches = _match(golden, unit_desc, ratio)
        H, inliers, reason = _robust_homography(golden, unit_points, matches, ratio)
        if H is None:
            continue
        H, inliers = _guided_refinement(golden, unit_points, unit_desc, H, inliers)
        n_inliers = len(inliers)
        src, dst = unit_points[inliers[:, 0]], golden.points[inliers[:, 1]]
        covered = _cell_counts(dst, golden.grey.shape) > 0
        textured = golden.textured_cells
        coverage = float((covered & textured).sum() / max(1, textured.sum()))
        problem = _plausible(H, unit_grey.shape)
        if n_inliers < _MIN_INLIERS:
            reason = (f"only {n_inliers} features agree on one alignment (at least "
                      f"{_MIN_INLIERS} needed): the unit may be another product")
        elif coverage < _MIN_COVERAGE:
            reason = (f"the features agree only over {coverage:.0%} of the golden's "
                      "detailed area: the unit is probably another product")
        elif problem:
            reason = problem
        else:
            H_fine = _scaled(H, unit_scale / unit_fine_scale, golden.scale / golden.fine_scale)
            H_fine, rms_fine = _refine_by_templates(golden, unit_fine, H_fine,
                                                    dst * (golden.fine_scale / golden.scale))
            if rms_fine is None:  # refinement not possible: keep the feature homography
                projected = cv2.perspectiveTransform(
                    src.reshape(-1, 1, 2).astype(np.float64), H)
                residual = np.linalg.norm(projected.reshape(-1, 2) - dst, axis=1)
                rms_full = float(np.sqrt(np.mean(residual**2))) / golden.scale
            else:
                rms_full = rms_fine / golden.fine_scale
            candidate = Registration(
                ok=True,
                homography=_scaled(H_fine, unit_fine_scale, golden.fine_scale),
                inliers=n_inliers,
                rms_px=rms_full,
                method="features",
                coverage=coverage,
            )
            return candidate, H, ""
    return None, None, reason


# --------------------------------------------------------------------------------------------
# Outline fallback: the product's silhouette on the table, for products whose own texture
# gives too few distinctive features (smooth gradients, fine periodic fabric).

_TABLE_DELTA_E = 10.0  # CIELUV distance from the table colour within which a pixel is table
_MIN_PRODUCT_FRACTION = 0.01  # of the working image: a smaller blob is not the product
_BORDER_PX = 2.0  # half-working pixels: an outline edge this close to the frame is the frame
_OUTLINE_KEEP = 2  # candidates refined past ECC's coarsest level ...
_OUTLINE_RHO_MARGIN = 0.03  # ... if that level's correlation is this close to the best one's
_MAX_ANISOTROPY = 1.35  # stretch ratio of a ~42 degree tilt (1 / cos), beyond hand-held
_OUTLINE_MIN_SCORE = 0.5  # interior high-pass correlation an outline registration must reach


def _table_colour(luv: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
    """CIELUV of the table: the most common colour among the photo's lighter pixels.

    The table is light and uniform and fills more of the lighter half than any product
    (the floor around it is dark), so the mode of a coarse colour histogram there finds it.
    """
    lightness = np.clip(luv[..., 0] * 2.55, 0, 255).astype(np.uint8)
    if not valid.any():
        return None
    threshold, _ = cv2.threshold(lightness[valid], 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    light = luv[valid & (lightness > threshold)]
    if len(light) == 0:  # a flat photo: no table to find
        return None
    # Channels as rows (3, N): numpy reduces contiguous rows several times faster.
    light = np.ascontiguousarray(light.T)
    bins = np.floor(light / np.array([[4.0], [3.0], [3.0]], np.float32)).astype(np.int32)
    bins -= bins.min(axis=1, keepdims=True)
    extent = bins.max(axis=1) + 1
    keys = (bins[0] * extent[1] + bins[1]) * extent[2] + bins[2]
    key = int(np.argmax(np.bincount(keys)))
    mode = np.array([[key // (extent[1] * extent[2])], [key // extent[2] % extent[1]],
                     [key % extent[2]]], np.int32)
    near = np.all(np.abs(bins - mode) <= 1, axis=0)
    return np.median(light[:, near], axis=1)


def _convex_hull(mask: np.ndarray) -> np.ndarray:
    """Convex hull of a uint8 mask's nonzero pixels (cv2.convexHull's points).

    From the outer contours' pixels: every corner of the hull lies on them, and there are a
    few hundred of them instead of the hundred thousand pixels of a table (3 ms -> 0.5 ms).
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.convexHull(np.concatenate(contours))


def _product_blob(rgb: np.ndarray, ignore_mask: np.ndarray | None) -> np.ndarray | None:
    """uint8 mask (1 on the product) at half the size of `rgb`, or None when no product.

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
    difference = luv - table_colour
    table = (np.einsum("ijk,ijk->ij", difference, difference) < _TABLE_DELTA_E**2)
    table = cv2.morphologyEx(table.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(table, connectivity=8)
    if count < 2:
        return None
    table = (labels == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])).astype(np.uint8)
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
    if stats[largest, cv2.CC_STAT_AREA] < _MIN_PRODUCT_FRACTION * h * w:
        return None
    return (labels == largest).astype(np.uint8)


def _runs_out_of_frame(blob: np.ndarray | None) -> bool:
    """True when the product found on the table (:func:`_product_blob`) reaches the frame.

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


def _product_outline(blob: np.ndarray | None, full_width: int,
                     side_ratios: Sequence[float] = ()) -> list[np.ndarray]:
    """Candidate quadrilaterals (4, 2) of the product's outline, working pixels.

    `blob` is the product, :func:`_product_blob` of the working colour copy, whose width is
    `full_width`. Its outline is fitted by straight lines; edges
    that run along the photo's frame are the frame, not the product. With four product edges
    the corners are their intersections; with three (one side cut off by the frame) the
    fourth is guessed at each of `side_ratios` (cut-off side / middle side, from the golden's
    outline) and left to the refinement.
    Corners go round in the same sense in every photo (positive signed area in pixel
    coordinates), so that only the starting corner is left to choose.
    """
    if blob is None:
        return []
    h, w = blob.shape
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    hull_points = cv2.convexHull(contour.astype(np.float32))
    polygon = cv2.approxPolyDP(hull_points, 0.01 * cv2.arcLength(hull_points, True), True)
    polygon = polygon.reshape(-1, 2).astype(np.float64)
    lines = []  # (point, direction) of each product edge, in order around the outline
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        length = np.linalg.norm(b - a)
        if length < 0.05 * max(h, w):
            continue
        on_frame = [min(p[0], p[1], w - 1 - p[0], h - 1 - p[1]) < _BORDER_PX for p in (a, b)]
        if all(on_frame):
            continue
        # Fit the line to the contour pixels along the middle of the edge, for sub-pixel
        # corners (the polygon's vertices are where the approximation cut the corners).
        direction = (b - a) / length
        normal = np.array([-direction[1], direction[0]])
        along = (contour - a) @ direction
        across = np.abs((contour - a) @ normal)
        near = (across < 3.0) & (along > 0.1 * length) & (along < 0.9 * length)
        if near.sum() >= 10:
            vx, vy, x0, y0 = cv2.fitLine(contour[near].astype(np.float32), cv2.DIST_HUBER,
                                         0, 0.01, 0.01).ravel()
            direction, a = np.array([vx, vy], np.float64), np.array([x0, y0], np.float64)
        lines.append((a, direction))
    if len(lines) not in (3, 4):
        return []

    def meet(first, second) -> np.ndarray | None:
        (p, d), (q, e) = first, second
        matrix = np.array([d, -e]).T
        if abs(np.linalg.det(matrix)) < 0.2:  # nearly parallel: not neighbouring edges
            return None
        t = np.linalg.solve(matrix, q - p)[0]
        return p + t * d

    if len(lines) == 4:
        corners = [meet(lines[i], lines[(i + 1) % 4]) for i in range(4)]
        if any(c is None for c in corners):
            return []
        quads = [np.array([corners[3], *corners[:3]])]
    else:
        # Three edges: find the middle one (it meets both others).
        quads = []
        for i in range(3):
            first, middle, last = lines[i - 1], lines[i], lines[(i + 1) % 3]
            p, q = meet(first, middle), meet(middle, last)
            if p is None or q is None or meet(first, last) is not None:
                continue
            side = np.linalg.norm(q - p)
            for ratio in side_ratios:
                # The cut-off side: along the other two edges, away from the middle one.
                d1 = first[1] * np.sign(np.dot(first[1], first[0] - p) or 1.0)
                d2 = last[1] * np.sign(np.dot(last[1], last[0] - q) or 1.0)
                quads.append(np.array([p + ratio * side * d1, p, q, q + ratio * side * d2]))
    oriented = []
    for quad in quads:
        area = 0.5 * np.sum(quad[:, 0] * np.roll(quad[:, 1], -1)
                            - np.roll(quad[:, 0], -1) * quad[:, 1])
        if abs(area) < _MIN_PRODUCT_FRACTION * h * w:
            continue
        oriented.append((quad if area > 0 else quad[::-1]) * (full_width / w))
    return oriented


def _quad_mask(shape: tuple[int, int], quad: np.ndarray, shrink: float = 0.0) -> np.ndarray:
    """uint8 mask (1 inside) of a quadrilateral, shrunk towards its centre by `shrink`."""
    centre = quad.mean(axis=0)
    points = centre + (1.0 - shrink) * (quad - centre)
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(points * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return mask


_ECC_LEVELS = ((4, 50, 5), (2, 30, 5), (1, 15, 9))  # (downscale factor, iterations), coarse to fine


def _ecc(template: np.ndarray, template_mask: np.ndarray, unit: np.ndarray,
         unit_valid: np.ndarray, warp: np.ndarray, iterations: int, blur: int
         ) -> tuple[float, np.ndarray] | None:
    """One ECC (Evangelidis & Psarakis 2008) homography fit: (correlation, warp) or None."""
    try:
        # OpenCV 5: findTransformECC's mask is the *input's*; the template's goes here.
        rho, warp = cv2.findTransformECCWithMask(
            template, unit, template_mask, unit_valid, warp.astype(np.float32),
            cv2.MOTION_HOMOGRAPHY,
            (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, 1e-5), blur)
    except cv2.error:  # diverged: the images do not correlate under any nearby warp
        return None
    return float(rho), warp.astype(np.float64)


def _register_by_outline(golden: GoldenFeatures, unit_blob: np.ndarray | None,
                         unit_grey: np.ndarray, unit_ignore_mask: np.ndarray | None
                         ) -> tuple[np.ndarray, float] | None:
    """(working-resolution unit -> golden homography, its score) from the product outlines.

    Each pairing of the unit's outline corners with the golden's (four rotations; a photo is
    never mirrored) is a candidate. ECC then fits the homography coarse to fine, with the
    golden's product region (and a rim of table, so that the outline itself pulls) as the
    template: at the coarse levels the blur leaves the outline and the broad shading, which
    converge from the corners' few-pixel error; the full level locks the fine texture, by
    then within a fraction of its period. Every candidate gets the coarsest level, the best
    go on. ECC's correlation ignores gain and offset, so exposure and white balance do not
    matter. The score that decides is the correlation of the products' insides: the outlines
    of two different rectangular products match as well as those of the same one.
    """
    golden_quads = _product_outline(golden.product_blob, golden.grey.shape[1])
    if len(golden_quads) != 1:
        return None
    golden_quad = golden_quads[0]
    sides = np.linalg.norm(golden_quad - np.roll(golden_quad, -1, axis=0), axis=1)
    ratio = float((sides[0] + sides[2]) / (sides[1] + sides[3]))
    unit_quads = _product_outline(unit_blob, unit_grey.shape[1], (ratio, 1.0 / ratio))
    if not unit_quads:
        return None
    golden_valid = (np.ones_like(golden.grey) if golden.ignore_mask is None
                    else (golden.ignore_mask > 0).astype(np.uint8))
    unit_valid = (np.ones_like(unit_grey) if unit_ignore_mask is None
                  else (unit_ignore_mask > 0).astype(np.uint8))
    region = cv2.dilate(_quad_mask(golden.grey.shape, golden_quad), np.ones((9, 9), np.uint8))
    region &= golden_valid
    if not region.any():
        return None
    ys, xs = np.nonzero(region)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    crop = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
    template, mask = golden.grey[y0:y1, x0:x1], region[y0:y1, x0:x1]
    levels = []
    for factor, iterations, blur in _ECC_LEVELS:
        size = (max(8, template.shape[1] // factor), max(8, template.shape[0] // factor))
        unit_size = (unit_grey.shape[1] // factor, unit_grey.shape[0] // factor)
        levels.append((np.diag([float(factor), float(factor), 1.0]), iterations, blur,
                       cv2.resize(template, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST),
                       cv2.resize(unit_grey, unit_size, interpolation=cv2.INTER_AREA),
                       cv2.resize(unit_valid, unit_size, interpolation=cv2.INTER_NEAREST)))

    def run(level, warp: np.ndarray) -> tuple[float, np.ndarray] | None:
        S, iterations, blur, *images = level
        S_inv = np.linalg.inv(S)
        fitted = _ecc(*images, S_inv @ warp @ S, iterations, blur)
        return None if fitted is None else (fitted[0], S @ fitted[1] @ S_inv)

    coarse = []
    for unit_quad in unit_quads:
        for turn in range(4):
            H = cv2.getPerspectiveTransform(np.roll(unit_quad, turn, axis=0).astype(np.float32),
                                            golden_quad.astype(np.float32))
            if _plausible(H, unit_grey.shape) is not None:
                continue
            # ECC's warp maps template (crop) pixels to unit pixels.
            fitted = run(levels[0], np.linalg.inv(H) @ crop)
            if fitted is not None:
                coarse.append((_anisotropy(H, golden_quad.mean(axis=0)) <= _MAX_ANISOTROPY,
                               *fitted))
    if not coarse:
        return None
    # A pairing turned by 90 degrees on an oblong product implies a stretch no tilt of a
    # hand-held phone gives; those go last, then by correlation. Periodic products (fabric)
    # correlate as well turned by 180 degrees at this coarse level, hence two go on.
    coarse = [fitted[1:] for fitted in sorted(coarse, key=lambda f: (not f[0], -f[1]))]
    interior = _quad_mask(golden.grey.shape, golden_quad, shrink=0.06)[y0:y1, x0:x1] & mask
    golden_detail = _highpass(template)
    best = None
    for rho, warp in coarse[:_OUTLINE_KEEP]:
        if rho < coarse[0][0] - _OUTLINE_RHO_MARGIN:
            break
        for level in levels[1:]:
            fitted = run(level, warp)
            if fitted is None:
                break
            warp = fitted[1]
        else:
            H = crop @ np.linalg.inv(warp)
            H /= H[2, 2]
            if _plausible(H, unit_grey.shape) is not None:
                continue
            score = _detail_correlation(golden_detail, interior, unit_grey, warp)
            if best is None or score > best[1]:
                best = (H, score)
    return best


def _anisotropy(H: np.ndarray, point: np.ndarray) -> float:
    """Ratio of the largest to the smallest stretch of a homography near `point` (>= 1)."""
    singular = np.linalg.svd(homography_jacobian(H, point), compute_uv=False)
    return float(singular[0] / max(singular[1], 1e-12))


_DETAIL_TILES = 4  # the outline check's correlation: median over a 4 x 4 grid of tiles


def _detail_correlation(golden_detail: np.ndarray, region: np.ndarray, unit_grey: np.ndarray,
                        warp: np.ndarray) -> float:
    """Normalised cross-correlation (-1..1) of high-passed golden and unit inside `region`:
    the median of its values on a 4 x 4 grid of tiles.

    Per tile and then the median, because a defect must not make the product look like
    another one: on a smooth product (a colour wheel) a 1 cm stain's edges carried more
    high-pass energy than the rest of the product, and one correlation over the whole region
    fell from 0.86 to 0.43, under the acceptance threshold. The median of the tiles stays at
    0.73-0.80 with the defect, and at most 0.04 for a different product (the pairs of
    ``benchmarks/eval_registration.py``). `warp` maps the golden crop's pixels to unit pixels;
    the part of the region that the unit photo does not show does not count (a tile less
    than a quarter shown is left out), and too little shown scores -1.
    """
    h, w = golden_detail.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(unit_grey, warp, (w, h), flags=flags)
    seen = cv2.warpPerspective(np.ones_like(unit_grey), warp, (w, h),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    valid = (region > 0) & (cv2.erode(seen, np.ones((15, 15), np.uint8)) > 0)
    if valid.sum() < 0.5 * max(1, int(np.count_nonzero(region))):
        return -1.0
    unit_detail = _highpass(warped)
    ys, xs = np.nonzero(valid)
    y_edges = np.linspace(ys.min(), ys.max() + 1, _DETAIL_TILES + 1).astype(int)
    x_edges = np.linspace(xs.min(), xs.max() + 1, _DETAIL_TILES + 1).astype(int)
    scores = []
    for y0, y1 in zip(y_edges[:-1], y_edges[1:], strict=True):
        for x0, x1 in zip(x_edges[:-1], x_edges[1:], strict=True):
            tile = valid[y0:y1, x0:x1]
            if tile.sum() >= 0.25 * tile.size:
                scores.append(_ncc(golden_detail[y0:y1, x0:x1][tile],
                                   unit_detail[y0:y1, x0:x1][tile]))
    return float(np.median(scores)) if scores else -1.0

def warp_to_golden(
    unit: np.ndarray, homography: np.ndarray, golden_shape: tuple[int, int], *,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample `unit` into the golden frame: (aligned image, bool mask of the overlap)."""
    h, w = golden_shape
    aligned = cv2.warpPerspective(unit, homography, (w, h), flags=interpolation,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    valid = cv2.warpPerspective(np.full(unit.shape[:2], 255, np.uint8), homography, (w, h),
                                flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    return aligned, valid > 0
