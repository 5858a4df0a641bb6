"""Checks on a candidate homography: can it be a photo of the same flat product (step 4 of the
method), and how well do the two photos agree through it (the high-pass alignment score that
steps 6 to 8 decide by)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from vision.register._features import GoldenFeatures

_MAX_ZOOM = 4.0  # unit-to-golden scale beyond 1/4..4 is not a photo of the same product


def plausible(H: np.ndarray, unit_shape: tuple[int, int],
              golden_shape: tuple[int, int] | None = None) -> str | None:
    """Why a homography cannot be a photo of the same flat product, or None if it can.

    The zoom is judged against the two photos' sizes (`golden_shape`, when given): a unit
    photo with an eighth of the golden's pixels per side shows the same framing at a zoom of 8.
    """
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
    if golden_shape is not None:
        zoom /= np.sqrt(golden_shape[0] * golden_shape[1] / (w * h))
    if not 1.0 / _MAX_ZOOM <= zoom <= _MAX_ZOOM:
        return f"the implied zoom ({zoom:.2f}x) is not plausible for the same product"
    return None


_HIGHPASS_SIGMA = 6.0  # working pixels


def highpass(grey: np.ndarray) -> np.ndarray:
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


def alignment_score(golden: GoldenFeatures, unit_grey: np.ndarray, H_work: np.ndarray,
                     unit_ignore_mask: np.ndarray | None,
                     unit_detail: np.ndarray | None = None) -> float:
    """Normalised cross-correlation of high-passed luminance over the overlap (-1..1).

    Ignored areas (the colour cards, which move between photo sessions) do not count.
    `unit_detail`: :func:`highpass` of `unit_grey` when the caller has it (UnitFeatures.detail);
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
        detail = highpass(warped)
    if golden.ignore_mask is not None:
        valid = np.minimum(valid, golden.ignore_mask)
    valid = cv2.erode(valid, np.ones((15, 15), np.uint8)) > 0
    if valid.sum() < 0.05 * h * w:
        return -1.0
    return ncc(golden.detail[valid], detail[valid])


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation (-1..1) of two equally long samples; -1 when either is
    flat (nothing to correlate)."""
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else -1.0


def median_tile_ncc(golden: np.ndarray, unit: np.ndarray, valid: np.ndarray, *, tiles: int,
                    min_std: float, min_tiles: int) -> float:
    """Median of :func:`ncc` of `golden` and `unit` (the same frame) over a `tiles` x `tiles`
    grid spanning the `valid` pixels; -1 when fewer than `min_tiles` tiles count.

    A tile counts when at least a quarter of it is valid and the golden varies there by at
    least `min_std` (a blank tile says nothing either way). Per tile and then the median, so
    that a defect's own detail does not make the product look like another one.
    """
    ys, xs = np.nonzero(valid)
    y_edges = np.linspace(ys.min(), ys.max() + 1, tiles + 1).astype(int)
    x_edges = np.linspace(xs.min(), xs.max() + 1, tiles + 1).astype(int)
    scores = []
    for y0, y1 in zip(y_edges[:-1], y_edges[1:], strict=True):
        for x0, x1 in zip(x_edges[:-1], x_edges[1:], strict=True):
            tile = valid[y0:y1, x0:x1]
            if tile.sum() < 0.25 * tile.size:
                continue
            golden_tile = golden[y0:y1, x0:x1][tile]
            if golden_tile.std() >= min_std:
                scores.append(ncc(golden_tile, unit[y0:y1, x0:x1][tile]))
    return float(np.median(scores)) if len(scores) >= max(1, min_tiles) else -1.0


def valid_pixels(grey: np.ndarray, ignore_mask: np.ndarray | None) -> np.ndarray:
    """The pixels of `grey` that registration may look at, as a new uint8 mask (1: use): all
    of them, or those `ignore_mask` (non-zero: keep; e.g. the colour card zeroed) keeps."""
    return np.ones_like(grey) if ignore_mask is None else (ignore_mask > 0).astype(np.uint8)


def corners_moved(quad: np.ndarray, H: np.ndarray, other: np.ndarray) -> float:
    """Mean distance (golden pixels) by which `other` puts the corners of `quad` ((4, 1, 2),
    golden pixels) elsewhere than `H` does (both unit -> golden homographies)."""
    return float(np.linalg.norm(cv2.perspectiveTransform(
        cv2.perspectiveTransform(quad, np.linalg.inv(H)), other) - quad, axis=2).mean())
