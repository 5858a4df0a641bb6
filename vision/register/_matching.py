"""Matching a unit's SIFT features to the golden's (steps 2 and 3 of the method).

Lowe's ratio test and MAGSAC++ (Barath et al. 2020) give a first homography; guided matching
then matches every unit feature again among the golden features near where that homography
puts it.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.register._features import GoldenFeatures

RATIO = 0.8  # Lowe's ratio test
# Descriptor pairs up to which brute-force matching is used: about where FLANN (4 trees, 64
# checks) becomes as fast on 2 cores (2000 x 2000 features: ~50 ms each).
_EXACT_MATCH_PAIRS = 2000 * 2000
PERMISSIVE_RATIO = 0.95  # second pass, for repetitive patterns; must pass guided matching
_MIN_SEED_INLIERS = 8  # a permissive-pass homography needs this many before refinement
_GUIDED_RADIUS_PX = 12.0  # working pixels around the predicted position
_RANSAC_THRESHOLD_PX = 2.5  # at working resolution
MIN_INLIERS = 20


def match(golden: GoldenFeatures, unit_desc: np.ndarray, ratio: float) -> np.ndarray:
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


def robust_homography(golden: GoldenFeatures, unit_points: np.ndarray, matches: np.ndarray,
                       ratio: float):
    """MAGSAC++ on the matches: (H or None, inlier matches, reason when None)."""
    needed = MIN_INLIERS if ratio == RATIO else _MIN_SEED_INLIERS
    if len(matches) < needed:
        return None, matches[:0], (
            f"only {len(matches)} features match between the photos (at least {MIN_INLIERS} "
            "needed): the unit may be another product, or the photo is blurred or too dark")
    src, dst = unit_points[matches[:, 0]], golden.points[matches[:, 1]]
    H, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, _RANSAC_THRESHOLD_PX,
                                 maxIters=10000, confidence=0.9999)
    if H is None or int(mask.sum()) < needed:
        return None, matches[:0], ("no consistent geometry among the matching features: the "
                                   "unit may be another product")
    return H, matches[mask.ravel().astype(bool)], ""


def guided_refinement(golden: GoldenFeatures, unit_points: np.ndarray, unit_desc: np.ndarray,
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
    keep = (counts == 1) | (best < RATIO * second)
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
