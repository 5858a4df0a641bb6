"""Tests for imaging.color and calibration.charts."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color as skcolor

from calibration.charts import CHARTS, COLORCHECKER_CLASSIC, Chart, chart_srgb, get_chart
from imaging.color import (
    D50,
    D65,
    M_SRGB_TO_XYZ,
    M_XYZ_TO_SRGB,
    chromatic_adaptation_bradford,
    ciede2000,
    delta_e_cmc,
    delta_lch,
    lab_to_srgb,
    lab_to_xyz,
    linear_rgb_to_lab,
    linear_rgb_to_xyz,
    linear_to_srgb,
    srgb8_to_linear,
    srgb_to_lab,
    srgb_to_linear,
    xyz_to_lab,
    xyz_to_linear_rgb,
)

# Sharma, Wu & Dalal (2005), Table 1: L1 a1 b1, L2 a2 b2, delta E00 (4 decimals).
# doi:10.1002/col.20070. Pairs 7-8 are one pair in both orders; 9-16 straddle the
# a'=0 hue discontinuity; 17-24 and 25-34 cover the rest of the formula.
SHARMA_2005_TABLE_1 = np.array(
    [
        [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
        [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
        [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
        [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
        [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
        [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
        [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
        [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
        [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
        [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
        [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
        [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
        [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
        [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
        [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
        [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
        [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
        [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
        [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
        [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
    ]
)
LAB_1 = SHARMA_2005_TABLE_1[:, 0:3]
LAB_2 = SHARMA_2005_TABLE_1[:, 3:6]
DELTA_E_00 = SHARMA_2005_TABLE_1[:, 6]


def _random_lab(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform([0.0, -110.0, -110.0], [100.0, 110.0, 110.0], size=(*shape, 3))


# --- CIEDE2000 ------------------------------------------------------------------------


def test_ciede2000_sharma_2005_table_1() -> None:
    """All 34 published pairs of Sharma, Wu & Dalal (2005), Table 1, to 1e-4."""
    assert SHARMA_2005_TABLE_1.shape == (34, 7)
    delta_e_00 = ciede2000(LAB_1, LAB_2)
    assert delta_e_00.dtype == np.float64
    assert np.max(np.abs(delta_e_00 - DELTA_E_00)) <= 1e-4


@pytest.mark.parametrize("index", range(34), ids=[f"pair{i + 1:02d}" for i in range(34)])
def test_ciede2000_sharma_2005_each_pair(index: int) -> None:
    assert float(ciede2000(LAB_1[index], LAB_2[index])) == pytest.approx(
        DELTA_E_00[index], abs=1e-4
    )


def test_float32_images_stay_float32_within_1e_4() -> None:
    """The pipeline's per-pixel maps are float32; the Sharma pairs hold to 1e-4 there too."""
    d32 = ciede2000(LAB_1.astype(np.float32), LAB_2.astype(np.float32))
    assert d32.dtype == np.float32
    np.testing.assert_allclose(d32, DELTA_E_00, atol=1e-4, rtol=0)
    rgb = np.random.default_rng(3).random((64, 64, 3))
    lab32 = linear_rgb_to_lab(rgb.astype(np.float32))
    assert lab32.dtype == np.float32
    np.testing.assert_allclose(lab32, linear_rgb_to_lab(rgb), atol=2e-4, rtol=0)
    # Mixed inputs (a float64 reference against a float32 image) compute in float64.
    assert ciede2000(LAB_1[0], LAB_2.astype(np.float32)).dtype == np.float64


def test_ciede2000_is_symmetric() -> None:
    rng = np.random.default_rng(2005)
    lab1 = np.concatenate([LAB_1, _random_lab(rng, (500,))])
    lab2 = np.concatenate([LAB_2, _random_lab(rng, (500,))])
    np.testing.assert_allclose(ciede2000(lab1, lab2), ciede2000(lab2, lab1), rtol=0, atol=1e-12)


