"""Patch sampling and the choice of correction on the photo itself (issue 24).

Known truth: rendered cards (testkit/scenes.py) with glare and shadow painted over part of a
patch, whose colour without them is known; synthetic patch codes from cameras whose response
is known (white balance only, or with crosstalk).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from calibration.charts import COLORCHECKER_CLASSIC
from calibration.detect import find_card
from calibration.fit import (
    PatchSamples,
    chart_linear_reference,
    fit_correction,
    sample_patches,
)
from imaging.color import linear_to_srgb
from testkit.scenes import Camera, make_pair
from vision.calibrate import PhotoCalibration, card_agreement
from vision.compare import compare
from vision.prepare import prepare_golden
from vision.spec import parse_spec

SMALL = Camera(width=1280, height=960)


def _patch_frame(card, i: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre of patch `i` in photo pixels, its side's unit vectors (x, y), its side in px."""
    chart = card.chart
    centre = chart.patch_centres_mm()[i]
    side = chart.patch_size_mm
    pts = np.array([centre, centre + [side / 2, 0], centre + [0, side / 2]], np.float64)
    px = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), card.homography).reshape(-1, 2)
    return px[0], np.stack([px[1] - px[0], px[2] - px[0]]) * 2 / side, side * float(
        np.linalg.norm(px[1] - px[0]) * 2 / side)


@pytest.fixture(scope="module")
def card_photo():
    pair = make_pair("coffee", golden_camera=SMALL, seed=1)
    card = find_card(pair.golden)
    assert card is not None
    return pair.golden, card


def test_glare_and_shadow_over_part_of_a_patch_leave_its_colour(card_photo):
    """A specular highlight over a quarter of one patch's sampled area and a shadow over a
    third of another's: both patches stay usable and read within 1.5 codes of their colour
    without them (the median of the whole inner area moved by up to 30 codes)."""
    photo, card = card_photo
    truth = sample_patches(photo, card)
    spoiled = photo.copy()
    glare_patch = COLORCHECKER_CLASSIC.patch_index("purplish blue")
    shadow_patch = COLORCHECKER_CLASSIC.patch_index("yellow green")
    centre, axes, side_px = _patch_frame(card, glare_patch)
    glare_at = centre + 0.15 * side_px * axes[0]
    cv2.circle(spoiled, tuple(int(round(v)) for v in glare_at), int(0.17 * side_px),
               (252, 252, 250), -1)
    centre, axes, side_px = _patch_frame(card, shadow_patch)
    corners = np.array([centre + side_px * (sx * axes[0] + sy * axes[1])
                        for sx, sy in ((0.1, -0.5), (0.5, -0.5), (0.5, 0.5), (0.1, 0.5))])
    shadow = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillConvexPoly(shadow, np.round(corners).astype(np.int32), 1)
    spoiled[shadow.astype(bool)] = (spoiled[shadow.astype(bool)] * 0.45).astype(np.uint8)
    samples = sample_patches(spoiled, card)
    for i in (glare_patch, shadow_patch):
        assert samples.usable[i], samples.problems[i]
        assert np.abs(samples.rgb8[i] - truth.rgb8[i]).max() < 1.5
    # The spoiled patches count for less in the fit than an even one.
    even = COLORCHECKER_CLASSIC.patch_index("neutral 5")
    assert samples.uniformity[shadow_patch] < samples.uniformity[even]


def test_a_patch_mostly_under_glare_is_flagged(card_photo):
    photo, card = card_photo
    spoiled = photo.copy()
    i = COLORCHECKER_CLASSIC.patch_index("blue")
    centre, _, side_px = _patch_frame(card, i)
    cv2.circle(spoiled, tuple(int(round(v)) for v in centre), int(0.45 * side_px),
               (253, 253, 253), -1)
    samples = sample_patches(spoiled, card)
    assert not samples.usable[i] and samples.problems[i] in ("glare", "clipped")


def _camera_codes(matrix: np.ndarray, seed: int, noise: float = 0.8) -> PatchSamples:
    """Patch codes of an sRGB-encoding camera with a known linear response, with noise."""
    linear = np.clip(chart_linear_reference(COLORCHECKER_CLASSIC) @ matrix.T, 0, 1)
    codes = linear_to_srgb(linear) * 255.0
    codes = codes + np.random.default_rng(seed).normal(0.0, noise, codes.shape)
    codes = np.clip(codes, 0, 255)
    usable = ((codes > 4) & (codes < 250)).all(axis=1)
    return PatchSamples(rgb8=codes, usable=usable, problems=(None,) * 24)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_white_balance_error_is_corrected_by_the_simplest_model(seed):
    """A camera that is right but for its white balance: per-channel gains predict every
    patch; richer models fit the noise better and must not be chosen for it."""
    samples = _camera_codes(np.diag([0.8, 0.95, 0.7]), seed)
    correction = fit_correction(samples, COLORCHECKER_CLASSIC)
    assert (correction.tone_curve, correction.model) == ("srgb", "diagonal")
    assert correction.loo_delta_e00_mean < 1.0


