"""Tests for vision.measure.structure: SSIM of Wang et al. (2004) and the luminance helper."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import color, data
from skimage.metrics import structural_similarity as skimage_ssim

from vision.measure.structure import luminance, structural_similarity

# Agreement with skimage required by the project; the measured agreement is far tighter, and the
# tighter bounds below guard against silently drifting from skimage's window and border handling.
REQUIRED_MEAN_TOLERANCE = 1e-3
MEASURED_MEAN_TOLERANCE = 2e-5
MEASURED_MAP_TOLERANCE = 2e-3

# Largest differences seen by test_matches_skimage, printed by test_report_skimage_agreement.
_AGREEMENT: dict[str, tuple[float, float]] = {}


def _skimage_reference(im1, im2, data_range):
    """skimage with the settings of Wang et al. (2004)."""
    return skimage_ssim(
        im1,
        im2,
        data_range=data_range,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )


def _camera() -> np.ndarray:
    return data.camera()


def _astronaut_grey() -> np.ndarray:
    return np.clip(np.rint(luminance(data.astronaut())), 0, 255).astype(np.uint8)


def _random_texture(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Seeded noise smoothed to an image-like spectrum, uint8."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(128.0, 60.0, size=shape).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.2)
    return np.clip(smooth, 0, 255).astype(np.uint8)


def _with_noise(im: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(im + rng.normal(0.0, 15.0, size=im.shape), 0, 255).astype(np.uint8)


def _with_blur(im: np.ndarray, seed: int) -> np.ndarray:
    return cv2.GaussianBlur(im, (0, 0), 2.0)


def _with_jpeg(im: np.ndarray, seed: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 15])
    assert ok
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


IMAGES = {
    "camera": lambda: _camera(),
    "camera-odd-crop": lambda: _camera()[7:504, 40:373],  # 497 x 333
    "astronaut": lambda: _astronaut_grey(),
    "astronaut-even-crop": lambda: _astronaut_grey()[100:356, 64:448],  # 256 x 384
    "random-61x47": lambda: _random_texture((61, 47), seed=1),
    "random-64x48": lambda: _random_texture((64, 48), seed=2),
    "random-11x11": lambda: _random_texture((11, 11), seed=3),
    "random-11x30": lambda: _random_texture((11, 30), seed=4),
}
DISTORTIONS = {"noise": _with_noise, "blur": _with_blur, "jpeg": _with_jpeg}


def _as_dtype(im: np.ndarray, dtype) -> tuple[np.ndarray, float]:
    """The uint8 image in `dtype`, with the matching data range."""
    if dtype == np.uint8:
        return im, 255.0
    if dtype == np.uint16:
        return im.astype(np.uint16) * 257, 65535.0
    return (im / 255.0).astype(dtype), 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("distortion", DISTORTIONS)
@pytest.mark.parametrize("image", IMAGES)
def test_matches_skimage(image, distortion, dtype):
    """Mean within 1e-3 of skimage (required), map close too, on natural and random images."""
    reference_u8 = IMAGES[image]()
    distorted_u8 = DISTORTIONS[distortion](reference_u8, seed=list(IMAGES).index(image))
    im1, data_range = _as_dtype(reference_u8, dtype)
    im2, _ = _as_dtype(distorted_u8, dtype)

    mssim, ssim_map = structural_similarity(im1, im2, data_range=data_range)
    expected_mssim, expected_map = _skimage_reference(im1, im2, data_range)

    mean_difference = abs(mssim - expected_mssim)
    map_difference = float(np.abs(ssim_map.astype(np.float64) - expected_map).max())
    key = f"{image}/{distortion}/{np.dtype(dtype).name}"
    _AGREEMENT[key] = (mean_difference, map_difference)

    assert ssim_map.shape == im1.shape
    assert ssim_map.dtype == np.float32
    assert mean_difference < REQUIRED_MEAN_TOLERANCE
    assert mean_difference < MEASURED_MEAN_TOLERANCE, key
    assert map_difference < MEASURED_MAP_TOLERANCE, key


@pytest.mark.parametrize("height", [65, 66, 69, 70, 128, 133])
def test_strip_boundaries_match_skimage(height):
    """The map is computed in strips of rows; the last strip may be shorter than the window."""
    im1 = _random_texture((height, 23), seed=height)
    im2 = _with_noise(im1, seed=height)
    mssim, ssim_map = structural_similarity(im1, im2, data_range=255)
    expected_mssim, expected_map = _skimage_reference(im1, im2, 255)
    assert mssim == pytest.approx(expected_mssim, abs=MEASURED_MEAN_TOLERANCE)
    np.testing.assert_allclose(ssim_map, expected_map, atol=MEASURED_MAP_TOLERANCE)


def test_report_skimage_agreement(capsys):
    """Print the largest differences from skimage measured by test_matches_skimage."""
    if not _AGREEMENT:
        pytest.skip("test_matches_skimage did not run")
    worst_mean = max(_AGREEMENT, key=lambda k: _AGREEMENT[k][0])
    worst_map = max(_AGREEMENT, key=lambda k: _AGREEMENT[k][1])
    with capsys.disabled():
        print(
            f"\nSSIM vs skimage over {len(_AGREEMENT)} cases: "
            f"max |mean diff| = {_AGREEMENT[worst_mean][0]:.2e} ({worst_mean}), "
            f"max |map diff| = {_AGREEMENT[worst_map][1]:.2e} ({worst_map})"
        )


def test_published_ipol_value():
    """Camera vs. camera + Gaussian noise (sigma 20) against IPOL ``imdiff -m mssim``.

    The value 0.357959091663361 is the output of the IPOL reference code of Getreuer, "Linear
    Methods for Image Interpolation"/imdiff (https://www.ipol.im/pub/art/2011/g_lmii/), for the
    current ``skimage.data.camera()``, computed by Gregory Lee and published in
    https://github.com/scikit-image/scikit-image/pull/4913#issuecomment-700653165. scikit-image
    tests its own SSIM against it to 3 decimals; the noisy image is built exactly as there.
    """
    cam = data.camera()
    noise = 20.0 * np.random.RandomState(5).randn(*cam.shape)
    cam_noisy = np.clip(cam + noise, 0, 255).astype(np.uint8)
    mssim, _ = structural_similarity(cam, cam_noisy, data_range=255)
    assert mssim == pytest.approx(0.357959091663361, abs=1.5e-3)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(11, 11), (61, 47), (64, 48)])
def test_identical_images_give_one(shape, dtype):
    im = _random_texture(shape, seed=7).astype(dtype)
    mssim, ssim_map = structural_similarity(im, im, data_range=255)
    assert mssim == 1.0
    np.testing.assert_array_equal(ssim_map, np.ones(shape, dtype=np.float32))


def test_symmetric_in_its_arguments():
    im1 = _camera()
    im2 = _with_jpeg(_with_noise(im1, seed=3), seed=0)
    mssim_12, map_12 = structural_similarity(im1, im2, data_range=255)
    mssim_21, map_21 = structural_similarity(im2, im1, data_range=255)
    assert mssim_12 == mssim_21
    np.testing.assert_array_equal(map_12, map_21)


def test_inputs_are_not_modified():
    im1 = _random_texture((40, 50), seed=8).astype(np.float32)
    im2 = _random_texture((40, 50), seed=9).astype(np.float32)
    copies = im1.copy(), im2.copy()
    structural_similarity(im1, im2, data_range=255)
    np.testing.assert_array_equal(im1, copies[0])
    np.testing.assert_array_equal(im2, copies[1])


def test_worse_distortion_scores_lower():
    cam = _camera()
    light = structural_similarity(cam, cv2.GaussianBlur(cam, (0, 0), 1.0), data_range=255)[0]
    heavy = structural_similarity(cam, cv2.GaussianBlur(cam, (0, 0), 3.0), data_range=255)[0]
    assert 1.0 > light > heavy > 0.0


class TestMask:
    @staticmethod
    def _pair_with_defect():
        """Camera and a copy with a 120 x 120 black square pasted in."""
        im1 = _camera()
        im2 = im1.copy()
        im2[200:320, 150:270] = 0
        return im1, im2

    def test_excluding_the_difference_restores_one(self):
        im1, im2 = self._pair_with_defect()
        mask = np.ones(im1.shape, dtype=bool)
        mask[200:320, 150:270] = False

        unmasked, _ = structural_similarity(im1, im2, data_range=255)
        masked, ssim_map = structural_similarity(im1, im2, data_range=255, mask=mask)

        assert unmasked < 0.97
        # Every window that stays inside the eroded mask sees identical pixels, and identical
        # windows score exactly 1 because both images share one float32 offset.
        assert masked == 1.0
        # Without the erosion, windows straddling the mask edge would pull the mean down.
        assert float(ssim_map[mask].mean()) < masked - 1e-3

    def test_all_true_mask_equals_no_mask(self):
        im1, im2 = self._pair_with_defect()
        no_mask, map_no_mask = structural_similarity(im1, im2, data_range=255)
        all_true, map_all_true = structural_similarity(
            im1, im2, data_range=255, mask=np.ones(im1.shape, dtype=bool)
        )
        assert all_true == pytest.approx(no_mask, abs=1e-12)
        np.testing.assert_array_equal(map_no_mask, map_all_true)

    def test_rectangular_mask_equals_cropping(self):
        """A rectangular mask gives skimage's SSIM of the images cropped to that rectangle."""
        im1 = _astronaut_grey()
        im2 = _with_noise(im1, seed=11)
        rows, cols = slice(37, 301), slice(120, 411)
        mask = np.zeros(im1.shape, dtype=bool)
        mask[rows, cols] = True

        masked, _ = structural_similarity(im1, im2, data_range=255, mask=mask)
        cropped, _ = _skimage_reference(im1[rows, cols], im2[rows, cols], 255)
        assert masked == pytest.approx(cropped, abs=MEASURED_MEAN_TOLERANCE)

    def test_mask_too_small_for_one_window(self):
        im1, im2 = self._pair_with_defect()
        mask = np.zeros(im1.shape, dtype=bool)
        mask[100:110, 100:200] = True  # 10 rows: no 11 x 11 window fits
        with pytest.raises(ValueError, match="11x11"):
            structural_similarity(im1, im2, data_range=255, mask=mask)

    def test_mask_validation(self):
        im = _camera()
        with pytest.raises(TypeError, match="mask must be boolean"):
            structural_similarity(im, im, data_range=255, mask=np.ones(im.shape, np.uint8))
        with pytest.raises(ValueError, match="mask must have the images' shape"):
            structural_similarity(im, im, data_range=255, mask=np.ones((10, 10), bool))