def test_ciede2000_identical_is_zero() -> None:
    rng = np.random.default_rng(0)
    lab = np.concatenate([LAB_1, _random_lab(rng, (200,)), [[50.0, 0.0, 0.0], [0, 0, 0]]])
    np.testing.assert_array_equal(ciede2000(lab, lab), 0.0)


def test_ciede2000_nonnegative_and_finite_on_random_lab() -> None:
    rng = np.random.default_rng(1)
    lab1 = _random_lab(rng, (5000,))
    lab2 = lab1 + rng.normal(scale=rng.choice([1e-9, 0.1, 5.0, 50.0], size=(5000, 1)))
    delta_e_00 = ciede2000(lab1, lab2)
    assert np.all(np.isfinite(delta_e_00))
    assert np.all(delta_e_00 >= 0.0)


@pytest.mark.parametrize("shape", [(), (7,), (2, 3), (4, 5, 6), (1, 1, 2, 3)])
def test_ciede2000_nd_shapes(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(3)
    lab1 = _random_lab(rng, shape)
    lab2 = _random_lab(rng, shape)
    delta_e_00 = ciede2000(lab1, lab2)
    assert delta_e_00.shape == shape
    flat = ciede2000(lab1.reshape(-1, 3), lab2.reshape(-1, 3))
    np.testing.assert_array_equal(delta_e_00.reshape(-1), flat)


def test_ciede2000_broadcasts_reference_against_image() -> None:
    rng = np.random.default_rng(4)
    image = _random_lab(rng, (8, 9))
    reference = np.array([50.0, 10.0, -10.0])
    delta_e_00 = ciede2000(reference, image)
    assert delta_e_00.shape == (8, 9)
    np.testing.assert_allclose(
        delta_e_00, ciede2000(np.broadcast_to(reference, image.shape), image)
    )


def test_ciede2000_accepts_lists_and_integers() -> None:
    assert float(ciede2000([50, 0, 0], [50, 0, 0])) == 0.0
    assert ciede2000([50, 2, 3], [51, 2, 3]).dtype == np.float64


def test_ciede2000_propagates_nan() -> None:
    delta_e_00 = ciede2000([[np.nan, 0.0, 0.0], [50.0, 0.0, 0.0]], [[50.0, 0.0, 0.0]] * 2)
    assert np.isnan(delta_e_00[0])
    assert delta_e_00[1] == 0.0


def test_ciede2000_parametric_factors() -> None:
    """Pure lightness difference about L'=50 (where S_L = 1) scales by 1/kL."""
    assert float(ciede2000([49, 0, 0], [51, 0, 0])) == pytest.approx(2.0, abs=1e-12)
    assert float(ciede2000([49, 0, 0], [51, 0, 0], kL=2.0)) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="kC"):
        ciede2000([50, 0, 0], [52, 0, 0], kC=0.0)


def test_ciede2000_matches_skimage() -> None:
    rng = np.random.default_rng(5)
    lab1 = _random_lab(rng, (2000,))
    lab2 = np.where(
        rng.random((2000, 1)) < 0.5,
        lab1 + rng.normal(scale=3.0, size=(2000, 3)),
        _random_lab(rng, (2000,)),
    )
    np.testing.assert_allclose(
        ciede2000(lab1, lab2), skcolor.deltaE_ciede2000(lab1, lab2), rtol=0, atol=1e-9
    )


# --- CMC l:c --------------------------------------------------------------------------


@pytest.mark.parametrize(("l", "c"), [(2.0, 1.0), (1.0, 1.0)])
def test_delta_e_cmc_matches_skimage(l: float, c: float) -> None:  # noqa: E741
    rng = np.random.default_rng(6)
    lab1 = _random_lab(rng, (2000,))
    lab1[:50, 0] = rng.uniform(0.0, 16.0, 50)  # the L* < 16 branch of S_L
    lab2 = lab1 + rng.normal(scale=4.0, size=(2000, 3))
    np.testing.assert_allclose(
        delta_e_cmc(lab1, lab2, l=l, c=c),
        skcolor.deltaE_cmc(lab1, lab2, kL=l, kC=c),
        rtol=0,
        atol=1e-9,
    )


