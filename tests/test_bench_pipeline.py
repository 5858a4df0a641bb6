"""The naive baseline benchmarks/bench_pipeline.py times sealcheck against (testkit/naive.py),
and the table that marks issue 9's targets met or not met (testkit/bench_table.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from testkit.bench_table import (
    BATCH_TARGET,
    CLI_TARGET_S,
    DECODE_FLOOR_TARGET,
    END_TO_END_TARGET_MS,
    NAIVE_SPEEDUP_TARGET,
    PEAK_RSS_TARGET_MB,
    BenchResults,
    CliResult,
    DecodeResult,
    Figure,
    InProcessResult,
    figures,
    markdown_table,
)
from testkit.naive import NAIVE_STEPS, NaiveResult, NaiveTiming, naive_compare
from testkit.scenes import Camera, make_pair, random_phone_camera

SIZE = (800, 600)


def _write_jpeg(path, rgb: np.ndarray) -> str:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]),
                       [cv2.IMWRITE_JPEG_QUALITY, 95])
    return str(path)


def _corner_error_px(H_found: np.ndarray, H_true: np.ndarray,
                     box: tuple[int, int, int, int]) -> float:
    """Largest distance, in golden pixels, between where the two unit-to-golden homographies
    put the unit points that truly land on the corners of the golden `box` (x, y, w, h)."""
    x, y, w, h = box
    golden = np.float64([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]).reshape(-1, 1, 2)
    unit = cv2.perspectiveTransform(golden, np.linalg.inv(H_true))
    return float(np.linalg.norm(cv2.perspectiveTransform(unit, H_found) - golden, axis=2).max())


def test_naive_compare_of_a_photo_with_itself(tmp_path):
    """Invariants: identity homography, SSIM 1, Delta-E00 0."""
    golden = make_pair("astronaut", golden_camera=Camera(width=SIZE[0], height=SIZE[1]),
                       px_per_mm=1.5, seed=1).golden
    path = _write_jpeg(tmp_path / "golden.jpg", golden)

    result = naive_compare(path, path)

    assert result.homography_unit_to_golden is not None
    assert _corner_error_px(result.homography_unit_to_golden, np.eye(3), (0, 0, *SIZE)) < 0.1
    assert result.inliers >= 100
    assert result.ssim == pytest.approx(1.0, abs=1e-3)
    assert result.delta_e00 == pytest.approx(0.0, abs=0.05)
    assert list(result.timings_ms) == list(NAIVE_STEPS)
    assert all(ms >= 0 for ms in result.timings_ms.values())
    assert result.total_ms == pytest.approx(sum(result.timings_ms.values()))


def test_naive_compare_registers_a_hand_held_photo(tmp_path):
    """The true homography of a synthetic hand-held pair (testkit/scenes.py) is found
    on the product (the table under it changes between the photos, as in the benchmark's
    pairs): ROI corners within 2 px, eval_registration.py's criterion; the registered photos
    compare as similar but not identical."""
    golden_camera = Camera(width=SIZE[0], height=SIZE[1])
    unit_camera = random_phone_camera(np.random.default_rng(3), base=golden_camera,
                                      max_tilt_deg=15.0, scale_range=(0.9, 1.1), light=False)
    pair = make_pair("astronaut", golden_camera=golden_camera, unit_camera=unit_camera,
                     px_per_mm=1.5, seed=3)

    result = naive_compare(_write_jpeg(tmp_path / "golden.jpg", pair.golden),
                           _write_jpeg(tmp_path / "unit.jpg", pair.unit))

    assert result.homography_unit_to_golden is not None
    assert _corner_error_px(result.homography_unit_to_golden, pair.homography_unit_to_golden,
                            pair.roi) < 2.0
    assert 0.2 < result.ssim < 0.99
    assert 0.0 < result.delta_e00 < 10.0


def test_naive_compare_without_matches_reports_no_homography(tmp_path):
    flat = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)  # no SIFT keypoints at all
    path = _write_jpeg(tmp_path / "flat.jpg", flat)

    result = naive_compare(path, path)

    assert result.homography_unit_to_golden is None
    assert result.inliers == 0
    assert np.isnan(result.ssim) and np.isnan(result.delta_e00)


def _results(*, end_to_end_ms, naive_ms, floor_ms, cli_s, cli_rss_mb, batch_2_workers):
    """BenchResults with every sample equal to the given figure (so the median is it)."""
    stages = {"decode": [50.0] * 3, "calibrate": [90.0] * 3, "end_to_end": [end_to_end_ms] * 3}
    decode = DecodeResult([floor_ms] * 3, [40.0] * 3)
    inproc = InProcessResult(stages, [end_to_end_ms] * 3, [], 500.0, 100.0, decode)
    step_ms = naive_ms / len(NAIVE_STEPS)
    naive = NaiveTiming([("pair", NaiveResult(np.eye(3), 10, 10, 0.0, 1.0,
                                              dict.fromkeys(NAIVE_STEPS, step_ms)))], 1, 4000.0)
    batch = {label: {"items": 20, "workers": workers, "pairs_per_s": rate,
                     "steady_pairs_per_s": rate}
             for label, workers, rate in (("1 worker", 1, 1.0),
                                          ("2 workers", 2, batch_2_workers))}
    return BenchResults(
        n_pairs=1, repeats=3, inproc=inproc, decode=decode,
        cli=CliResult([cli_s] * 3, cli_rss_mb, "pass", 0, 100.0), naive=naive, batch=batch,
        measured_at="today")


def _result_by_target(rows: list[Figure]) -> dict[float, bool]:
    return {row.target: row.met for row in rows if row.target is not None}


def test_table_marks_every_target_met():
    # naive / sealcheck = 25x, sealcheck / decode floor = 3.3x; the rest at their bounds.
    results = _results(end_to_end_ms=400.0, naive_ms=25 * 400.0, floor_ms=120.0,
                       cli_s=CLI_TARGET_S, cli_rss_mb=1000.0, batch_2_workers=BATCH_TARGET)

    met = _result_by_target(figures(results))

    assert met == {END_TO_END_TARGET_MS: True, NAIVE_SPEEDUP_TARGET: True,
                   DECODE_FLOOR_TARGET: True, PEAK_RSS_TARGET_MB: True, CLI_TARGET_S: True,
                   120.0: True, BATCH_TARGET: True}
    table = markdown_table(results)
    assert "not met" not in table
    assert table.count("| met |") == 7


def test_table_marks_every_target_not_met():
    results = _results(end_to_end_ms=500.0, naive_ms=19 * 500.0, floor_ms=100.0, cli_s=1.3,
                       cli_rss_mb=1200.0, batch_2_workers=2.9)  # 1200 MiB > 1.2 GB
    results.inproc.samples_ms["calibrate"] = [121.0] * 3

    met = _result_by_target(figures(results))

    assert met == {END_TO_END_TARGET_MS: False, NAIVE_SPEEDUP_TARGET: False,
                   DECODE_FLOOR_TARGET: False, PEAK_RSS_TARGET_MB: False, CLI_TARGET_S: False,
                   120.0: False, BATCH_TARGET: False}
    table = markdown_table(results)
    assert table.count("| **not met** |") == 7
    assert "| 19.0x | >= 20x | **not met** |" in table
    assert "| 5.00x | <= 4x | **not met** |" in table
    assert "| 1200 MiB | <= 1.2 GB | **not met** |" in table  # 1.2e9 bytes = 1144 MiB


@pytest.mark.parametrize(("value", "at_most", "met"), [
    (449.0, True, True), (450.0, True, True), (451.0, True, False),
    (19.9, False, False), (20.0, False, True), (20.1, False, True)])
def test_figure_row_bounds(value, at_most, met):
    target = 450.0 if at_most else 20.0
    row = Figure("x", value, f"{value}", target, "ms" if at_most else "x", at_most=at_most)
    assert row.met is met
    assert row.row().endswith("| met |" if met else "| **not met** |")
    assert Figure("x", value, "v").row() == "| x | v | | |"