class TestValidation:
    def test_shapes_differ(self):
        with pytest.raises(ValueError, match="same shape.*register"):
            structural_similarity(np.zeros((20, 20)), np.zeros((20, 21)), data_range=1)

    @pytest.mark.parametrize("shape", [(20,), (20, 20, 3), (1, 20, 20)])
    def test_not_2d(self, shape):
        with pytest.raises(ValueError, match="2-D greyscale.*luminance"):
            structural_similarity(np.zeros(shape), np.zeros(shape), data_range=1)

    @pytest.mark.parametrize("shape", [(10, 10), (10, 50), (50, 10)])
    def test_smaller_than_window(self, shape):
        with pytest.raises(ValueError, match="at least 11x11"):
            structural_similarity(np.zeros(shape), np.zeros(shape), data_range=1)

    def test_larger_sigma_needs_larger_images(self):
        im = np.zeros((15, 15))
        structural_similarity(im, im, data_range=1, sigma=1.5)
        # int(3.5 * 3 + 0.5) = 11 pixels each side of the centre.
        with pytest.raises(ValueError, match="at least 23x23"):
            structural_similarity(im, im, data_range=1, sigma=3.0)

    def test_data_range_is_required(self):
        im = np.zeros((20, 20))
        with pytest.raises(TypeError, match="data_range"):
            structural_similarity(im, im)  # type: ignore[call-arg]

    @pytest.mark.parametrize("data_range", [0, -1.0, float("nan"), float("inf"), None])
    def test_data_range_must_be_positive(self, data_range):
        im = np.zeros((20, 20))
        with pytest.raises(ValueError, match="data_range must be a finite number > 0"):
            structural_similarity(im, im, data_range=data_range)

    @pytest.mark.parametrize("name", ["sigma", "K1", "K2"])
    def test_constants_must_be_positive(self, name):
        im = np.zeros((20, 20))
        with pytest.raises(ValueError, match=f"{name} must be a finite number > 0"):
            structural_similarity(im, im, data_range=1, **{name: 0.0})

    @pytest.mark.parametrize("dtype", [bool, np.complex64, object])
    def test_non_real_dtypes(self, dtype):
        im = np.zeros((20, 20), dtype=dtype)
        with pytest.raises(TypeError, match="real integer or floating dtype"):
            structural_similarity(im, im, data_range=1)