def test_delta_e_cmc_is_not_symmetric_and_zero_for_identical() -> None:
    lab_standard = np.array([50.0, 40.0, 10.0])
    lab_sample = np.array([55.0, 10.0, 30.0])
    assert float(delta_e_cmc(lab_standard, lab_standard)) == 0.0
    assert float(delta_e_cmc(lab_standard, lab_sample)) != pytest.approx(
        float(delta_e_cmc(lab_sample, lab_standard)), abs=1e-3
    )


# --- delta L, C, H --------------------------------------------------------------------


def test_delta_lch_signs_and_decomposition() -> None:
    rng = np.random.default_rng(7)
    lab_ref = _random_lab(rng, (1000,))
    lab_sample = _random_lab(rng, (1000,))
    delta_L, delta_C, delta_H = delta_lch(lab_ref, lab_sample)
    delta_E_ab_2 = np.sum((lab_sample - lab_ref) ** 2, axis=-1)
    np.testing.assert_allclose(delta_L**2 + delta_C**2 + delta_H**2, delta_E_ab_2, rtol=1e-9)

    # Lighter, more saturated, hue rotated from red (0 deg) towards yellow (90 deg).
    delta_L, delta_C, delta_H = delta_lch([50.0, 20.0, 0.0], [60.0, 0.0, 30.0])
    assert float(delta_L) == pytest.approx(10.0)
    assert float(delta_C) == pytest.approx(10.0)
    assert float(delta_H) > 0.0
    # Hue wrap: 350 deg -> 10 deg is +20 deg, not -340 deg.
    ref = [50.0, 20.0 * np.cos(np.radians(350.0)), 20.0 * np.sin(np.radians(350.0))]
    sample = [50.0, 20.0 * np.cos(np.radians(10.0)), 20.0 * np.sin(np.radians(10.0))]
    assert float(delta_lch(ref, sample)[2]) == pytest.approx(2 * 20.0 * np.sin(np.radians(10.0)))
    assert float(delta_lch(sample, ref)[2]) == pytest.approx(-2 * 20.0 * np.sin(np.radians(10.0)))
    # Neutral member: no hue difference.
    assert float(delta_lch([50.0, 0.0, 0.0], [50.0, 5.0, 5.0])[2]) == 0.0


# --- conversions ----------------------------------------------------------------------


