"""Each patch's colour from a photo of the card, robust to glare, shadow and texture.

1. **Points**: a 13 x 13 grid over the inner 60 % of each patch's side (through the card's
   homography, full-resolution photo): the patch's edges (blur, the black frame, a misfit of
   the grid by a few per cent) stay out.
2. **Rejection**: a point is clipped when a channel is at the top code, glare when its luma
   lies more than :data:`_REJECT_SIGMA` robust standard deviations (1.4826 MAD, floored)
   above the patch's median, shadow when as far below it. A highlight or a shadow edge over
   part of a patch leaves the rest to be read; a patch with less than half its points left is
   flagged with the commonest reason.
3. **Colour**: the mean of the kept points between their 25th and 75th percentile, per
   channel (a trimmed mean: nearly the median's robustness with less noise).
4. **Uniformity**: the kept points' robust spread relative to the patch's luma. A patch that is
   uneven beyond :data:`_MAX_SPREAD` is flagged; the others are weighted in the fit by
   (fraction of points kept) / (1 + (spread / typical spread)^2), the typical spread being the
   card's median: print texture, noise, a slope of light and glare or shadow over part of it
   count against a patch, not against the card.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from calibration.detect import CardDetection, sample_patch_grid

__all__ = ["PatchSamples", "sample_patches"]

_CLIP_HIGH = 250  # 8-bit code: at or above, a channel may have clipped
_CLIP_LOW = 4  # at or below, a channel is crushed to black (its value says nothing)
_MAX_SPREAD = 0.12  # relative robust spread of a patch's kept points beyond which it is flagged
_REJECT_SIGMA = 4.0  # robust standard deviations from the median: glare above, shadow below
_MIN_KEPT = 0.5  # fraction of a patch's points that must survive the rejection
_INNER = 0.3  # sample within +/- this fraction of the patch side around its centre
_POINTS = 13


@dataclasses.dataclass(frozen=True)
class PatchSamples:
    """Each patch's robust colour, and which patches the fit may use."""

    rgb8: np.ndarray  # (n, 3) float64, trimmed-mean 8-bit code values of the kept points
    usable: np.ndarray  # (n,) bool
    # per patch: None, "clipped", "black", "glare", "shadow", "non-uniform" or
    # "outside the photo"
    problems: tuple[str | None, ...]
    # (n, 3) standard error of each patch's colour, 8-bit codes (pixel noise, print texture);
    # None when the samples were not read from a photo
    stderr: np.ndarray | None = None
    # (n,) fit weight from the patch's own uniformity, in (0, 1]; None: all equal
    uniformity: np.ndarray | None = None


_LUMA = np.array([0.299, 0.587, 0.114])


def _quantile(values: np.ndarray, q: float, count: np.ndarray) -> np.ndarray:
    """The q-quantile (nearest rank) along axis 1 of `values` whose NaNs are not counted;
    `count` (n,) non-NaN values per row (np.nanquantile is ten times slower here)."""
    ordered = np.sort(values, axis=1)  # NaN last
    rank = np.round(q * (np.maximum(count, 1) - 1)).astype(np.intp)
    rank = rank.reshape((-1,) + (1,) * (values.ndim - 1))
    return np.take_along_axis(ordered, rank, axis=1)[:, 0]


def _robust_colours(values: np.ndarray) -> dict[str, np.ndarray]:
    """Every patch's points (n, m, 3) at once -> per patch "colour" (n, 3), "stderr" (n, 3),
    "spread" (n,), "kept" (n,) fraction, and "clipped", "glare", "shadow" (n,) point counts."""
    luma = values @ _LUMA
    median = np.median(luma, axis=1, keepdims=True)
    sigma = np.maximum(1.4826 * np.median(np.abs(luma - median), axis=1, keepdims=True),
                       1.5 + 0.01 * median)
    clipped = (values >= 254).any(axis=2)
    glare = (luma > median + _REJECT_SIGMA * sigma) & ~clipped
    shadow = luma < median - _REJECT_SIGMA * sigma
    rejected = clipped | glare | shadow
    kept = np.where(rejected[..., None], np.nan, values)
    if rejected.all(axis=1).any():  # a patch with no point left: read it whole (it is flagged)
        kept[rejected.all(axis=1)] = values[rejected.all(axis=1)]
    count = np.isfinite(kept[..., 0]).sum(axis=1)
    lo, hi = (_quantile(kept, q, count)[:, None] for q in (0.25, 0.75))
    colour = np.nanmean(np.where((kept >= lo) & (kept <= hi), kept, np.nan), axis=1)
    kept_luma = kept @ _LUMA
    kept_median = _quantile(kept_luma, 0.5, count)
    spread = 1.4826 * _quantile(np.abs(kept_luma - kept_median[:, None]), 0.5, count)
    # Standard error of a trimmed mean ~ a median's: 1.2533 sigma / sqrt(n), sigma from the
    # MAD. Neighbouring points are correlated (demosaicing, JPEG): a lower bound.
    mad = _quantile(np.abs(kept - _quantile(kept, 0.5, count)[:, None]), 0.5, count)
    count = (~rejected).sum(axis=1)
    return {"colour": colour, "stderr": 1.2533 * 1.4826 * mad / np.sqrt(np.maximum(count, 1))[
        :, None], "spread": spread / np.maximum(kept_median, 8.0),
        "kept": count / values.shape[1], "clipped": clipped.sum(axis=1),
        "glare": glare.sum(axis=1), "shadow": shadow.sum(axis=1)}


def sample_patches(rgb: np.ndarray, card: CardDetection, *, points: int = _POINTS
                   ) -> PatchSamples:
    """Robust colour of the inner area of each patch, with unusable patches flagged.

    `rgb` is the full-resolution photo `card` was found in (its coordinates).
    """
    chart = card.chart
    values, xy = sample_patch_grid(rgb, card.homography, chart, _INNER * chart.patch_size_mm,
                                   points, border=cv2.BORDER_CONSTANT)
    inside = ((xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] <= rgb.shape[1] - 1)
              & (xy[:, 1] <= rgb.shape[0] - 1)).reshape(chart.n_patches, -1).all(axis=1)
    patches = _robust_colours(values)
    colour, spread = patches["colour"], patches["spread"]
    problems: list[str | None] = []
    for i in range(chart.n_patches):
        if not inside[i]:
            problems.append("outside the photo")
        elif patches["kept"][i] < _MIN_KEPT:
            problems.append(max(("clipped", "glare", "shadow"), key=lambda k: patches[k][i]))
        elif (colour[i] >= _CLIP_HIGH).any():
            problems.append("clipped")
        elif (colour[i] <= _CLIP_LOW).any():
            problems.append("black")
        elif spread[i] > _MAX_SPREAD:
            problems.append("non-uniform")
        else:
            problems.append(None)
    usable = np.array([p is None for p in problems])
    typical = max(float(np.median(spread[usable])) if usable.any() else 0.01, 0.005)
    uniformity = patches["kept"] / (1.0 + (spread / typical) ** 2)
    return PatchSamples(rgb8=colour, usable=usable, problems=tuple(problems),
                        stderr=patches["stderr"], uniformity=uniformity)