class TestLuminance:
    def test_matches_skimage_rgb2gray(self):
        """BT.709 weights, as skimage's rgb2gray (whose weights are rounded to 4 decimals)."""
        rgb = data.astronaut()
        luma = luminance(rgb)
        assert luma.dtype == np.float32
        assert luma.shape == rgb.shape[:2]
        np.testing.assert_allclose(luma, color.rgb2gray(rgb) * 255, atol=0.1)

    def test_grey_is_unchanged(self):
        grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
        rgb = np.repeat(grey[..., None], 3, axis=-1)
        np.testing.assert_allclose(luminance(rgb), grey, atol=1e-4)

    def test_weights(self):
        primaries = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
        np.testing.assert_allclose(
            luminance(primaries)[0], 255 * np.array([0.2126, 0.7152, 0.0722]), rtol=1e-6
        )

    def test_validation(self):
        with pytest.raises(ValueError, match=r"\(M, N, 3\)"):
            luminance(np.zeros((4, 4), dtype=np.uint8))
        with pytest.raises(ValueError, match=r"\(M, N, 3\)"):
            luminance(np.zeros((4, 4, 4), dtype=np.uint8))
        with pytest.raises(TypeError, match="uint8"):
            luminance(np.zeros((4, 4, 3), dtype=np.float32))