def test_srgb_white_is_lab_100_0_0() -> None:
    np.testing.assert_allclose(srgb_to_lab([1.0, 1.0, 1.0]), [100.0, 0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(srgb_to_lab([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0], atol=1e-12)
    # sRGB white stays white under a D50 reference white (Bradford-adapted).
    np.testing.assert_allclose(srgb_to_lab([1.0, 1.0, 1.0], white=D50), [100, 0, 0], atol=1e-4)


def test_neutrals_have_zero_chroma() -> None:
    grey = np.linspace(0.0, 1.0, 11)[:, None].repeat(3, axis=1)
    np.testing.assert_allclose(srgb_to_lab(grey)[:, 1:], 0.0, atol=1e-9)


def test_srgb_matrix_close_to_iec_61966_2_1() -> None:
    """IEC 61966-2-1 prints both matrices to 4 decimals."""
    iec_rgb_to_xyz = [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    iec_xyz_to_rgb = [
        [3.2406, -1.5372, -0.4986],
        [-0.9689, 1.8758, 0.0415],
        [0.0557, -0.2040, 1.0570],
    ]
    np.testing.assert_allclose(M_SRGB_TO_XYZ, iec_rgb_to_xyz, atol=2e-4)
    # The printed inverse was rounded from a slightly different forward matrix.
    np.testing.assert_allclose(M_XYZ_TO_SRGB, iec_xyz_to_rgb, atol=4e-4)
    np.testing.assert_allclose(M_SRGB_TO_XYZ @ [1.0, 1.0, 1.0], D65, atol=1e-12)


def test_srgb_transfer_function_known_values_and_round_trip() -> None:
    assert float(srgb_to_linear([0.5, 0.5, 0.5])[0]) == pytest.approx(0.21404114, abs=1e-8)
    assert float(srgb_to_linear([0.04045] * 3)[0]) == pytest.approx(0.04045 / 12.92)
    values = np.linspace(-0.5, 1.5, 2001)[:, None].repeat(3, axis=1)
    linear = srgb_to_linear(values)
    assert np.all(np.isfinite(linear))
    np.testing.assert_allclose(linear, -srgb_to_linear(-values), atol=0)  # sign-symmetric
    np.testing.assert_allclose(linear_to_srgb(linear), values, atol=1e-12)
    assert np.all(np.diff(linear[:, 0]) > 0)  # monotonic


def test_srgb8_to_linear_matches_the_transfer_function() -> None:
    codes = np.arange(256, dtype=np.uint8)
    table = srgb8_to_linear(codes)
    assert table.dtype == np.float32 and table.shape == (256,)
    exact = srgb_to_linear(np.repeat(codes[:, None] / 255.0, 3, axis=1))[:, 0]
    np.testing.assert_allclose(table, exact, rtol=6e-8, atol=0)
    assert table[0] == 0.0 and table[255] == 1.0
    image = np.random.default_rng(3).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(srgb8_to_linear(image), table[image])
    with pytest.raises(ValueError, match="uint8"):
        srgb8_to_linear(image.astype(np.float64))


def test_srgb_lab_round_trip() -> None:
    rng = np.random.default_rng(8)
    rgb = rng.random((10, 20, 3))
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(rgb)), rgb, atol=1e-10)
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(rgb, white=D50), white=D50), rgb, atol=1e-10)
    np.testing.assert_allclose(xyz_to_linear_rgb(linear_rgb_to_xyz(rgb)), rgb, atol=1e-12)
    np.testing.assert_allclose(linear_rgb_to_lab(rgb), srgb_to_lab(linear_to_srgb(rgb)), atol=1e-9)


def test_lab_xyz_round_trip_including_dark_branch() -> None:
    rng = np.random.default_rng(9)
    xyz = rng.random((1000, 3)) * np.where(rng.random((1000, 1)) < 0.3, 0.01, 1.0)
    for white in (D65, D50):
        np.testing.assert_allclose(
            lab_to_xyz(xyz_to_lab(xyz, white=white), white=white), xyz, rtol=1e-10, atol=1e-14
        )


def test_xyz_to_lab_matches_skimage_above_the_linear_segment() -> None:
    """skimage rounds the CIE constants (0.008856, 7.787); compare where that is unused."""
    rng = np.random.default_rng(10)
    xyz = rng.uniform(0.01, 1.0, size=(2000, 3)) * D65
    skimage_d50 = skcolor.xyz_tristimulus_values(illuminant="D50", observer="2")  # not ICC D50
    np.testing.assert_allclose(xyz_to_lab(xyz), skcolor.xyz2lab(xyz), rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        xyz_to_lab(xyz, white=skimage_d50),
        skcolor.xyz2lab(xyz, illuminant="D50"),
        rtol=0,
        atol=1e-9,
    )
    lab = xyz_to_lab(xyz)
    np.testing.assert_allclose(lab_to_xyz(lab), skcolor.lab2xyz(lab), rtol=0, atol=1e-9)


