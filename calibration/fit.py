"""From a found colour card to a colour correction: sample, linearise, fit, apply.

The correction maps a photo's 8-bit camera RGB to linear sRGB (D65) as the chart's reference
colours say it should be, so that CIELAB computed from a calibrated photo is the colour of the
object, not of the lamp and the phone.

1. **Sampling**: :mod:`calibration.sampling` (a trimmed mean of each patch's inner area, glare
   and shadow rejected, each patch weighted by its own uniformity).
2. **Linearisation** (tone curve): the sRGB decoding; a power curve whose one exponent is fitted
   on the six neutral patches (phones with a plain gamma); or a curve per channel fitted on
   the neutrals, log value against log code: a line (a gain and a power: a camera without
   white balance) or a parabola from the darkest neutral up with a straight toe below it (a
   phone's contrast curve, which no power follows).
3. **Model**: per-channel gains (white balance only), a 3x3 matrix, a 3x3 matrix with an
   offset (flare), or a root-polynomial of degree 2 (Finlayson, Mackiewicz & Hurlbert 2015:
   R, G, B, sqrt(RG), sqrt(GB), sqrt(RB), which scale with exposure as the matrix does), its
   cross terms held back by a ridge (:mod:`calibration.ridge`).
   Least squares in CIEDE2000's own local metric at each patch's reference colour (what the
   fit is judged by: :mod:`calibration.weighted`), times the patch's uniformity weight.
4. **Light**: a card is rarely lit evenly. The root-polynomial is also fitted with a plane of
   light over the card (a light level exp(a x + b y), two more parameters), so that uneven
   light is not taken for colour; the correction is then the one at the card's centre and
   :attr:`ColourCorrection.light_spread` says how uneven the light was (the pair policy counts
   it: a product beside the card is lit neither as its centre nor as any one patch).
5. **Choice**: every (tone curve, model) pair is scored by its exact leave-one-patch-out mean
   CIEDE2000 on the photo itself: each patch predicted by the tone curve and model fitted
   without it (the PRESS identity for the model; the curve refitted when the patch is a
   neutral one; the light's slopes searched again without it). The candidates are taken from
   the fewest parameters to the most, and a richer one replaces the choice only when its LOO
   is clearly lower (:func:`clearly_better`): with 24 patches a richer model always fits
   better and may still predict worse. The plane of light is tried last, on the tone curve
   the root-polynomial predicts best with (one candidate: each costs a search of the slopes).
   That LOO is the calibration's own accuracy (it feeds the report's colour uncertainty); the
   choice among candidates is made on the same LOO, so it is the chosen candidate's, not a
   nested estimate of the whole procedure's.

References
----------
.. [1] G. D. Finlayson, M. Mackiewicz, A. Hurlbert, "Color Correction Using Root-Polynomial
       Regression", IEEE Trans. Image Processing 24(5), 1460-1470 (2015).
.. [2] IEC 61966-2-1:1999, Default RGB colour space - sRGB.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import cv2
import numpy as np

from calibration.charts import Chart
from calibration.detect import CardDetection
from calibration.ridge import cross_term_penalty
from calibration.sampling import PatchSamples, sample_patches
from calibration.weighted import (
    fit_with_light_plane,
    fold_predictions,
    leave_one_out,
    light_plane_leave_one_out,
    model_terms,
    perceptual_metric_roots,
    weighted_fit,
)
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

__all__ = ["ColourCorrection", "PatchSamples", "calibrate_photo", "chart_linear_reference",
           "chart_metric_roots", "clearly_better", "fit_correction", "sample_patches"]

ToneCurve = Literal["srgb", "gamma", "per-channel", "per-channel-quadratic"]
Model = Literal["diagonal", "matrix", "affine", "root-polynomial-2"]

# Free parameters of each tone curve and model: the order in which candidates are tried.
_CURVE_PARAMS: dict[str, int] = {"srgb": 0, "gamma": 1, "per-channel": 6,
                                 "per-channel-quadratic": 9}
_MODEL_PARAMS: dict[str, int] = {"diagonal": 3, "matrix": 9, "affine": 12,
                                 "root-polynomial-2": 18}
_WARN_MEAN_DELTA_E = 3.0
# The model tried with a plane of light over the card (see fit_correction).
_PLANE_MODEL = "root-polynomial-2"
_MIN_PATCHES = 10  # fewer usable patches: no fit (a 3x3 matrix with margin for the check)
_MIN_NEUTRALS = 4  # usable neutral patches a per-channel curve needs (two or three parameters)
_BETTER_ABS = 0.15  # Delta-E00 a richer model's LOO must gain ...
_BETTER_REL = 0.05  # ... and this fraction of the simpler one's
# The plane of light costs ~25 ms per photo (a search of its slopes per left-out patch), the
# rest of the fit ~5 ms. Uneven light shows in the flat fits' leave-one-out predictions
# as a lightness error that grows across the card; the plane is tried only where that trend
# (L* per 100 mm, a least-squares plane through the patches' L* errors) reaches this. A card
# 10% brighter per 100 mm leaves ~2 L*; an evenly lit one noise. Keeps `make bench`'s 12 MP
# pair within issue 23's 15% (its evenly lit cards never pay for the search).
_PLANE_WORTH_TRYING_LSTAR = 0.75
_CODE_FLOOR = 0.5 / 255.0  # a zero code's place on a log scale


def chart_linear_reference(chart: Chart) -> np.ndarray:
    """The chart's reference colours in linear sRGB, D65 (Bradford from D50), unclipped."""
    xyz = chromatic_adaptation_bradford(lab_to_xyz(chart.lab_d50, white=D50), D50, D65)
    return xyz_to_linear_rgb(xyz)


