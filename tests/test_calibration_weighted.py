"""The CIEDE2000-weighted least squares and the plane of light (calibration.weighted), against
known truth: exact CIEDE2000 of small errors, brute-force refits, a known light gradient."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.charts import COLORCHECKER_CLASSIC
from calibration.fit import chart_linear_reference, fit_correction
from calibration.sampling import PatchSamples
from calibration.weighted import (
    fit_with_light_plane,
    fold_predictions,
    leave_one_out,
    light_plane_leave_one_out,
    model_terms,
    perceptual_metric_roots,
    weighted_fit,
)
from imaging.color import ciede2000, linear_rgb_to_lab, linear_to_srgb

_REFERENCE = chart_linear_reference(COLORCHECKER_CLASSIC)
_XY = COLORCHECKER_CLASSIC.patch_centres_mm() / 100.0


def test_the_metric_gives_ciede2000_of_small_errors():
    """|R d| is the CIEDE2000 of a small error d, for every patch and direction."""
    roots = perceptual_metric_roots(_REFERENCE)
    rng = np.random.default_rng(0)
    for _ in range(5):
        step = rng.normal(0.0, 1.0, _REFERENCE.shape)
        step *= 2e-3 * np.maximum(_REFERENCE.mean(axis=1, keepdims=True), 0.03) / np.linalg.norm(
            step, axis=1, keepdims=True)
        exact = ciede2000(linear_rgb_to_lab(_REFERENCE),
                          linear_rgb_to_lab(_REFERENCE + step))
        approximate = np.linalg.norm(np.einsum("iab,ib->ia", roots, step), axis=1)
        assert approximate == pytest.approx(exact, rel=0.03, abs=1e-3)


def _noisy_camera(seed: int) -> np.ndarray:
    crosstalk = np.array([[0.7, 0.2, 0.05], [0.1, 0.6, 0.1], [0.02, 0.15, 0.5]])
    camera = _REFERENCE.clip(0.005) @ np.linalg.inv(crosstalk).T * 0.4
    return np.abs(camera * (1 + np.random.default_rng(seed).normal(0, 0.03, camera.shape)))


@pytest.mark.parametrize("model", ["diagonal", "matrix", "affine", "root-polynomial-2"])
def test_leave_one_out_is_the_refit_without_the_patch(model):
    camera = _noisy_camera(1)
    roots = perceptual_metric_roots(_REFERENCE) * np.linspace(0.5, 1.0, 24)[:, None, None]
    terms = model_terms(camera, model)
    shortcut = leave_one_out(terms, _REFERENCE, roots, model)
    for i in range(24):
        others = np.arange(24) != i
        matrix = weighted_fit(terms[others], _REFERENCE[others], roots[others], model)
        if model == "diagonal":
            matrix = np.diag(np.diag(matrix))
        assert shortcut[i] == pytest.approx(terms[i] @ matrix, abs=1e-8)


@pytest.mark.parametrize("model", ["diagonal", "matrix", "affine", "root-polynomial-2"])
def test_fold_predictions_are_the_refits_without_each_patch_on_its_own_terms(model):
    """Each fold has its own camera values (a tone curve fitted without the patch): the batched
    solve gives what one weighted_fit per fold gives."""
    roots = perceptual_metric_roots(_REFERENCE) * np.linspace(0.5, 1.0, 24)[:, None, None]
    left_out = np.array([0, 5, 18, 19, 23])
    fold_terms = np.stack([model_terms(_noisy_camera(seed), model) for seed in range(5)])
    batched = fold_predictions(fold_terms, left_out, _REFERENCE, roots, model)
    for f, i in enumerate(left_out):
        others = np.arange(24) != i
        matrix = weighted_fit(fold_terms[f, others], _REFERENCE[others], roots[others], model)
        assert batched[f] == pytest.approx(fold_terms[f, i] @ matrix, rel=1e-9, abs=1e-12)


def test_a_known_plane_of_light_is_found():
    """Camera values of a white-balance error under light exp(0.15 x - 0.1 y) (x, y in
    chart-mm / 100): the fit finds the slopes and the gains, and predicts every patch it did
    not see at the card's centre's light."""
    slopes = (0.15, -0.1)
    camera = _REFERENCE * [0.8, 1.0, 0.7]
    lit = camera * np.exp(_XY @ np.array(slopes))[:, None]
    roots = perceptual_metric_roots(_REFERENCE)
    matrix, found = fit_with_light_plane(lit, _XY, _REFERENCE, roots, "matrix")
    assert found == pytest.approx(slopes, abs=1e-9)
    assert matrix == pytest.approx(np.diag([1 / 0.8, 1.0, 1 / 0.7]), abs=1e-6)
    at_centre, in_place = light_plane_leave_one_out(lit, {}, _XY, _REFERENCE, roots, "matrix")
    assert ciede2000(linear_rgb_to_lab(at_centre), linear_rgb_to_lab(_REFERENCE)).max() < 0.05
    # in place: as the corrected photo shows each patch, the light left in
    expected = _REFERENCE * np.exp(_XY @ np.array(slopes))[:, None]
    assert in_place == pytest.approx(expected, abs=1e-6)


def test_the_plane_of_light_leave_one_out_is_the_refit_without_the_patch():
    camera = _noisy_camera(3) * np.exp(_XY @ np.array([0.1, 0.05]))[:, None]
    roots = perceptual_metric_roots(_REFERENCE)
    at_centre, _ = light_plane_leave_one_out(camera, {}, _XY, _REFERENCE, roots,
                                             "root-polynomial-2")
    for i in (0, 7, 18, 23):
        others = np.arange(24) != i
        matrix, (a, b) = fit_with_light_plane(camera[others], _XY[others], _REFERENCE[others],
                                              roots[others], "root-polynomial-2")
        light = np.exp(-(a * _XY[i, 0] + b * _XY[i, 1]))
        refit = model_terms(camera[i] * light, "root-polynomial-2") @ matrix
        assert at_centre[i] == pytest.approx(refit, abs=1e-7)


def test_an_unevenly_lit_card_is_fitted_with_its_light():
    """An sRGB camera with a white-balance error and a card 25 % brighter at one end than at
    the other: the correction chosen fits the light, reports its spread, and predicts the
    patches it did not see within 1 Delta-E00."""
    light = np.exp(_XY @ np.array([0.1, 0.0]))[:, None]
    linear = np.clip(_REFERENCE * [0.8, 0.95, 0.7] * 0.9 * light, 0, 1)
    codes = linear_to_srgb(linear) * 255.0
    codes = codes + np.random.default_rng(4).normal(0.0, 0.5, codes.shape)
    samples = PatchSamples(rgb8=codes, usable=((codes > 4) & (codes < 250)).all(axis=1),
                           problems=(None,) * 24)
    correction = fit_correction(samples, COLORCHECKER_CLASSIC)
    assert correction.light_slopes is not None
    assert correction.light_slopes[0] == pytest.approx(0.1, abs=0.05)
    assert correction.light_spread == pytest.approx(np.std(_XY[:, 0] * 0.1), rel=0.5)
    assert correction.loo_delta_e00_mean < 1.0
    even = fit_correction(PatchSamples(rgb8=linear_to_srgb(np.clip(
        _REFERENCE * [0.8, 0.95, 0.7] * 0.9, 0, 1)) * 255.0, usable=samples.usable,
        problems=(None,) * 24), COLORCHECKER_CLASSIC)
    assert even.light_slopes is None and even.light_spread == 0.0