def test_srgb_to_lab_agrees_with_skimage() -> None:
    """Same maths as skimage.color.rgb2lab (D65, 2 deg) up to the sRGB matrix.

    skimage's RGB->XYZ matrix maps white to (0.950456, 1, 1.088754) while its Lab white
    is (0.95047, 1, 1.08883), so it puts sRGB white at a*=-0.0025, b*=0.0047; ours is
    normalised to the Lab white. The residue is far below any visible difference.
    """
    rng = np.random.default_rng(11)
    rgb = rng.random((50, 40, 3))
    lab = srgb_to_lab(rgb)
    lab_skimage = skcolor.rgb2lab(rgb)
    np.testing.assert_allclose(lab, lab_skimage, rtol=0, atol=0.01)
    assert float(np.max(ciede2000(lab, lab_skimage))) < 0.01
    xyz = linear_rgb_to_xyz(srgb_to_linear(rgb))
    np.testing.assert_allclose(xyz, skcolor.rgb2xyz(rgb), rtol=0, atol=2e-4)


def test_bradford_maps_white_to_white_and_round_trips() -> None:
    np.testing.assert_allclose(chromatic_adaptation_bradford(D50, D50, D65), D65, atol=1e-12)
    rng = np.random.default_rng(12)
    xyz = rng.random((4, 5, 3))
    there = chromatic_adaptation_bradford(xyz, D50, D65)
    np.testing.assert_allclose(chromatic_adaptation_bradford(there, D65, D50), xyz, atol=1e-12)
    np.testing.assert_allclose(chromatic_adaptation_bradford(xyz, D65, D65), xyz, atol=1e-12)


def test_bradford_known_matrix() -> None:
    """D50 -> D65 Bradford matrix as tabulated by B. Lindbloom (brucelindbloom.com)."""
    lindbloom_d50_to_d65 = np.array(
        [
            [0.9555766, -0.0230393, 0.0631636],
            [-0.0282895, 1.0099416, 0.0210077],
            [0.0122982, -0.0204830, 1.3299098],
        ]
    )
    matrix = chromatic_adaptation_bradford(np.eye(3), D50, D65).T
    np.testing.assert_allclose(matrix, lindbloom_d50_to_d65, atol=2e-5)


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "function",
    [
        srgb_to_linear,
        linear_to_srgb,
        linear_rgb_to_xyz,
        xyz_to_linear_rgb,
        xyz_to_lab,
        lab_to_xyz,
        srgb_to_lab,
        lab_to_srgb,
        linear_rgb_to_lab,
    ],
)
@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros(3 * 4).reshape(3, 4), 5.0])
def test_bad_shapes_raise(function, bad) -> None:
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        function(bad)


@pytest.mark.parametrize("function", [ciede2000, delta_e_cmc, delta_lch])
def test_bad_shapes_raise_for_differences(function) -> None:
    with pytest.raises(ValueError, match="lab2|lab_sample"):
        function(np.zeros(3), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="got shape \\(3, 2\\)"):
        function(np.zeros((3, 2)), np.zeros(3))


