"""From a found colour card to a colour correction: sample, linearise, fit, apply.

The correction maps a photo's 8-bit camera RGB to linear sRGB (D65) as the chart's reference
colours say it should be, so that CIELAB computed from a calibrated photo is the colour of the
object, not of the lamp and the phone.

- **Sampling**: the median of each patch's inner half (9 x 9 points through the card's
  homography, on the full-resolution photo). Patches with a clipped channel (bright or black)
  or a non-uniform inner half (a specular highlight, a shadow edge) are flagged and left out.
- **Linearisation**: the sRGB decoding, or a power curve whose exponent is fitted on the six
  neutral patches (phones that use a plain gamma of 1.9-2.5 instead of the sRGB curve). Per
  channel gains are the matrix's business, so only the exponent is shared.
- **Model**: a 3x3 matrix, or a root-polynomial of degree 2 (Finlayson, Mackiewicz & Hurlbert
  2015: the terms R, G, B, sqrt(RG), sqrt(GB), sqrt(RB), which scale with exposure as the
  matrix does). Weighted least squares, each patch's error relative to its luminance so dark
  patches count as the eye counts them.
- **Choice**: every (linearisation, model) pair is scored by its leave-one-out mean CIEDE2000
  (each patch predicted by the fit to the other patches), not by its training error: with 24
  patches a richer model always fits better and may still predict worse.

References
----------
.. [1] G. D. Finlayson, M. Mackiewicz, A. Hurlbert, "Color Correction Using Root-Polynomial
       Regression", IEEE Trans. Image Processing 24(5), 1460-1470 (2015).
.. [2] IEC 61966-2-1:1999, Default RGB colour space - sRGB.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import cv2
import numpy as np

from calibration.charts import Chart
from calibration.detect import CardDetection, sample_patch_grid
from imaging.color import (
    D50,
    D65,
    chromatic_adaptation_bradford,
    ciede2000,
    lab_to_xyz,
    linear_rgb_to_lab,
    srgb_to_linear,
    xyz_to_linear_rgb,
)

__all__ = ["ColourCorrection", "PatchSamples", "chart_linear_reference", "fit_correction",
           "sample_patches", "calibrate_photo"]

ToneCurve = Literal["srgb", "gamma"]
Model = Literal["matrix", "root-polynomial-2"]

_CLIP_HIGH = 250  # 8-bit code: at or above, a channel may have clipped
_CLIP_LOW = 2  # at or below, a channel is crushed to black
_MAX_SPREAD = 0.12  # relative robust spread of a patch's inner half beyond which it is flagged
_WARN_MEAN_DELTA_E = 3.0
_MIN_PATCHES = 10  # fewer usable patches: no fit (a 3x3 matrix with margin for the check)


def chart_linear_reference(chart: Chart) -> np.ndarray:
    """The chart's reference colours in linear sRGB, D65 (Bradford from D50), unclipped."""
    xyz = chromatic_adaptation_bradford(lab_to_xyz(chart.lab_d50, white=D50), D50, D65)
    return xyz_to_linear_rgb(xyz)


@dataclasses.dataclass(frozen=True)
class PatchSamples:
    """Each patch's robust colour, and which patches the fit may use."""

    rgb8: np.ndarray  # (n, 3) float64, median 8-bit code values of the inner half
    usable: np.ndarray  # (n,) bool
    problems: tuple[str | None, ...]  # per patch: None, "clipped", "black" or "non-uniform"
    # (n, 3) standard error of each median, 8-bit codes (pixel noise, print texture); None
    # when the samples were not read from a photo
    stderr: np.ndarray | None = None