@functools.lru_cache(maxsize=8)
def chart_metric_roots(chart: Chart) -> np.ndarray:
    """:func:`calibration.weighted.perceptual_metric_roots` at the chart's reference colours,
    read-only. They are the same for every photo of a chart and cost a dozen CIEDE2000
    evaluations, so they are computed once per chart (charts are told apart by identity)."""
    roots = perceptual_metric_roots(chart_linear_reference(chart))
    roots.setflags(write=False)
    return roots


def _linearise(codes: np.ndarray, tone_curve: str, gamma: float | None,
               curve: np.ndarray | None) -> np.ndarray:
    x = np.clip(np.asarray(codes, np.float64) / 255.0, 0.0, 1.0)
    if tone_curve == "srgb":
        return srgb_to_linear(x)
    if tone_curve == "gamma":
        return x**gamma
    # curve[c] = (q, p, k, t0): log value = q (t - t0)^2 + p (t - t0) + k with t = log code,
    # above t0; below it the line that continues the curve's slope there (the toe).
    t = np.log(np.maximum(x, _CODE_FLOOR)) - curve[:, 3]
    return np.exp(curve[:, 0] * np.maximum(t, 0.0) ** 2 + curve[:, 1] * t + curve[:, 2])


@dataclasses.dataclass(frozen=True)
class ColourCorrection:
    """A fitted camera RGB -> linear sRGB (D65) correction, and how well it fits its chart."""

    tone_curve: ToneCurve
    gamma: float | None  # the fitted exponent for "gamma"
    model: Model
    matrix: np.ndarray  # (3, 3), (4, 3) ("affine") or (6, 3): terms @ matrix = linear sRGB
    residual_delta_e00: np.ndarray  # (n,) per patch; NaN for patches left out of the fit
    loo_delta_e00_mean: float  # leave-one-out mean CIEDE2000 (what chose the model)
    excluded: tuple[int, ...]  # patches left out (indices), see PatchSamples.problems
    # mean CIEDE2000 the patches' sampling noise (PatchSamples.stderr) moves a corrected colour
    noise_delta_e00: float = 0.0
    # (3, 4) per channel for the per-channel curves: see _linearise
    curve: np.ndarray | None = None
    # (n, 3) CIELAB of each patch as predicted by the fit without it, as the corrected photo
    # shows it (with a plane of light: its own place's light left in); NaN for left-out patches
    loo_lab: np.ndarray | None = None
    # the light's slopes (a, b) over the card fitted with the model (see
    # calibration.weighted.fit_with_light_plane): the light level is exp(a x + b y), x and y
    # in chart-mm / 100 from the card's centre; None: fitted as evenly lit
    light_slopes: tuple[float, float] | None = None
    # standard deviation of that log light level over the chart's patches (0: evenly lit): how
    # differently from the card's centre a colour beside it may be lit
    light_spread: float = 0.0

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
        """8-bit code values (any float shape, channels last) -> linear camera RGB."""
        return _linearise(codes, self.tone_curve, self.gamma, self.curve)

    def lookup_table(self) -> np.ndarray:
        """(256, 3) float32: code value -> linear camera value, per channel."""
        codes = np.repeat(np.arange(256.0)[:, None], 3, axis=1)
        return self.linearise(codes).astype(np.float32)

    def apply_to_linear(self, camera_linear: np.ndarray) -> np.ndarray:
        """Linear camera RGB (..., 3) -> calibrated linear sRGB, float32."""
        linear = np.asarray(camera_linear, np.float32)
        matrix = self.matrix.astype(np.float32)
        if self.model == "root-polynomial-2":
            return (model_terms(linear, self.model) @ matrix).astype(np.float32)
        # cv2.transform: a (3, 3) matrix, or (3, 4) with the offset as the last column.
        flat = linear.reshape(-1, 1, 3)
        return cv2.transform(flat, matrix.T).reshape(linear.shape)

    def apply(self, rgb8: np.ndarray) -> np.ndarray:
        """An 8-bit RGB image (H, W, 3) -> calibrated linear sRGB float32 (H, W, 3).

        A 256-entry table per channel for the tone curve, then the matrix (cv2.transform,
        float32), so a 12 MP photo takes tens of milliseconds.
        """
        if rgb8.dtype != np.uint8:
            raise ValueError(f"rgb8 must be uint8, got {rgb8.dtype}")
        linear = cv2.LUT(rgb8, self.lookup_table()[None])
        return self.apply_to_linear(linear)