def test_bad_white_raises() -> None:
    with pytest.raises(ValueError, match="white"):
        xyz_to_lab(np.ones(3), white=[0.95, 1.0])
    with pytest.raises(ValueError, match="> 0"):
        xyz_to_lab(np.ones(3), white=[0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="white_dst"):
        chromatic_adaptation_bradford(np.ones(3), D50, [1.0, 1.0])


# --- calibration.charts ---------------------------------------------------------------


def test_colorchecker_classic_layout() -> None:
    chart = COLORCHECKER_CLASSIC
    assert (chart.rows, chart.cols, chart.n_patches) == (4, 6, 24)
    assert chart.lab_d50.shape == (24, 3)
    assert chart.lab_d50.dtype == np.float64
    assert not chart.lab_d50.flags.writeable
    assert chart.patch_names[0] == "dark skin"
    assert chart.patch_names[-1] == "black 2"
    assert chart.patch_index("white 9.5") == 18
    assert CHARTS["colorchecker-classic"] is chart
    assert get_chart("colorchecker-classic") is chart
    with pytest.raises(ValueError, match="must be one of"):
        get_chart("colorchecker-deluxe")
    with pytest.raises(ValueError, match="must be one of"):
        chart.patch_index("chartreuse")


def test_colorchecker_classic_values() -> None:
    """Spot values from X-Rite (2016), ColorChecker Classic after November 2014, D50."""
    chart = COLORCHECKER_CLASSIC
    np.testing.assert_array_equal(
        chart.lab_d50[chart.patch_index("dark skin")], [37.54, 14.37, 14.92]
    )
    np.testing.assert_array_equal(chart.lab_d50[chart.patch_index("cyan")], [49.57, -29.71, -28.32])
    neutrals = chart.lab_d50[18:]
    assert np.all(np.abs(neutrals[:, 1:]) < 3.0)
    assert np.all(np.diff(neutrals[:, 0]) < 0)  # white to black
    assert 95.0 <= neutrals[0, 0] <= 97.0
    assert 19.0 <= neutrals[-1, 0] <= 22.0
    # Chromatic patches really are chromatic.
    chroma = np.hypot(chart.lab_d50[:18, 1], chart.lab_d50[:18, 2])
    assert np.all(chroma > 10.0)


def test_colorchecker_classic_geometry() -> None:
    chart = COLORCHECKER_CLASSIC
    width, height = chart.size_mm
    assert width > height
    assert chart.patch_size_mm < chart.patch_pitch_mm
    centres = chart.patch_centres_mm()
    assert centres.shape == (24, 2)
    half = chart.patch_size_mm / 2.0
    assert np.all(np.abs(centres[:, 0]) + half < width / 2.0)
    assert np.all(np.abs(centres[:, 1]) + half < height / 2.0)
    np.testing.assert_allclose(centres.mean(axis=0), 0.0, atol=1e-12)


def test_chart_srgb() -> None:
    rgb = chart_srgb(COLORCHECKER_CLASSIC)
    assert rgb.shape == (24, 3)
    assert np.all((rgb >= 0.0) & (rgb <= 1.0))
    assert np.array_equal(chart_srgb("colorchecker-classic"), rgb)
    white = rgb[COLORCHECKER_CLASSIC.patch_index("white 9.5")]
    assert np.all((white > 0.90) & (white < 0.97))
    assert np.ptp(white) < 0.03  # near neutral once adapted to D65
    neutrals = rgb[18:]
    assert np.all(np.ptp(neutrals, axis=1) < 0.03)
    assert np.all(np.diff(neutrals.mean(axis=1)) < 0)
    # Neutral 5 (Munsell value 5, ~19% reflectance) is mid grey in sRGB.
    assert 0.44 < neutrals[3].mean() < 0.50
    # Hue sanity: red is reddest, green greenest, blue bluest.
    names = COLORCHECKER_CLASSIC.patch_names
    assert np.argmax(rgb[names.index("red")]) == 0
    assert np.argmax(rgb[names.index("green")]) == 1
    assert np.argmax(rgb[names.index("blue")]) == 2


def test_chart_srgb_round_trip_for_in_gamut_patches() -> None:
    chart = COLORCHECKER_CLASSIC
    rgb = chart_srgb(chart)
    in_gamut = np.all((rgb > 0.0) & (rgb < 1.0), axis=1)
    assert in_gamut.sum() >= 20
    lab_d50 = srgb_to_lab(rgb[in_gamut], white=D50)
    np.testing.assert_allclose(lab_d50, chart.lab_d50[in_gamut], atol=1e-9)


def test_chart_rejects_inconsistent_data() -> None:
    with pytest.raises(ValueError, match="patch names"):
        Chart("bad", 2, 2, ("a", "b", "c"), np.zeros((4, 3)), (10.0, 10.0), 4.0, 5.0)
    with pytest.raises(ValueError, match="lab_d50 must have shape"):
        Chart("bad", 2, 2, ("a", "b", "c", "d"), np.zeros((3, 3)), (10.0, 10.0), 4.0, 5.0)
