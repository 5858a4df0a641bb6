"""The ridge on the root-polynomial's cross terms (calibration.ridge): what it holds back,
and that the leave-one-out shortcuts stay exact refits with it."""

from __future__ import annotations

import numpy as np
import pytest

from calibration import weighted
from calibration.charts import COLORCHECKER_CLASSIC as CHART
from calibration.fit import chart_linear_reference
from calibration.ridge import CROSS_TERM_RIDGE, cross_term_penalty
from calibration.weighted import model_terms

_REFERENCE = chart_linear_reference(CHART)
_ROOTS = weighted.perceptual_metric_roots(_REFERENCE)
_XY = CHART.patch_centres_mm() / 100.0


def _camera(seed: int) -> np.ndarray:
    """A camera whose channels mix and whose rendering bends the colours a little (a square
    root term), with 3 % noise."""
    crosstalk = np.array([[0.7, 0.2, 0.05], [0.1, 0.6, 0.1], [0.02, 0.15, 0.5]])
    camera = _REFERENCE.clip(0.005) @ np.linalg.inv(crosstalk).T * 0.4
    camera = np.abs(camera) + 0.05 * np.sqrt(np.abs(camera[:, [1, 2, 0]] * camera))
    return camera * (1 + np.random.default_rng(seed).normal(0, 0.03, camera.shape))


def test_only_the_root_polynomials_cross_terms_are_held_back():
    camera = _camera(0)
    for model in ("diagonal", "matrix", "affine"):
        assert cross_term_penalty(camera, _ROOTS, model) is None
    assert cross_term_penalty(camera, _ROOTS, "root-polynomial-2", strength=0.0) is None
    penalty = cross_term_penalty(camera, _ROOTS, "root-polynomial-2").reshape(3, 6)
    assert (penalty[:, :3] == 0).all() and (penalty[:, 3:] > 0).all()
    # strength times the normal equations' mean diagonal
    terms = model_terms(camera, "root-polynomial-2")
    design = np.einsum("iab,ibp->iap", _ROOTS, np.stack(
        [np.kron(np.eye(3), t[None]) for t in terms]))
    gram = np.einsum("iap,iaq->pq", design, design)
    assert penalty[0, 3] == pytest.approx(CROSS_TERM_RIDGE * np.trace(gram) / 18, rel=1e-9)


def test_a_strong_ridge_leaves_the_matrix_fit():
    """Held back hard enough, the cross terms vanish and the fit is the plain 3x3 one."""
    camera = _camera(1)
    terms = model_terms(camera, "root-polynomial-2")
    strong = cross_term_penalty(camera, _ROOTS, "root-polynomial-2", strength=1e6)
    ridged = weighted.weighted_fit(terms, _REFERENCE, _ROOTS, "root-polynomial-2", penalty=strong)
    plain = weighted.weighted_fit(camera, _REFERENCE, _ROOTS, "matrix")
    assert np.abs(ridged[3:]).max() < 1e-4
    assert ridged[:3] == pytest.approx(plain, abs=1e-3)


def test_leave_one_out_with_the_ridge_is_the_refit_without_the_patch():
    camera = _camera(2)
    terms = model_terms(camera, "root-polynomial-2")
    penalty = cross_term_penalty(camera, _ROOTS, "root-polynomial-2", strength=1e-2)
    shortcut = weighted.leave_one_out(terms, _REFERENCE, _ROOTS, "root-polynomial-2",
                                      penalty=penalty)
    unridged = weighted.leave_one_out(terms, _REFERENCE, _ROOTS, "root-polynomial-2")
    assert np.abs(shortcut - unridged).max() > 1e-4  # the ridge does something
    for i in range(24):
        others = np.arange(24) != i
        matrix = weighted.weighted_fit(terms[others], _REFERENCE[others], _ROOTS[others],
                              "root-polynomial-2", penalty=penalty)
        assert shortcut[i] == pytest.approx(terms[i] @ matrix, abs=1e-8)


def test_the_plane_of_light_with_the_ridge_is_the_refit_without_the_patch():
    camera = _camera(3) * np.exp(_XY @ np.array([0.1, 0.05]))[:, None]
    penalty = cross_term_penalty(camera, _ROOTS, "root-polynomial-2", strength=1e-2)
    at_centre, _ = weighted.light_plane_leave_one_out(camera, {}, _XY, _REFERENCE, _ROOTS,
                                             "root-polynomial-2", penalty=penalty)
    for i in (0, 7, 18, 23):
        others = np.arange(24) != i
        matrix, (a, b) = weighted.fit_with_light_plane(
            camera[others], _XY[others], _REFERENCE[others], _ROOTS[others],
            "root-polynomial-2", penalty=penalty)
        light = np.exp(-(a * _XY[i, 0] + b * _XY[i, 1]))
        refit = model_terms(camera[i] * light, "root-polynomial-2") @ matrix
        assert at_centre[i] == pytest.approx(refit, abs=1e-7)