def _fit_gamma(codes: np.ndarray, reference: np.ndarray, neutral: np.ndarray) -> float | None:
    """Exponent of code = (gain_c * Y)^(1/gamma) from the neutral patches, shared by channels.

    log code_c = (1/gamma) log Y + const_c: one slope, three intercepts, least squares.
    """
    if neutral.sum() < 2:
        return None
    y = reference[neutral].mean(axis=1)
    log_y = np.log(np.maximum(y, 1e-4))
    n = len(log_y)
    # Rows channel by channel: (log Y, 1 in the channel's intercept column).
    design = np.zeros((3 * n, 4))
    design[:, 0] = np.tile(log_y, 3)
    design[np.arange(3 * n), 1 + np.repeat(np.arange(3), n)] = 1.0
    targets = np.log(np.maximum(codes[neutral].T.ravel(), 1.0) / 255.0)
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    slope = solution[0]
    if not 1 / 3.5 <= slope <= 1 / 1.0:
        return None
    return float(1.0 / slope)


def _fit_channel_curves(codes: np.ndarray, reference: np.ndarray, neutral: np.ndarray, *,
                        quadratic: bool) -> np.ndarray | None:
    """(3, 4) per channel (see :func:`_linearise`): log reference against log code on the
    neutrals, a line (a gain and a power) or a parabola from the darkest neutral up (a phone's
    contrast curve) with a straight toe below it.

    None when too few neutrals are usable or the curve's slope (the local exponent) leaves
    0.5-6 between the darkest neutral and white: no camera's tone curve does that.
    """
    if neutral.sum() < _MIN_NEUTRALS:
        return None
    log_x = np.log(np.maximum(codes[neutral] / 255.0, _CODE_FLOOR))
    log_y = np.log(np.maximum(reference[neutral], 1e-4))
    t0 = log_x.min(axis=0) if quadratic else np.zeros(3)
    curve = np.zeros((3, 4))
    for c in range(3):
        t = log_x[:, c] - t0[c]
        design = np.stack([t**2, t, np.ones_like(t)], axis=1)[:, (0 if quadratic else 1):]
        solution, *_ = np.linalg.lstsq(design, log_y[:, c], rcond=None)
        curve[c, (0 if quadratic else 1):3] = solution
    curve[:, 3] = t0
    slopes = np.stack([curve[:, 1], curve[:, 1] - 2.0 * curve[:, 0] * t0])  # at t0 and white
    if (slopes < 0.5).any() or (slopes > 6.0).any():
        return None
    return curve


