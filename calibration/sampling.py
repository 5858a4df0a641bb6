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


def _robust_colour(values: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, float, float, str | None]:
    """One patch's points (m, 3) -> (colour, standard error, relative spread, fraction kept,
    problem)."""
    luma = values @ np.array([0.299, 0.587, 0.114])
    median = float(np.median(luma))
    sigma = max(1.4826 * float(np.median(np.abs(luma - median))), 1.5 + 0.01 * median)
    clipped = (values >= 254).any(axis=1)
    glare = luma > median + _REJECT_SIGMA * sigma
    shadow = luma < median - _REJECT_SIGMA * sigma
    kept = values[~(clipped | glare | shadow)]
    if len(kept) < _MIN_KEPT * len(values):
        counts = {"clipped": clipped.sum(), "glare": (glare & ~clipped).sum(),
                  "shadow": shadow.sum()}
        return np.median(values, axis=0), np.zeros(3), 1.0, 0.0, max(counts, key=counts.get)
    lo, hi = np.percentile(kept, [25, 75], axis=0)
    inner = np.where((kept >= lo) & (kept <= hi), kept, np.nan)
    colour = np.nanmean(inner, axis=0)
    kept_luma = kept @ np.array([0.299, 0.587, 0.114])
    spread_abs = 1.4826 * float(np.median(np.abs(kept_luma - np.median(kept_luma))))
    spread = spread_abs / max(float(np.median(kept_luma)), 8.0)
    # Standard error of a trimmed mean ~ a median's: 1.2533 sigma / sqrt(n), sigma from the
    # MAD. Neighbouring points are correlated (demosaicing, JPEG): a lower bound.
    mad = np.median(np.abs(kept - np.median(kept, axis=0)), axis=0)
    stderr = 1.2533 * 1.4826 * mad / np.sqrt(len(kept))
    return colour, stderr, spread, len(kept) / len(values), None


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
    colours, stderrs, spreads, kept, problems = [], [], [], [], []
    for i in range(chart.n_patches):
        colour, stderr, spread, kept_fraction, problem = _robust_colour(values[i])
        if not inside[i]:
            problem = "outside the photo"
        elif problem is None and (colour >= _CLIP_HIGH).any():
            problem = "clipped"
        elif problem is None and (colour <= _CLIP_LOW).any():
            problem = "black"
        elif problem is None and spread > _MAX_SPREAD:
            problem = "non-uniform"
        colours.append(colour)
        stderrs.append(stderr)
        spreads.append(spread)
        kept.append(kept_fraction)
        problems.append(problem)
    usable = np.array([p is None for p in problems])
    spread = np.array(spreads)
    typical = max(float(np.median(spread[usable])) if usable.any() else 0.01, 0.005)
    uniformity = np.array(kept) / (1.0 + (spread / typical) ** 2)
    return PatchSamples(rgb8=np.array(colours), usable=usable, problems=tuple(problems),
                        stderr=np.array(stderrs), uniformity=uniformity)
