"""Registration against synthetic phone photos whose true homography is known.

The figures of the foundation issue (<= 2 px on >= 95% of 2016 px pairs, identity on aligned
pairs, no "ok" on other products) are measured by `benchmarks/eval_registration.py`; these
tests check the same behaviours on a handful of fixed cases so a regression fails CI.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmarks.eval_registration import register, roi_corner_error
from tests.helpers.scenes import Camera, make_pair, random_phone_camera

SMALL = Camera(width=1008, height=756)


@pytest.mark.parametrize(
    ("product", "rotation_deg", "tilt_deg", "zoom"),
    [
        ("astronaut", 90.0, 10.0, 1.0),
        ("coffee", 180.0, 0.0, 0.75),
        ("chelsea", -37.0, 22.0, 1.3),
        ("immunohistochemistry", 270.0, 15.0, 1.1),
        ("circuit", 12.0, 8.0, 0.9),
    ],
)
def test_unit_is_registered_within_two_pixels(product, rotation_deg, tilt_deg, zoom):
    unit_camera = dataclasses.replace(
        Camera(), rotation_deg=rotation_deg, tilt_deg=tilt_deg, tilt_azimuth_deg=30.0,
        fill=Camera().fill * zoom, exposure=1.2, white_balance=(1.1, 1.0, 0.9), gamma=2.2,
        noise_sigma=2.5, jpeg_quality=85,
    )
    pair = make_pair(product, unit_camera=unit_camera, seed=3)
    result = register(pair.golden, pair.unit)
    assert result.ok, result.reason
    assert result.method == "features"
    assert roi_corner_error(pair.homography_unit_to_golden, result.homography, pair.roi) <= 2.0
    assert result.inliers >= 20 and result.rms_px < 3.0


@pytest.mark.parametrize("product", ["astronaut", "circuit", "weave"])
def test_already_aligned_pair_keeps_the_identity(product):
    camera = dataclasses.replace(SMALL, noise_sigma=2.0)
    pair = make_pair(product, golden_camera=SMALL, unit_camera=camera, px_per_mm=2.0, seed=5)
    assert np.allclose(pair.homography_unit_to_golden, np.eye(3))
    result = register(pair.golden, pair.unit)
    assert result.ok and result.method == "identity"
    assert roi_corner_error(np.eye(3), result.homography, pair.roi) <= 0.5


@pytest.mark.parametrize(("product", "other"), [("astronaut", "coffee"), ("rocket", "retina"),
                                                ("circuit", "chelsea")])
def test_another_product_beside_the_same_card_is_not_registered(product, other):
    rng = np.random.default_rng(4)
    pair = make_pair(product, unit_camera=random_phone_camera(rng), unit_product=other, seed=6)
    result = register(pair.golden, pair.unit)
    assert not result.ok
    assert result.homography is None
    assert "product" in result.reason


def test_featureless_unit_is_not_registered():
    pair = make_pair("astronaut", golden_camera=SMALL, px_per_mm=2.0, seed=1)
    blank = np.full_like(pair.unit, 128)
    result = register(pair.golden, blank)
    assert not result.ok and result.reason