def _curve_fit(tone_curve: str, codes: np.ndarray, reference: np.ndarray,
               neutral: np.ndarray) -> tuple[bool, float | None, np.ndarray | None]:
    """(possible, gamma, curve) of one tone curve fitted on the `neutral` patches."""
    if tone_curve == "srgb":
        return True, None, None
    if tone_curve == "gamma":
        gamma = _fit_gamma(codes, reference, neutral)
        return gamma is not None, gamma, None
    curve = _fit_channel_curves(codes, reference, neutral,
                                quadratic=tone_curve == "per-channel-quadratic")
    return curve is not None, None, curve


@dataclasses.dataclass(frozen=True)
class _Problem:
    """What every candidate is fitted to: the usable patches' codes, targets and weights."""

    codes: np.ndarray  # (m, 3) usable patches only
    reference: np.ndarray  # (m, 3) linear sRGB targets
    reference_lab: np.ndarray
    weights: np.ndarray  # (m, 3, 3) each patch's metric root times its uniformity weight
    neutral: np.ndarray  # (m,) bool
    xy: np.ndarray  # (m, 2) patch centres, chart-mm / 100 from the card's centre


# A tone curve fitted on all usable neutrals: gamma, curve, linear camera RGB (m, 3), and
# {neutral patch i: linear camera RGB with the curve fitted without patch i}.
_CurveFolds = tuple[float | None, np.ndarray | None, np.ndarray, dict[int, np.ndarray]]


def _curve_folds(problem: _Problem, tone_curve: str) -> _CurveFolds | None:
    """A tone curve fitted on all usable neutrals: (gamma, curve, linear camera RGB (m, 3),
    {neutral patch i: linear camera RGB with the curve fitted without patch i}); None: the
    curve cannot be fitted. Only the neutrals move the curve, so only they need refits."""
    possible, gamma, curve = _curve_fit(tone_curve, problem.codes, problem.reference,
                                        problem.neutral)
    if not possible:
        return None
    camera = _linearise(problem.codes, tone_curve, gamma, curve)
    folds = {}
    if tone_curve != "srgb":
        for i in np.flatnonzero(problem.neutral):
            others = np.ones(len(camera), bool)
            others[i] = False
            fold_possible, fold_gamma, fold_curve = _curve_fit(
                tone_curve, problem.codes, problem.reference, problem.neutral & others)
            # Too few neutrals without this one: the curve fitted with it (a card partly out of
            # the photo), a little optimistic for this patch rather than no candidate.
            if fold_possible:
                folds[int(i)] = _linearise(problem.codes, tone_curve, fold_gamma, fold_curve)
    return gamma, curve, camera, folds