def sample_patches(rgb: np.ndarray, card: CardDetection, *, points: int = 9) -> PatchSamples:
    """Median colour of the inner half of each patch, with clipped or uneven patches flagged.

    `rgb` is the full-resolution photo `card` was found in (its coordinates).
    """
    chart = card.chart
    half = chart.patch_size_mm / 4.0  # the inner half of the side: +/- a quarter
    values, xy = sample_patch_grid(rgb, card.homography, chart, half, points,
                                   border=cv2.BORDER_CONSTANT)
    median = np.median(values, axis=1)
    inside = ((xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] <= rgb.shape[1] - 1)
              & (xy[:, 1] <= rgb.shape[0] - 1)).reshape(chart.n_patches, -1).all(axis=1)
    luma = values @ np.array([0.299, 0.587, 0.114])
    q25, q75 = np.percentile(luma, [25, 75], axis=1)
    spread = (q75 - q25) / np.maximum(np.median(luma, axis=1), 8.0)
    problems: list[str | None] = []
    for i in range(chart.n_patches):
        if not inside[i]:
            problems.append("outside the photo")
        elif (median[i] >= _CLIP_HIGH).any() or (values[i] >= 254).any(axis=1).mean() > 0.1:
            problems.append("clipped")
        elif (median[i] <= _CLIP_LOW).any():
            problems.append("black")
        elif spread[i] > _MAX_SPREAD:
            problems.append("non-uniform")
        else:
            problems.append(None)
    usable = np.array([p is None for p in problems])
    # Standard error of a median: 1.2533 sigma / sqrt(n), sigma from the MAD. Neighbouring
    # points are correlated (demosaicing, JPEG), so this is a lower bound.
    mad = np.median(np.abs(values - median[:, None, :]), axis=1)
    stderr = 1.2533 * 1.4826 * mad / np.sqrt(values.shape[1])
    return PatchSamples(rgb8=median, usable=usable, problems=tuple(problems), stderr=stderr)


@dataclasses.dataclass(frozen=True)
class ColourCorrection:
    """A fitted camera RGB -> linear sRGB (D65) correction, and how well it fits its chart."""

    tone_curve: ToneCurve
    gamma: float | None  # the fitted exponent for "gamma"
    model: Model
    matrix: np.ndarray  # (3, 3) or (6, 3): terms @ matrix = linear sRGB
    residual_delta_e00: np.ndarray  # (n,) per patch; NaN for patches left out of the fit
    loo_delta_e00_mean: float  # leave-one-out mean CIEDE2000 (what chose the model)
    excluded: tuple[int, ...]  # patches left out (indices), see PatchSamples.problems
    # mean CIEDE2000 the patches' sampling noise (PatchSamples.stderr) moves a corrected colour
    noise_delta_e00: float = 0.0

    @property
    def residual_mean(self) -> float:
        return float(np.nanmean(self.residual_delta_e00))

    @property
    def residual_max(self) -> float:
        return float(np.nanmax(self.residual_delta_e00))

    @property
    def warning(self) -> str | None:
        if self.residual_mean > _WARN_MEAN_DELTA_E:
            return (f"the colour chart fits poorly (mean Delta-E00 {self.residual_mean:.1f} > "
                    f"{_WARN_MEAN_DELTA_E:.0f}): check the light on the card (glare, shadow) "
                    "and that it is a ColorChecker Classic made after November 2014")
        return None

    def linearise(self, codes: np.ndarray) -> np.ndarray:
        """8-bit code values (any float shape) -> linear camera RGB."""
        x = np.clip(np.asarray(codes, np.float64) / 255.0, 0.0, 1.0)
        if self.tone_curve == "srgb":
            return srgb_to_linear(x)
        return x**self.gamma

    def lookup_table(self) -> np.ndarray:
        """(256,) float32: code value -> linear camera value (the same for each channel)."""
        codes = np.repeat(np.arange(256.0)[:, None], 3, axis=1)
        return self.linearise(codes)[:, 0].astype(np.float32)

    def apply_to_linear(self, camera_linear: np.ndarray) -> np.ndarray:
        """Linear camera RGB (..., 3) -> calibrated linear sRGB, float32."""
        linear = np.asarray(camera_linear, np.float32)
        matrix = self.matrix.astype(np.float32)
        if self.model == "matrix":
            flat = linear.reshape(-1, 1, 3)
            return cv2.transform(flat, matrix.T).reshape(linear.shape)
        return (_root_terms(linear) @ matrix).astype(np.float32)

    def apply(self, rgb8: np.ndarray) -> np.ndarray:
        """An 8-bit RGB image (H, W, 3) -> calibrated linear sRGB float32 (H, W, 3).

        A 256-entry table for the tone curve, then the matrix (cv2.transform, float32), so a
        12 MP photo takes tens of milliseconds.
        """
        if rgb8.dtype != np.uint8:
            raise ValueError(f"rgb8 must be uint8, got {rgb8.dtype}")
        table = self.lookup_table()
        linear = cv2.LUT(rgb8, np.repeat(table[None, :, None], 3, axis=2))
        return self.apply_to_linear(linear)


