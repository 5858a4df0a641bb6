"""The randomised renders' truth can be trusted (testkit/randomised.py).

Each test photographs a scene whose answer it can measure on the pixels themselves: where a
golden feature lands in the unit photo, which pixels a defect changed, how far a flat colour
drifted.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from imaging.color import ciede2000, linear_rgb_to_lab, srgb8_to_linear
from testkit.randomised import PHOTO_SIZE, Light, Shot, randomised_pair
from testkit.scenes import DEFECT_KINDS, Camera

CAMERA = Camera(width=PHOTO_SIZE[0], height=PHOTO_SIZE[1], fill=0.9, noise_sigma=0.0,
                exposure=1.0)
EVEN_LIGHT = Light(ambient=1.0)  # no shading, no shadow, no highlight: irradiance 1 everywhere


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def test_truth_map_puts_golden_features_on_the_units_within_half_a_pixel():
    """The unit warped by the truth (tilted 30 degrees, turned 120, strong lens distortion on
    both photos) lies on the golden to within 0.5 px in every tile of the product; the plane's
    homography alone, without the lenses, does not (the test can see an error)."""
    golden = Shot(CAMERA, Light(azimuth_deg=30, elevation_deg=60), distortion_k1=0.02,
                  jpeg_quality=98)
    pose = dataclasses.replace(CAMERA, rotation_deg=120.0, tilt_deg=30.0, tilt_azimuth_deg=200.0,
                               fill=0.8)
    unit = Shot(pose, golden.light, distortion_k1=-0.02, jpeg_quality=98)
    pair = randomised_pair(7, kind="board", background="plain", case="identical", card=False,
                           golden_shot=golden, unit_shot=unit)
    h, w = pair.golden.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    grid = np.dstack([xx, yy]).reshape(-1, 2)

    def worst_tile_shift(in_unit: np.ndarray) -> float:
        maps = in_unit.reshape(h, w, 2).astype(np.float32)
        warped = cv2.remap(pair.unit, maps[..., 0], maps[..., 1], cv2.INTER_CUBIC)
        x, y, rw, rh = pair.roi
        window = cv2.createHanningWindow((96, 96), cv2.CV_32F)
        shifts = []
        for ty in np.linspace(y + 10, y + rh - 106, 3).astype(int):
            for tx in np.linspace(x + 10, x + rw - 106, 3).astype(int):
                a = _grey(pair.golden[ty:ty + 96, tx:tx + 96])
                b = _grey(warped[ty:ty + 96, tx:tx + 96])
                (dx, dy), _ = cv2.phaseCorrelate(a, b, window)
                shifts.append(np.hypot(dx, dy))
        return max(shifts)

    assert worst_tile_shift(pair.golden_to_unit(grid)) < 0.5
    plane_only = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), pair.homography_golden_to_unit)
    assert worst_tile_shift(plane_only.reshape(-1, 2)) > 1.0


@pytest.mark.parametrize("defect", DEFECT_KINDS)
def test_defect_mask_covers_what_the_defect_changed(defect):
    """Same camera and light for both sessions: on the product, the pixels the defect changed
    lie in the truth mask (grown by 2 px for the resampling), and most of the mask changed."""
    shot = Shot(CAMERA, EVEN_LIGHT, jpeg_quality=100)
    pair = randomised_pair(3, kind="print", background="plain", case="defect", card=False,
                           golden_shot=shot, unit_shot=shot, defect=(defect, 12.0))
    x, y, w, h = pair.roi
    diff = np.abs(pair.unit.astype(np.int16) - pair.golden.astype(np.int16)).max(axis=2)
    changed = np.zeros(diff.shape, bool)
    changed[y:y + h, x:x + w] = diff[y:y + h, x:x + w] > 40
    mask = pair.defect_mask
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert mask.sum() > 40  # a 12 mm defect at ~1.9 px/mm (a scratch: 12 x 1 mm)
    assert (changed & ~grown).sum() <= 0.02 * changed.sum()
    assert (changed & mask).sum() >= 0.5 * mask.sum()


def test_drift_truth_matches_the_drift_measured_on_flat_colour():
    """A flat moulded part under an even light, the same camera both times: the CIEDE2000
    between the photos' mean colours in the product's middle is the truth's, within 0.15."""
    shot = Shot(CAMERA, EVEN_LIGHT, jpeg_quality=100)
    pair = randomised_pair(5, kind="moulded", background="plain", case="drift", card=False,
                           golden_shot=shot, unit_shot=shot, drift_e00=5.0)
    x, y, w, h = pair.roi
    middle = (slice(y + h // 4, y + 3 * h // 4), slice(x + w // 4, x + 3 * w // 4))

    def lab(photo: np.ndarray) -> np.ndarray:
        return linear_rgb_to_lab(srgb8_to_linear(photo[middle]).reshape(-1, 3).mean(axis=0))

    measured = float(ciede2000(lab(pair.golden), lab(pair.unit)))
    assert 4.5 < pair.true_delta_e00 < 5.5
    assert abs(measured - pair.true_delta_e00) < 0.15
    assert pair.expected_verdict() == "fail"
