"""Evidence that fires on change, not on edges and highlights (issue 23, item 4): clipped
highlights, the region's steady colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from testkit.metrics import match_boxes
from testkit.randomised import randomised_pair
from vision.compare import compare
from vision.decode import load_image
from vision.load import load_pair
from vision.measure.defects import local_colour_cue
from vision.measure.highlights import (
    added_light,
    clipped_highlights,
    steady_colour_region,
)
from vision.views import AnalysisViews


def test_white_clipped_in_one_photo_only_is_a_highlight():
    """The lamp's reflection: clipped white in one photo, the surface in the other. White
    both photos clip (the subject's own), a saturated colour and a light grey are not."""
    unit = np.full((64, 96, 3), 120, np.uint8)
    unit[40:50, 70:80] = 255  # white on both photos: the subject's own
    golden = unit.copy()
    golden[10:20, 10:20] = 255  # the reflection, on the golden only
    golden[40:50, 10:20] = (255, 40, 40)  # a saturated red: the photo shows its colour
    golden[40:50, 40:50] = 235  # light grey, not clipped
    highlights = clipped_highlights(golden, unit)
    assert highlights[10:20, 10:20].all()
    assert not highlights[40:50, 10:20].any()
    assert not highlights[40:50, 40:50].any()
    assert not highlights[40:50, 70:80].any()
    assert not highlights[30, 30]
    np.testing.assert_array_equal(clipped_highlights(unit, golden), highlights)


def test_the_steady_region_keeps_a_uniform_drift_and_leaves_out_a_local_change():
    """Every pixel changed alike (a drift): all of the region is steady. A patch that changed
    unlike the rest (a moved reflection's halo, a stain) is left out."""
    shape = (128, 160)
    rng = np.random.default_rng(3)
    golden = rng.uniform(20, 80, (shape[0] // 2, shape[1] // 2, 3)).astype(np.float32)
    region = np.ones(shape, bool)
    drifted = golden + np.array([4.0, -3.0, 2.0], np.float32)
    assert steady_colour_region(golden, drifted, region, None).all()
    local = drifted.copy()
    local[10:30, 10:30] += np.array([25.0, 0.0, 0.0], np.float32)
    steady = steady_colour_region(golden, local, region, None)
    assert not steady[20:60, 20:60].any()
    assert steady.mean() > 0.8


def _board_with_glare(shape=(384, 512), seed=5):
    """A dark green board with pale traces (linear RGB), the same board under a lamp's
    reflection that is not clipped (a Gaussian of grey light, sigma 60 px, peak 0.15 in
    linear light: about +25 L* on the green), and the reflection's centre."""
    rng = np.random.default_rng(seed)
    golden = np.empty((*shape, 3), np.float32)
    golden[:] = (0.02, 0.12, 0.03)  # the board's green
    for y in range(8, shape[0], 24):
        golden[y:y + 3] = (0.55, 0.45, 0.2)  # traces
    golden += rng.normal(0.0, 0.003, golden.shape).astype(np.float32)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    centre = (180, 300)
    glare = 0.15 * np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * 60.0**2))
    return golden, golden + glare[..., None].astype(np.float32), centre


def _linear_views(linear: np.ndarray) -> AnalysisViews:
    from imaging import color

    linear = np.clip(linear, 0.0, 1.0).astype(np.float32)
    return AnalysisViews(linear, color.linear_to_srgb8(linear).mean(axis=2).astype(np.uint8))


def test_added_light_that_is_not_clipped_is_no_colour_change_but_a_stain_under_it_is():
    """Glare that is not clipped adds grey light: in linear RGB the unit is the golden plus
    k * white, smooth over ~100 px. Without the added light taken off, the colour cue reads
    the reflection on the dark green as a change (tens of L*, well above its threshold);
    with it, nothing there, while a stain under the reflection (a chromatic change the
    light cannot explain) still exceeds the threshold."""
    golden, lit, (cy, cx) = _board_with_glare()
    region = np.ones(golden.shape[:2], bool)
    box = (slice(0, golden.shape[0]), slice(0, golden.shape[1]))
    golden_views, lit_views = _linear_views(golden), _linear_views(lit)
    light = added_light(golden_views.linear_smooth, lit_views.linear_smooth, region)
    assert light[cy // 2, cx // 2] == pytest.approx(0.15, abs=0.05)
    assert abs(light[20, 20]) < 0.005  # far from the reflection: no light added
    offset = np.zeros(3)
    blind = local_colour_cue(golden_views, lit_views, offset, region, box)
    assert blind[cy - 20:cy + 20, cx - 20:cx + 20].max() > 1.5
    cue = local_colour_cue(golden_views, lit_views, offset, region, box, light=light)
    assert cue[20:-20, 20:-20].max() < 0.5, cue.max()
    stained = lit.copy()
    stained[cy - 8:cy + 8, cx + 10:cx + 26] *= np.float32((1.0, 0.3, 0.3))  # a red-brown stain
    stained_views = _linear_views(stained)
    light = added_light(golden_views.linear_smooth, stained_views.linear_smooth, region)
    cue = local_colour_cue(golden_views, stained_views, offset, region, box, light=light)
    assert cue[cy - 4:cy + 4, cx + 14:cx + 22].max() > 1.0


def test_a_defect_on_a_glossy_board_under_moved_light_is_one_region_on_the_defect():
    """eval_randomised's "tune" #9: a defect on a circuit board photographed under another
    light (both photos with a card), the board's gloss lit differently in each. Before the
    added light was taken off the unit, the colour cue read the green between the traces
    as changed: 12 regions, one of them on the defect."""
    pair = randomised_pair([0, 23, 9], kind="board", case="defect")
    (golden, golden_size), (unit, unit_size) = load_pair(pair.golden_jpeg, pair.unit_jpeg)
    report = compare(golden, unit, golden_photo_size=golden_size, unit_photo_size=unit_size,
                     render_images=False).report
    assert report.registration.ok
    boxes = [tuple(r.bbox) for r in report.defects.regions]
    assert len(boxes) == 1, report.defects.regions
    assert match_boxes(boxes, [pair.defect_box()], rule="on_defect")
    assert report.verdict == "fail"


def test_a_highlight_that_moved_is_no_colour_drift():
    """Identical glossy prints photographed twice, from eval_randomised's "tune" split (#50):
    the ceiling lamp's reflection on the golden only. Their colour is the same: the region's
    colour must stay within the default tolerance (2.0). Before the steady region (the mean
    of every pixel): Delta-E00 11.6, failed as colour drift."""
    pair = randomised_pair([0, 23, 50], kind="print", case="identical")
    report = _compared(pair)
    assert report.registration.ok
    assert report.color.delta_e00 < 2.0, report.color
    assert not any(reason.startswith("Colour drift") for reason in report.reasons)


def _compared(pair):
    (golden, golden_size), (unit, unit_size) = load_pair(pair.golden_jpeg, pair.unit_jpeg)
    return compare(golden, unit, golden_photo_size=golden_size, unit_photo_size=unit_size,
                   render_images=False).report


def test_a_sheen_over_the_whole_product_makes_colour_unmeasurable_not_a_drift():
    """Identical brushed steel (eval_randomised "tune" #27): the golden's specular sheen lies
    over the whole plate, unclipped, so the plate reads 13.7 L* darker on the unit (Delta-E00
    9.15, a colour fail before schema 1.8). Grey light added over nearly all of it explains
    that: without it the colours differ by less than the tolerance, so the colour part says it
    cannot be measured under the reflection instead of claiming a drift. (The verdict still
    fails on the regions the sheen leaves, an open limit.)"""
    report = _compared(randomised_pair([0, 23, 27], kind="metal", case="identical"))
    assert report.registration.ok
    colour = report.color
    assert colour.delta_e00 > 2.0 and colour.reflection_share > 0.9, colour
    assert colour.delta_e00_without_reflection < 2.0, colour
    assert not any(reason.startswith("Colour drift") for reason in report.reasons)
    assert any(reason.startswith("Colour cannot be measured under a reflection")
               for reason in report.reasons)
    assert "golden's photo has grey light added" in colour.note


def test_a_dye_drift_under_a_reflection_still_fails():
    """A board whose colour drifted by a true 4.3 Delta-E00 (a tune-seeded drift pair, other
    light and camera), with grey light added over nearly all of it in one photo: taking that
    light off leaves a drift beyond the tolerance (hue and chroma changed, which added white
    cannot do), so the colour fails as a drift. (Tune #38, a fabric, was this test's pair until
    the outline fallback refused its half-turn tie: it is no longer registered.)"""
    pair = randomised_pair([0, 23, 1017], case="drift")
    assert pair.kind == "board" and pair.true_delta_e00 > 3.5
    report = _compared(pair)
    colour = report.color
    assert colour.reflection_share > 0.3 and colour.delta_e00_without_reflection > 2.0, colour
    assert report.verdict == "fail"
    assert report.reasons[0].startswith("Colour drift")


REAL_PCB = Path(__file__).resolve().parents[2] / "shared" / "data" / "deeppcb-val" / "pairs"


def _truth_boxes(path: Path) -> list[tuple[int, int, int, int]]:
    boxes = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4:
            x1, y1, x2, y2 = (int(float(v)) for v in parts[:4])
            boxes.append((x1, y1, x2 - x1, y2 - y1))
    return boxes


@pytest.mark.skipif(not REAL_PCB.is_dir(), reason="../shared/data/deeppcb-val is not here")
@pytest.mark.parametrize("stem", ["00041051", "00041061"])
def test_a_real_board_has_regions_on_its_defects_and_none_along_the_frame(stem):
    """DeepPCB pairs as given (from the "tune" half): the unit scan lies a pixel or two off
    the golden's, so along the frame each shows what the other's frame cut, and the maps'
    filters see a reflection beyond it. Every defect gets its region and no region lies
    elsewhere (before the frame's edge counted as the region's: 1 and 2 thin regions along
    the bottom edge, 104 x 7 and 71 x 8 px)."""
    golden = load_image(REAL_PCB / f"{stem}_golden.jpg")
    unit = load_image(REAL_PCB / f"{stem}_unit.jpg")
    report = compare(golden, unit, render_images=False).report
    truth = _truth_boxes(REAL_PCB / f"{stem}.txt")
    regions = [tuple(r.bbox) for r in report.defects.regions]
    matched = match_boxes(regions, truth, rule="on_defect")
    # No region off the defects (the frame's strips were the false ones) ...
    assert len(matched) == len(regions)
    # ... and the defects found. One may be missed: 00041061's open at (457, 513), whose
    # evidence is 15 x 12 px, at the default minimum area, comes and goes with a tenth of a
    # pixel of registration (found before the final ECC fit of vision.register._dense, missed
    # after it; eval_real.py measures recall over all 200 boards).
    assert len(matched) >= len(truth) - 1


def test_the_local_drift_is_each_tile_median_over_the_region():
    """The drift's tile medians (one sort for the tiles the region only partly covers) are
    np.nanmedian's of the change inside the region, ties and even counts included."""
    from vision.measure.defects import _median_inside

    rng = np.random.default_rng(3)
    values = np.round(rng.normal(0.0, 4.0, (3, 20, 64)), 1).astype(np.float32)  # many ties
    inside = rng.random((20, 64)) < np.linspace(0.5, 1.0, 20)[:, None]
    expected = np.nanmedian(np.where(inside, values, np.nan), axis=-1)
    assert np.array_equal(_median_inside(values, inside), expected)


def _maps_with(blobs: list[tuple[slice, slice, float]], shape=(200, 200)):
    """MapEvidence whose likelihood is `value` over each (rows, cols, value) blob."""
    from vision.measure.defects import MapEvidence

    likelihood = np.zeros(shape, np.float32)
    for rows, cols, value in blobs:
        likelihood[rows, cols] = value
    seeds = (likelihood >= 0.5).astype(np.uint8)
    return MapEvidence(structural=likelihood, likelihood=likelihood, seeds=seeds, grown=seeds)


@pytest.mark.parametrize(("rows", "cols", "value", "counted"), [
    (slice(50, 60), slice(50, 60), 1.0, True),  # a saturated 10 x 10 blob: 100 px
    (slice(50, 53), slice(50, 84), 1.0, False),  # a sliver of the same area
    (slice(50, 60), slice(50, 60), 0.98, False),  # a blob whose evidence is not certain
    (slice(50, 58), slice(50, 58), 1.0, False),  # 64 px: under half the minimum
    (slice(50, 63), slice(50, 63), 0.7, True),  # 169 px: over the minimum, counted anyway
])
def test_a_region_under_the_minimum_area_counts_only_as_a_conclusive_blob(rows, cols, value,
                                                                          counted):
    """The spec's min_defect_area_px (150 by default) drops small regions, except a compact
    blob of at least half of it whose evidence saturated: a pin hole on a 640 px board scan."""
    from vision.measure.defects import defect_regions
    from vision.spec import Spec

    maps = _maps_with([(rows, cols, value)])
    _, regions = defect_regions(maps, np.zeros((200, 200), np.float32), Spec(), 1.0,
                                roi_area=200 * 200, px_per_mm=None)
    assert (len(regions) == 1) == counted
