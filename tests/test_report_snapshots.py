"""Reports of a fixed set of comparisons stay as the snapshot recorded them.

The snapshot (tests/data/report_snapshots.json) holds 49 reports (renders, real DeepPCB pairs as
given and turned, the CLI's and the servers' entry points, with and without a spec), without
timings, and digests of their pictures. A reorganisation of the code must leave every one
identical; a change meant to alter reports rewrites the snapshot on purpose
(``python -m testkit.report_cases --write``) and says why in its commit.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from testkit.report_cases import (
    DEEPPCB,
    SNAPSHOT,
    cases,
    picture_fingerprint,
    report_digest,
    run_case,
    same_picture,
)

_RECORDED = json.loads(SNAPSHOT.read_text())
_CASES = cases()

# Unrounded floats (the homography, its RMS) come out of OpenCV's and NumPy's SIMD paths, whose
# last bits differ between CPUs: the same code gave rms_px 0.28018992236232065 on one EPYC and
# 0.2801899223622786 on another, and a homography's element -0.94755599438 on an EPYC and
# -0.94755599304 (1.4e-9 relative) on an Intel Xeon. A real change moves them by far more: the
# smallest seen, an ECC start normalised differently, moved a corner by 0.004 px (3e-6).
_REL_TOL = 1e-7


def _same_report(today: dict, recorded: dict, key: str) -> bool:
    if key == "pictures" and isinstance(today.get(key), dict) and isinstance(
            recorded.get(key), dict):
        return today[key].keys() == recorded[key].keys() and all(
            same_picture(today[key][name], recorded[key][name]) for name in today[key])
    return _same(today.get(key), recorded.get(key))


def _same(today: object, recorded: object) -> bool:
    if isinstance(today, float) or isinstance(recorded, float):
        return (isinstance(today, (int, float)) and isinstance(recorded, (int, float))
                and math.isclose(today, recorded, rel_tol=_REL_TOL, abs_tol=1e-12))
    if isinstance(today, dict) and isinstance(recorded, dict):
        return today.keys() == recorded.keys() and all(
            _same(today[k], recorded[k]) for k in today)
    if isinstance(today, list) and isinstance(recorded, list):
        return len(today) == len(recorded) and all(map(_same, today, recorded))
    return today == recorded


def test_the_snapshot_covers_at_least_40_comparisons():
    assert len(_RECORDED) >= 40
    assert sorted(_RECORDED) == sorted(case.name for case in _CASES)


@pytest.mark.parametrize("case", _CASES, ids=[case.name for case in _CASES])
def test_report_is_the_recorded_one(case):
    if case.needs_shared and not DEEPPCB.is_dir():
        pytest.skip(f"{DEEPPCB} is not here (it sits beside the repository on CI)")
    today = report_digest(run_case(case))
    recorded = _RECORDED[case.name]
    differing = sorted(k for k in set(today) | set(recorded)
                       if not _same_report(today, recorded, k))
    assert not differing, f"{case.name}: {differing} changed: {today} != {recorded}"


def test_a_float_moved_by_a_millionth_is_a_change():
    recorded = {"registration": {"rms_px": 0.28018992236232065, "inliers": 127}}
    assert _same(recorded, {"registration": {"rms_px": 0.2801899223622786, "inliers": 127}})
    assert not _same(recorded, {"registration": {"rms_px": 0.2801902, "inliers": 127}})
    assert not _same(recorded, {"registration": {"rms_px": 0.28018992236232065, "inliers": 128}})


def test_writing_one_case_keeps_the_other_snapshots(tmp_path, monkeypatch):
    """`--only X --write` replaces X's snapshot and keeps every other case's, so re-recording
    one case cannot silently drop the rest (it once rewrote the file with X alone)."""
    import testkit.report_cases as report_cases

    snapshot = tmp_path / "snapshots.json"
    stale = {name: {"verdict": "stale"} for name in _RECORDED}
    stale["a-case-that-no-longer-exists"] = {"verdict": "stale"}
    snapshot.write_text(json.dumps(stale))
    monkeypatch.setattr(report_cases, "SNAPSHOT", snapshot)
    assert report_cases.main(["--only", "render-coffee-phone", "--write"]) == 0
    written = json.loads(snapshot.read_text())
    assert set(written) == set(_RECORDED)
    assert _same(written["render-coffee-phone"], _RECORDED["render-coffee-phone"])
    assert all(written[name] == {"verdict": "stale"}
               for name in written if name != "render-coffee-phone")


def test_a_picture_differing_in_a_few_rounded_pixels_is_the_same_but_a_drawn_region_is_not():
    rng = np.random.default_rng(5)
    picture = rng.integers(0, 256, (1008, 1344, 3), dtype=np.uint8)
    recorded = picture_fingerprint(picture)
    rounded_otherwise = picture.copy()
    rows, cols = rng.integers(0, 1008, 400), rng.integers(0, 1344, 400)
    rounded_otherwise[rows, cols] ^= 1  # 400 pixels one level off, as a warp rounding the other way
    assert picture_fingerprint(rounded_otherwise) != recorded
    assert same_picture(picture_fingerprint(rounded_otherwise), recorded)
    outlined = picture.copy()
    cv2.rectangle(outlined, (600, 400), (620, 420), (255, 0, 0), 2)  # a 20 px region's outline
    assert not same_picture(picture_fingerprint(outlined), recorded)
    assert not same_picture(picture_fingerprint(picture[:, :1300]), recorded)
    assert same_picture(None, None) and not same_picture(None, recorded)