def _candidate_loo(problem: _Problem, curves: dict[str, _CurveFolds], model: str
                   ) -> np.ndarray | None:
    """LOO-predicted linear sRGB (c, m, 3) of one model on each tone curve of `curves` (in
    its order); None: too few patches.

    The model's LOO by the PRESS identity on the curve fitted to all neutrals; a neutral
    patch's own prediction refits the curve and the model without it. All the curves at
    once: per curve, a solve's overhead outweighed its work on 24 patches.
    """
    fitted = list(curves.values())
    terms = model_terms(np.stack([camera for _, _, camera, _ in fitted]), model)
    if terms.shape[1] <= terms.shape[2] + 3:
        return None
    penalties = [cross_term_penalty(camera, problem.weights, model) for _, _, camera, _ in fitted]
    penalty = None if penalties[0] is None else np.stack(penalties)  # each curve's own ridge
    predicted = leave_one_out(terms, problem.reference, problem.weights, model,
                              penalty=penalty)
    owners = [(c, i) for c, (_, _, _, folds) in enumerate(fitted) for i in folds]
    if owners:
        curve_of, left_out = np.array(owners).T
        fold_cameras = np.stack([fitted[c][3][i] for c, i in owners])
        predicted[curve_of, left_out] = fold_predictions(
            model_terms(fold_cameras, model), left_out, problem.reference, problem.weights,
            model, penalty=None if penalty is None else penalty[curve_of])
    return predicted


def _plane_candidate_loo(problem: _Problem, camera: np.ndarray, folds: dict[int, np.ndarray],
                         model: str) -> tuple[np.ndarray, np.ndarray] | None:
    """As :func:`_candidate_loo` with a plane of light fitted with the model: every patch
    predicted by the curve, model and light fitted without it (no shortcut: the light's
    slopes move with the patches)."""
    if len(camera) <= model_terms(camera[:1], model).shape[1] + 5:
        return None
    return light_plane_leave_one_out(camera, folds, problem.xy, problem.reference,
                                     problem.weights, model,
                                     penalty=cross_term_penalty(camera, problem.weights, model))


def _light_trend(predicted_lab: np.ndarray, reference_lab: np.ndarray, xy: np.ndarray) -> float:
    """How fast the predictions' lightness error grows across the card: the gradient's size
    (L* per 100 mm) of a least-squares plane through the patches' L* errors."""
    design = np.column_stack([np.ones(len(xy)), xy])
    coefficients, *_ = np.linalg.lstsq(design, predicted_lab[:, 0] - reference_lab[:, 0],
                                       rcond=None)
    return float(np.hypot(coefficients[1], coefficients[2]))


def clearly_better(error: float, than: float) -> bool:
    """A richer choice's error (Delta-E00) must beat a simpler one's by a margin, not by noise."""
    return error < than - max(_BETTER_ABS, _BETTER_REL * than)