def _root_terms(linear: np.ndarray) -> np.ndarray:
    """R, G, B, sqrt(RG), sqrt(GB), sqrt(RB) on the last axis (negative values clipped)."""
    rgb = np.maximum(linear, 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack([r, g, b, np.sqrt(r * g), np.sqrt(g * b), np.sqrt(r * b)], axis=-1)


def _terms(linear: np.ndarray, model: Model) -> np.ndarray:
    return linear if model == "matrix" else _root_terms(linear)


def _fit_gamma(codes: np.ndarray, reference: np.ndarray, neutral: np.ndarray) -> float | None:
    """Exponent of code = (gain_c * Y)^(1/gamma) from the neutral patches, shared by channels.

    log code_c = (1/gamma) log Y + const_c: one slope, three intercepts, least squares.
    """
    if neutral.sum() < 3:
        return None
    y = reference[neutral].mean(axis=1)
    log_y = np.log(np.maximum(y, 1e-4))
    rows, targets = [], []
    for c in range(3):
        for ly, code in zip(log_y, codes[neutral, c], strict=True):
            row = np.zeros(4)
            row[0], row[1 + c] = ly, 1.0
            rows.append(row)
            targets.append(np.log(max(code, 1.0) / 255.0))
    solution, *_ = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)
    slope = solution[0]
    if not 1 / 3.5 <= slope <= 1 / 1.0:
        return None
    return float(1.0 / slope)


def _polish_gamma(gamma: float, codes: np.ndarray, reference: np.ndarray,
                  reference_lab: np.ndarray, weights: np.ndarray) -> float:
    """Refine the exponent on all usable patches: the one whose 3x3 fit has the least Delta-E.

    The neutral patches alone pin the exponent only to a few per cent (six points, the darkest
    noisy), and an exponent 2 % off bends saturated colours by several Delta-E00. One
    parameter fitted on 24 patches does not overfit; the model choice that follows is still
    made by leave-one-out error.
    """
    x = np.clip(codes / 255.0, 0, 1)

    def cost(exponent: float) -> float:
        camera = x**exponent
        matrix = _weighted_fit(camera, reference, weights)
        return float(np.mean(ciede2000(linear_rgb_to_lab(camera @ matrix), reference_lab)))

    # A coarse scan (the cost may have more than one dip), then a golden-section search.
    coarse = np.clip(gamma + np.linspace(-0.3, 0.3, 7), 1.0, 3.5)
    best = float(min(coarse, key=cost))
    lo, hi = max(1.0, best - 0.1), min(3.5, best + 0.1)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    cost_a, cost_b = cost(a), cost(b)
    for _ in range(8):  # brackets to 0.2 * 0.618^8 = 0.004
        if cost_a < cost_b:
            hi, b, cost_b = b, a, cost_a
            a = hi - ratio * (hi - lo)
            cost_a = cost(a)
        else:
            lo, a, cost_a = a, b, cost_b
            b = lo + ratio * (hi - lo)
            cost_b = cost(b)
    return float((lo + hi) / 2.0)


