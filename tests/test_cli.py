"""Tests for the `sealcheck` command line: exit codes, one-line errors, output files, and
verdicts on synthetic photo pairs whose truth is known (testkit.scenes).

The many bad-input cases call ``main()`` in-process (fast); ``capfd`` captures file descriptor
2 as well, so messages that C libraries print straight to stderr count too. The end-to-end cases
run the installed console script as a real subprocess, as a user or a script would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from testkit.bad_inputs import (
    BadInput,
    bad_images,
    bad_specs,
    write_corpus,
    write_good_image,
)
from testkit.scenes import Camera, make_pair
from vision.report import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[1]
ERROR_PREFIX = "sealcheck: error: "

# Small photos keep each end-to-end run near a second; at 2 px/mm a 15 mm hole is ~30 px wide.
CAMERA = Camera(width=1008, height=756)
PX_PER_MM = 2.0
GOLDEN_SIZE = (CAMERA.width, CAMERA.height)

# --------------------------------------------------------------------------------------------
# Helpers


def _command() -> list[str]:
    script = Path(sys.executable).with_name("sealcheck")
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


def run_cli(*args: str | os.PathLike, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the real `sealcheck` executable; SEALCHECK_* settings come only from `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEALCHECK_")}
    environ.update(env or {})
    return subprocess.run([*_command(), *map(str, args)], capture_output=True, text=True,
                          env=environ, cwd=REPO, timeout=timeout)




def assert_usage_error(code: int, out: str, err: str, says: tuple[str, ...] | str,
                       name: str | os.PathLike | None = None) -> str:
    """Exit 2, nothing on stdout, one 'sealcheck: error:' line naming the problem (and file)."""
    says = (says,) if isinstance(says, str) else says
    assert "Traceback" not in err
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    line = lines[0]
    assert line.startswith(ERROR_PREFIX), line
    assert any(fragment.lower() in line.lower() for fragment in says), (
        f"none of {says} in: {line}")
    if name is not None:
        assert str(name) in line, f"{name} not named in: {line}"
    assert out == ""
    return line


def _case(case: BadInput):
    return pytest.param(case, id=case.kind)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("bad_inputs")
    write_corpus(directory)
    return directory


# --------------------------------------------------------------------------------------------
# Bad input: every case exits 2 with one line that names the problem


def test_corpus_has_distinct_kinds():
    kinds = [case.kind for case in bad_images() + bad_specs()]
    assert len(kinds) == len(set(kinds)) >= 12
    names = [case.filename for case in bad_images() + bad_specs()]
    assert len(names) == len(set(names)), "two cases would overwrite each other's file"


@pytest.mark.parametrize("role", ["golden", "unit"])
@pytest.mark.parametrize("case", [_case(c) for c in bad_images()])
def test_bad_image_is_refused(cli, corpus, case, role):
    bad, good = corpus / case.filename, corpus / "good.png"
    args = (bad, good) if role == "golden" else (good, bad)
    assert_usage_error(*cli("compare", *args), case.says, name=bad)


@pytest.mark.parametrize("case", [_case(c) for c in bad_specs()])
def test_bad_spec_is_refused(cli, corpus, case):
    spec = corpus / case.filename
    good = corpus / "good.png"
    assert_usage_error(*cli("compare", good, good, "--spec", spec), case.says, name=spec)


def test_decompression_bomb_fails_fast(cli, corpus):
    good, bomb = corpus / "good.png", corpus / "bomb.png"
    start = time.perf_counter()
    result = cli("compare", good, bomb)
    elapsed = time.perf_counter() - start
    assert_usage_error(*result, ("decompression bomb", "more than the limit"), name=bomb)
    assert elapsed < 1.0, f"refusing a 60000 x 60000 header took {elapsed:.2f} s"


def test_missing_file(cli, corpus, tmp_path):
    missing = tmp_path / "no_such_photo.jpg"
    assert_usage_error(*cli("compare", corpus / "good.png", missing), "no such file",
                       name=missing)


def test_directory_as_image(cli, corpus, tmp_path):
    assert_usage_error(*cli("compare", tmp_path, corpus / "good.png"), "directory",
                       name=tmp_path)


def test_image_above_max_pixels(cli, monkeypatch, tmp_path):
    golden = write_good_image(tmp_path / "golden.png", size=(32, 32))
    unit = write_good_image(tmp_path / "unit.png", size=(96, 64))
    monkeypatch.setenv("SEALCHECK_MAX_PIXELS", "2000")
    line = assert_usage_error(*cli("compare", golden, unit), "more than the limit", name=unit)
    assert "2,000" in line


@pytest.mark.parametrize("value", ["lots", "1e6", "", "0", "-5", "100"])
def test_invalid_max_pixels_setting(cli, corpus, monkeypatch, value):
    monkeypatch.setenv("SEALCHECK_MAX_PIXELS", value)
    good = corpus / "good.png"
    assert_usage_error(*cli("compare", good, good), "SEALCHECK_MAX_PIXELS")


def test_missing_spec_file(cli, corpus, tmp_path):
    spec = tmp_path / "spec.yaml"
    good = corpus / "good.png"
    assert_usage_error(*cli("compare", good, good, "--spec", spec), "not found", name=spec)


def test_directory_as_spec(cli, corpus, tmp_path):
    good = corpus / "good.png"
    assert_usage_error(*cli("compare", good, good, "--spec", tmp_path), "spec", name=tmp_path)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param([], "command is required", id="no-arguments"),
        pytest.param(["compare"], "required", id="compare-without-photos"),
        pytest.param(["compare", "golden.png"], "UNIT", id="compare-without-unit"),
        pytest.param(["inspect", "a.png", "b.png"], "invalid choice", id="unknown-command"),
        pytest.param(["compare", "a.png", "b.png", "--colour"], "unrecognized", id="unknown-flag"),
        pytest.param(["compare", "a.png", "b.png", "--spec"], "--spec", id="flag-without-value"),
    ],
)
def test_usage_errors(cli, args, says):
    assert_usage_error(*cli(*args), says)


def test_out_is_a_file(cli, corpus, tmp_path):
    target = tmp_path / "results"
    target.write_text("not a directory")
    good = corpus / "good.png"
    assert_usage_error(*cli("compare", good, good, "--out", target), "output directory",
                       name=target)


def test_out_below_a_file_is_unwritable(cli, corpus, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "results"
    good = corpus / "good.png"
    assert_usage_error(*cli("compare", good, good, "--out", target), "output directory",
                       name=target)


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        pytest.param(["compare", "{good}", "{dir}/truncated.jpg"], {}, "truncated", id="truncated"),
        pytest.param(["compare", "{good}", "{dir}/bomb.png"], {}, "bomb", id="bomb"),
        pytest.param(["compare", "{good}", "{good}"], {"SEALCHECK_MAX_PIXELS": "many"},
                     "SEALCHECK_MAX_PIXELS", id="bad-setting"),
        pytest.param([], {}, "command is required", id="no-arguments"),
        pytest.param(["compare", "a.png", "b.png", "--frobnicate"], {}, "unrecognized",
                     id="unknown-flag"),
        pytest.param(["compare", "{good}", "{good}"],
                     {"SEALCHECK_DEFECT_MODEL": "{dir}/no-such-model.onnx"}, "not found",
                     id="model-missing"),
        pytest.param(["compare", "{good}", "{good}"], {"SEALCHECK_DEFECT_MODEL": "{good}"},
                     "not an .onnx file", id="model-not-onnx"),
        pytest.param(["serve", "--port", "8931"],
                     {"SEALCHECK_DEFECT_MODEL": "{dir}/no-such-model.onnx",
                      "SEALCHECK_DATA_DIR": "{dir}/serve-data"}, "not found",
                     id="serve-model-missing"),
    ],
)
def test_bad_input_in_a_real_process(corpus, args, env, says):
    """The same rules hold for the installed executable (no traceback, no stray output)."""
    args = [a.format(good=corpus / "good.png", dir=corpus) for a in args]
    env = {k: v.format(good=corpus / "good.png", dir=corpus) for k, v in env.items()}
    result = run_cli(*args, env=env, timeout=20)
    assert_usage_error(result.returncode, result.stdout, result.stderr, says)


# --------------------------------------------------------------------------------------------
# End to end on synthetic pairs with known truth


def _save_png(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), rgb[..., ::-1])
    return path


def _project(H, points) -> np.ndarray:
    pts = np.asarray(points, np.float64).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(pts, np.asarray(H, np.float64)).reshape(-1, 2)


def _corners(width: int, height: int) -> list[tuple[float, float]]:
    return [(0, 0), (width - 1, 0), (width - 1, height - 1), (0, height - 1)]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict:
    """Golden and unit photos on disk; no colour card, so another product shares nothing."""
    directory = tmp_path_factory.mktemp("photos")
    # Same setup (background unchanged): the CLI runs without a spec, so the whole overlap is
    # compared, background included.
    common = dict(golden_camera=CAMERA, px_per_mm=PX_PER_MM, card=False, same_setup=True,
                  seed=3)
    same = make_pair("astronaut", **common)
    hole = make_pair("astronaut", defects=(("hole", 15.0),), **common)
    other = make_pair("astronaut", unit_product="coffee", **common)
    for pair in (hole, other):  # one golden serves all: the golden scene has no defects
        assert np.array_equal(pair.golden, same.golden)
    assert hole.golden_defect_mask.any()

    # The unit as a phone in portrait grip stores it: pixels turned 90 degrees counter-
    # clockwise, with EXIF orientation 6 ("rotate 90 CW to display").
    exif_unit = directory / "unit_exif6.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(same.unit, k=1)).save(exif_unit, "JPEG", quality=95, exif=exif)

    return {
        "golden": _save_png(directory / "golden.png", same.golden),
        "same": _save_png(directory / "unit_same.png", same.unit),
        "hole": _save_png(directory / "unit_hole.png", hole.unit),
        "other": _save_png(directory / "unit_other.png", other.unit),
        "exif": exif_unit,
        "same_pair": same,
        "hole_pair": hole,
        "dir": directory,
    }


@pytest.fixture(scope="module")
def pass_run(photos):
    out = photos["dir"] / "out_pass"
    result = run_cli("compare", photos["golden"], photos["same"], "--json", "--out", out)
    return result, out


@pytest.fixture(scope="module")
def hole_run(photos):
    out = photos["dir"] / "out_hole"
    result = run_cli("compare", photos["golden"], photos["hole"], "--json", "--out", out)
    return result, out


@pytest.fixture(scope="module")
def other_run(photos):
    out = photos["dir"] / "out_other"
    result = run_cli("compare", photos["golden"], photos["other"], "--json", "--out", out)
    return result, out


def _report(result: subprocess.CompletedProcess) -> dict:
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def test_same_product_passes(pass_run, photos):
    result, _ = pass_run
    assert result.returncode == 0, result.stderr
    report = _report(result)
    assert report["verdict"] == "pass"
    assert report["registration"]["ok"] is True
    assert report["defects"]["regions"] == []
    # The true unit -> golden homography is the identity (same camera); the reported one
    # must put the unit's corners where the truth does.
    truth = photos["same_pair"].homography_unit_to_golden
    corners = _corners(*GOLDEN_SIZE)
    error = np.abs(_project(report["registration"]["homography"], corners)
                   - _project(truth, corners)).max()
    assert error < 3.0, f"corners off by {error:.1f} px"


def test_json_report_schema(pass_run):
    report = _report(pass_run[0])
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["verdict"] in ("pass", "fail", "inconclusive")
    assert 0 <= report["score"] <= 100
    assert report["reasons"] and all(isinstance(r, str) and r for r in report["reasons"])
    homography = np.asarray(report["registration"]["homography"], np.float64)
    assert homography.shape == (3, 3) and np.isfinite(homography).all()
    assert homography[2, 2] == pytest.approx(1.0)
    assert isinstance(report["color"]["delta_e00"], float) and report["color"]["delta_e00"] >= 0
    assert -1 <= report["structure"]["ssim"] <= 1
    assert isinstance(report["defects"]["regions"], list)
    assert report["timings_ms"] and all(v >= 0 for v in report["timings_ms"].values())
    assert report["versions"]["sealcheck"] and report["versions"]["schema"] == SCHEMA_VERSION
    assert report["golden_size"] == list(GOLDEN_SIZE)


def test_out_writes_the_four_files(pass_run):
    result, out = pass_run
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "aligned_unit.png", "defect_map.png", "overlay.png", "report.json"]
    assert json.loads((out / "report.json").read_text()) == json.loads(result.stdout)

    defect_map = cv2.imread(str(out / "defect_map.png"), cv2.IMREAD_UNCHANGED)
    assert defect_map.dtype == np.uint8 and defect_map.shape == GOLDEN_SIZE[::-1]
    for name in ("overlay.png", "aligned_unit.png"):
        with Image.open(out / name) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", GOLDEN_SIZE), name


def test_readable_summary(photos):
    result = run_cli("compare", photos["golden"], photos["same"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    first = result.stdout.splitlines()[0]
    assert first.startswith("verdict: PASS")
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_hole_fails_where_the_hole_is(hole_run, photos):
    result, out = hole_run
    assert result.returncode == 1, result.stderr
    report = _report(result)
    assert report["verdict"] == "fail"
    assert any("defect" in reason.lower() for reason in report["reasons"])
    mask = photos["hole_pair"].golden_defect_mask
    hits = []
    for region in report["defects"]["regions"]:
        x, y, w, h = region["bbox"]
        hits.append(int(mask[y:y + h, x:x + w].sum()))
    assert max(hits, default=0) > 0.5 * mask.sum(), (
        f"no region covers the hole; regions {report['defects']['regions']}")
    # The defect map (golden pixels) lights up on the hole.
    defect_map = cv2.imread(str(out / "defect_map.png"), cv2.IMREAD_UNCHANGED)
    assert defect_map[mask].max() >= 128


def test_other_product_is_inconclusive(other_run):
    result, out = other_run
    assert result.returncode == 3, result.stderr
    report = _report(result)
    assert report["verdict"] == "inconclusive"
    registration = report["registration"]
    assert registration["ok"] is False
    assert registration["homography"] is None
    assert isinstance(registration["reason"], str) and registration["reason"]
    # No alignment, so no aligned unit; the pictures are still golden size.
    assert sorted(p.name for p in out.iterdir()) == ["defect_map.png", "overlay.png",
                                                     "report.json"]
    defect_map = cv2.imread(str(out / "defect_map.png"), cv2.IMREAD_UNCHANGED)
    assert defect_map.dtype == np.uint8 and defect_map.shape == GOLDEN_SIZE[::-1]
    with Image.open(out / "overlay.png") as overlay:
        assert (overlay.mode, overlay.size) == ("RGB", GOLDEN_SIZE)


def test_exif_oriented_unit_passes(photos):
    with Image.open(photos["exif"]) as stored:
        assert stored.size == GOLDEN_SIZE[::-1]  # the file really holds the pixels turned
    result = run_cli("compare", photos["golden"], photos["exif"], "--json")
    assert result.returncode == 0, result.stderr
    report = _report(result)
    assert report["verdict"] == "pass"
    assert report["unit_size"] == list(GOLDEN_SIZE)  # oriented, not as stored
    # The homography maps the oriented unit onto the golden: here the identity, not a turn.
    truth = photos["same_pair"].homography_unit_to_golden
    corners = _corners(*GOLDEN_SIZE)
    error = np.abs(_project(report["registration"]["homography"], corners)
                   - _project(truth, corners)).max()
    assert error < 3.0, f"corners off by {error:.1f} px"


def test_closed_output_pipe_is_not_an_internal_error(photos):
    # `sealcheck compare ... | head -1`: the reader leaves before the summary is written.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEALCHECK_")}
    process = subprocess.Popen([*_command(), "compare", str(photos["golden"]),
                                str(photos["same"])], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=environ, cwd=REPO)
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141
    assert b"internal error" not in err and b"Traceback" not in err


# --------------------------------------------------------------------------------------------
# The summary prints numbers as the reasons do (vision.numbers), never "-0.0"

_NEGATIVE_ZERO = re.compile(r"-0\.0+(?![0-9])")


@pytest.fixture(scope="module")
def sized_run(tmp_path_factory):
    """The same product photographed twice with the card, sizes measured: every difference
    is near zero, where a rounded negative once printed as "width -0.0 mm"."""
    directory = tmp_path_factory.mktemp("sized")
    pair = make_pair("rocket", golden_camera=CAMERA, px_per_mm=PX_PER_MM, seed=19)
    golden = _save_png(directory / "golden.png", pair.golden)
    unit = _save_png(directory / "unit.png", pair.unit)
    spec = directory / "spec.json"
    spec.write_text(json.dumps({"chart": {"width_mm": 209.55},
                                "tolerances": {"dimension_mm": 2.0}}))
    summary = run_cli("compare", golden, unit, "--spec", spec)
    report = _report(run_cli("compare", golden, unit, "--spec", spec, "--json"))
    return summary, report


def test_summary_prints_the_reasons_numbers_and_no_negative_zero(sized_run):
    summary, report = sized_run
    assert summary.returncode == 0, summary.stderr + summary.stdout
    assert report["dimensions"] is not None, report["reasons"]
    text = summary.stdout
    reasons = " ".join(report["reasons"])
    # Delta-E00 and SSIM: the summary's figure is the one the reasons give.
    delta_e = re.search(r"colour: Delta-E00 ([0-9.]+) ", text).group(1)
    assert f"Delta-E00 {delta_e} <= 2.00" in reasons, (delta_e, reasons)
    ssim = re.search(r"structure: SSIM ([0-9.]+)", text).group(1)
    assert f"SSIM {ssim} >= 0.500" in reasons, (ssim, reasons)
    size = re.search(r"dimensions: (width .*\))", text).group(1)
    assert size in reasons, (size, reasons)
    assert not _NEGATIVE_ZERO.search(text) and not _NEGATIVE_ZERO.search(reasons), text


def test_summary_of_a_tiny_negative_change_and_of_an_inconclusive_report(sized_run):
    from service.cli.compare import _summary
    from vision.report import Report

    _, report = sized_run
    report["dimensions"].update(delta_width_mm=-0.004, delta_height_mm=-0.03)
    lines = _summary(Report.model_validate(report)).splitlines()
    assert "dimensions: width 0.00 mm, height -0.03 mm (scale " in "\n".join(lines)
    # Inconclusive: its score (0) is no measurement, so the summary gives none.
    unmeasured = dict(report, verdict="inconclusive", score=0.0,
                      reasons=["Colour could not be measured: no card in the unit photo."])
    first = _summary(Report.model_validate(unmeasured)).splitlines()[0]
    assert first.startswith("verdict: INCONCLUSIVE") and "0/100" not in first
    assert "no score" in first