def test_crosstalk_needs_the_matrix():
    crosstalk = np.array([[0.7, 0.2, 0.05], [0.1, 0.6, 0.1], [0.02, 0.15, 0.5]])
    correction = fit_correction(_camera_codes(crosstalk, 0), COLORCHECKER_CLASSIC)
    assert correction.model != "diagonal"
    assert correction.loo_delta_e00_mean < 1.0


def test_per_channel_tone_curves_are_fitted_when_the_channels_differ():
    """A camera without white balance whose channels have different exponents."""
    linear = np.clip(chart_linear_reference(COLORCHECKER_CLASSIC) * [0.6, 0.9, 0.45], 0, 1)
    codes = 255.0 * linear ** (1 / np.array([1.8, 2.2, 2.6]))
    samples = PatchSamples(rgb8=codes, usable=((codes > 4) & (codes < 250)).all(axis=1),
                           problems=(None,) * 24)
    correction = fit_correction(samples, COLORCHECKER_CLASSIC)
    assert correction.tone_curve == "per-channel"
    assert correction.curve[:, 1] == pytest.approx([1.8, 2.2, 2.6], abs=0.01)
    assert correction.loo_delta_e00_mean < 0.5


def _photo_calibration(card, samples: PatchSamples) -> PhotoCalibration:
    return PhotoCalibration(card, fit_correction(samples, COLORCHECKER_CLASSIC), samples)


def test_card_agreement_prefers_no_calibration_for_two_photos_of_the_same_set_up(card_photo):
    """The same camera and light twice (only noise differs): as photographed the card's
    patches agree to the noise, calibrated they differ by the two fits' LOO errors."""
    _, card = card_photo
    crosstalk = np.array([[0.7, 0.2, 0.05], [0.1, 0.6, 0.1], [0.02, 0.15, 0.5]])
    golden = _photo_calibration(card, _camera_codes(crosstalk, 0, noise=0.3))
    unit = _photo_calibration(card, _camera_codes(crosstalk, 1, noise=0.3))
    agreement = card_agreement(golden, unit, np.array([50.0, 10.0, 10.0]))
    assert agreement.as_photographed < 0.5
    assert not agreement.calibration_helps
    # Another light on the unit: as photographed the card differs, calibration removes it.
    unit = _photo_calibration(card, _camera_codes(crosstalk @ np.diag([0.7, 1.0, 1.4]), 1,
                                                  noise=0.3))
    agreement = card_agreement(golden, unit, np.array([50.0, 10.0, 10.0]))
    assert agreement.calibration_helps and agreement.as_photographed > 3.0


def test_the_same_set_up_twice_is_compared_as_photographed():
    """Golden and unit under the same light and camera: the report compares as photographed
    (calibrating would only add the fits' errors), says why, and measures the drift."""
    from testkit.scenes import lab_shift

    pair = make_pair("astronaut", golden_camera=SMALL, unit_camera=dataclasses.replace(
        SMALL, rotation_deg=8.0), drift=lab_shift(1.0, -1.0, 0.5), seed=8)
    spec = parse_spec({"roi": list(pair.roi)})
    report = compare(prepare_golden(pair.golden), pair.unit, spec, render_images=False).report
    assert not report.color.calibrated
    assert report.color.note.startswith("Colours compared as photographed")
    assert abs(report.color.delta_e00 - pair.true_delta_e00) <= 0.75
    assert report.color.uncertainty_e00 < 0.75


def test_a_card_half_out_of_the_photo_keeps_its_tone_curve():
    """Three neutral patches in the frame (the rest cut off): the gamma camera's curve is
    still fitted (each neutral's leave-one-out refit has two left) and predicts well."""
    linear = np.clip(chart_linear_reference(COLORCHECKER_CLASSIC) @ np.diag([0.8, 0.9, 0.75]),
                     0, 1)
    codes = 255.0 * linear ** (1 / 2.4)
    usable = np.ones(24, bool)
    usable[[3, 4, 5, 9, 10, 11, 15, 16, 17, 21, 22, 23]] = False  # the right half
    correction = fit_correction(PatchSamples(rgb8=codes, usable=usable, problems=(None,) * 24),
                                COLORCHECKER_CLASSIC)
    assert correction.tone_curve == "gamma"
    assert correction.gamma == pytest.approx(2.4, abs=0.02)
    assert correction.loo_delta_e00_mean < 0.5