def _leave_one_out(terms: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each sample's prediction by the weighted fit to all the others, from one fit.

    For least squares the left-out residual is the in-sample residual over 1 - h_ii, with h the
    hat matrix of the weighted terms (the PRESS identity), so n refits are not needed.
    """
    xw, yw = terms * weights[:, None], target * weights[:, None]
    gram_inv = np.linalg.pinv(xw.T @ xw)
    matrix = gram_inv @ xw.T @ yw
    leverage = np.einsum("ij,jk,ik->i", xw, gram_inv, xw)
    residual = (yw - xw @ matrix) / (1.0 - np.minimum(leverage, 0.999))[:, None]
    return target - residual / weights[:, None]


def _weighted_fit(terms: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    w = weights[:, None]
    matrix, *_ = np.linalg.lstsq(terms * w, target * w, rcond=None)
    return matrix


def fit_correction(samples: PatchSamples, chart: Chart) -> ColourCorrection | None:
    """Fit every (tone curve, model) pair and keep the best by leave-one-out CIEDE2000.

    None when fewer than :data:`_MIN_PATCHES` patches are usable.
    """
    usable = samples.usable
    if usable.sum() < _MIN_PATCHES:
        return None
    reference = chart_linear_reference(chart)
    reference_lab = linear_rgb_to_lab(reference)
    # Relative error: each patch weighted by 1 / its luminance (floored), as the eye sees it.
    weights = 1.0 / np.maximum(reference.mean(axis=1), 0.03)
    neutral = np.array([n.startswith(("white", "neutral", "black")) for n in chart.patch_names])
    index = np.flatnonzero(usable)
    best: ColourCorrection | None = None
    gamma = _fit_gamma(samples.rgb8, reference, neutral & usable)
    if gamma is not None:
        gamma = _polish_gamma(gamma, samples.rgb8[index], reference[index],
                              reference_lab[index], weights[index])
    curves: list[tuple[ToneCurve, float | None]] = [("srgb", None)]
    if gamma is not None:
        curves.append(("gamma", gamma))
    for tone_curve, exponent in curves:
        x = np.clip(samples.rgb8 / 255.0, 0, 1)
        camera = srgb_to_linear(x) if tone_curve == "srgb" else x**exponent
        for model in ("matrix", "root-polynomial-2"):
            terms = _terms(camera, model)
            if len(index) <= terms.shape[1] + 3:
                continue
            predicted = _leave_one_out(terms[index], reference[index], weights[index])
            loo_mean = float(np.mean(ciede2000(linear_rgb_to_lab(predicted),
                                               reference_lab[index])))
            if best is not None and loo_mean >= best.loo_delta_e00_mean:
                continue
            matrix = _weighted_fit(terms[index], reference[index], weights[index])
            residual = np.full(chart.n_patches, np.nan)
            residual[index] = ciede2000(linear_rgb_to_lab(terms[index] @ matrix),
                                        reference_lab[index])
            best = ColourCorrection(
                tone_curve=tone_curve, gamma=exponent, model=model, matrix=matrix,
                residual_delta_e00=residual, loo_delta_e00_mean=round(loo_mean, 4),
                excluded=tuple(int(i) for i in np.flatnonzero(~usable)),
            )
    if best is not None and samples.stderr is not None:
        best = dataclasses.replace(best, noise_delta_e00=_noise_delta_e00(
            best, samples.rgb8[index], samples.stderr[index]))
    return best


def _noise_delta_e00(correction: ColourCorrection, codes: np.ndarray,
                     stderr: np.ndarray) -> float:
    """Mean CIEDE2000 between each patch corrected and corrected after a one-standard-error
    move of its codes (each channel's sign drawn from a fixed seed, so it is repeatable)."""
    signs = np.random.default_rng(0).choice([-1.0, 1.0], codes.shape)
    moved = np.clip(codes + signs * stderr, 0, 255)
    lab = [linear_rgb_to_lab(np.asarray(correction.apply_to_linear(
        correction.linearise(c)), np.float64)) for c in (codes, moved)]
    return round(float(np.mean(ciede2000(*lab))), 4)


def calibrate_photo(rgb: np.ndarray, card: CardDetection, *, scale: float = 1.0
                    ) -> tuple[ColourCorrection | None, PatchSamples]:
    """Sample the card found in `rgb` and fit the correction (None: too few usable patches).

    `scale` is `rgb`'s pixels per pixel of the card's coordinates, when `rgb` is a reduced
    decode of the photo the card was located in (the card stays in the photo's pixels).
    """
    if scale != 1.0:
        card = dataclasses.replace(card, homography=np.diag([scale, scale, 1.0])
                                   @ card.homography)
    samples = sample_patches(rgb, card)
    return fit_correction(samples, card.chart), samples