def fit_correction(samples: PatchSamples, chart: Chart) -> ColourCorrection | None:
    """Fit every (tone curve, model) pair, and the root-polynomial with a plane of light, and
    keep the simplest whose leave-one-patch-out CIEDE2000 no richer one clearly beats (see the
    module's notes).

    None when fewer than :data:`_MIN_PATCHES` patches are usable.
    """
    usable = samples.usable
    if usable.sum() < _MIN_PATCHES:
        return None
    reference = chart_linear_reference(chart)
    reference_lab = linear_rgb_to_lab(reference)
    index = np.flatnonzero(usable)
    weights = chart_metric_roots(chart)
    if samples.uniformity is not None:
        weights = weights * samples.uniformity[:, None, None]
    neutral = np.array([n.startswith(("white", "neutral", "black")) for n in chart.patch_names])
    problem = _Problem(codes=samples.rgb8[index], reference=reference[index],
                       reference_lab=reference_lab[index], weights=weights[index],
                       neutral=neutral[index], xy=chart.patch_centres_mm()[index] / 100.0)
    curves = {c: fitted for c in _CURVE_PARAMS
              if (fitted := _curve_folds(problem, c)) is not None}
    predictions = {}
    for model in _MODEL_PARAMS:
        predicted = _candidate_loo(problem, curves, model)
        if predicted is not None:
            predictions.update({(c, model): p for c, p in zip(curves, predicted, strict=True)})
    candidates = sorted(((c, m) for c in curves for m in _MODEL_PARAMS if (c, m) in predictions),
                        key=lambda cm: _CURVE_PARAMS[cm[0]] + _MODEL_PARAMS[cm[1]])
    # Every candidate's CIEDE2000 in one call: on 24 patches a call's overhead is most of it.
    loo_labs = linear_rgb_to_lab(np.stack([predictions[cm] for cm in candidates]))
    loos = np.mean(ciede2000(loo_labs, problem.reference_lab), axis=1)
    chosen, richest = None, None
    for (tone_curve, model), loo_lab, loo in zip(candidates, loo_labs, loos.tolist(),
                                                 strict=True):
        gamma, curve, _, _ = curves[tone_curve]
        if chosen is None or clearly_better(loo, chosen[0]):
            chosen = (loo, tone_curve, model, False, gamma, curve, loo_lab)
        if model == _PLANE_MODEL and (richest is None or loo < richest[0]):
            richest = (loo, tone_curve)
    if richest is not None and chosen is not None and _light_trend(
            chosen[6], problem.reference_lab, problem.xy) >= _PLANE_WORTH_TRYING_LSTAR:
        # The plane of light, the richest candidate, is tried on the tone curve the model it
        # extends predicts best with (one candidate: each costs a search of the light's slopes
        # per left-out patch), and only where the flat fits leave an error a plane could
        # explain (see _PLANE_WORTH_TRYING_LSTAR).
        tone_curve = richest[1]
        gamma, curve, camera, folds = curves[tone_curve]
        predicted = _plane_candidate_loo(problem, camera, folds, _PLANE_MODEL)
        if predicted is not None:
            at_centre, in_place = predicted
            loo = float(np.mean(ciede2000(linear_rgb_to_lab(at_centre),
                                          problem.reference_lab)))
            if chosen is None or clearly_better(loo, chosen[0]):
                # the photo's patches as the correction shows them, the light left in (what
                # the pair policy compares: the product is not where the card's centre is)
                chosen = (loo, tone_curve, _PLANE_MODEL, True, gamma, curve,
                          linear_rgb_to_lab(in_place))
    if chosen is None:
        return None
    loo, tone_curve, model, plane, gamma, curve, loo_lab = chosen
    camera = _linearise(problem.codes, tone_curve, gamma, curve)
    slopes = None
    penalty = cross_term_penalty(camera, problem.weights, model)
    if plane:
        matrix, slopes = fit_with_light_plane(camera, problem.xy, problem.reference,
                                              problem.weights, model, penalty=penalty)
        camera = camera * np.exp(-(problem.xy @ np.array(slopes)))[:, None]
    else:
        matrix = weighted_fit(model_terms(camera, model), problem.reference, problem.weights,
                              model, penalty=penalty)
    terms = model_terms(camera, model)
    if model == "diagonal":
        matrix = np.diag(np.diag(matrix))
    residual = np.full(chart.n_patches, np.nan)
    residual[index] = ciede2000(linear_rgb_to_lab(terms @ matrix), problem.reference_lab)
    all_loo_lab = np.full((chart.n_patches, 3), np.nan)
    all_loo_lab[index] = loo_lab
    correction = ColourCorrection(
        tone_curve=tone_curve, gamma=gamma, model=model, matrix=matrix,
        residual_delta_e00=residual, loo_delta_e00_mean=round(loo, 4),
        excluded=tuple(int(i) for i in np.flatnonzero(~usable)), curve=curve,
        loo_lab=all_loo_lab, light_slopes=slopes,
        light_spread=0.0 if slopes is None else round(float(np.std(
            chart.patch_centres_mm() / 100.0 @ np.array(slopes))), 4),
    )
    if samples.stderr is not None:
        correction = dataclasses.replace(correction, noise_delta_e00=_noise_delta_e00(
            correction, samples.rgb8[index], samples.stderr[index]))
    return correction


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
