"""Time sealcheck on 12 MP phone photos, against a naive full-resolution baseline and the
decode floor, through the CLI, in batch and over HTTP: one table (issue 9, ``make bench``).

Pairs are synthetic 12 MP (4032 x 3024) phone photos from ``tests/helpers/scenes.py``: the same
flawless product photographed by a frontal golden camera and by a hand-held unit camera (any
rotation, tilt, zoom, other light), so every pair should pass. They are written as JPEG and
cached in ``bench-out/pairs/`` (generation takes seconds per pair; timing does not depend on it).

Measured (the CLI first, the naive baseline last; parts can be skipped for quick runs):

- in process, what the CLI does for a report: ``vision.pipeline.load_pair`` (both files at
  once, each through ``load_for_report``: 1/2 through the JPEG's DCT for 12 MP;
  ``--full-decode`` decodes every pixel instead), then
  ``vision.pipeline.compare_side_by_side`` (the golden's preparation in a second thread) with
  ``render_images=False``: end to end, the headline figure. Interleaved with it, the same
  decode + the sequential ``vision.pipeline.compare``, whose ``report.timings_ms`` give the
  per-stage breakdown. Median and p90; the glibc allocator is tuned first, as in every
  sealcheck process (``service.runtime.tune_allocator``; ``--default-allocator`` leaves it);
- the decode floor: ``cv2.imdecode`` of both JPEGs at full resolution, one after the other,
  from bytes already in memory (file reading excluded), and sealcheck's reduced decode of the
  same bytes for reference; timed between the in-process runs (a third run in their rotation),
  so that the ratio compares timings taken under the same conditions;
- ``sealcheck compare GOLDEN UNIT --json``: wall time including interpreter start, and its
  peak RSS (one compare in a fresh process; timed first, see :func:`time_cli`);
- peak RSS of this process (pairs are generated, and the naive baseline runs, in child
  processes so that they do not count);
- batch throughput of ``sealcheck rescore`` with 1 and 2 workers (``bench_rescore.py``'s runs:
  every pair listed ``--batch-repeat`` times, the whole command timed, best of
  ``--batch-rounds``);
- HTTP: a real ``sealcheck serve`` on loopback (``bench_service.py``'s server), one golden
  sealed, then ``--http-clients`` concurrent clients each POSTing ``--http-requests``
  inspections with the 12 MP unit JPEG: client wall p50/p99 and inspections per second;
- the naive baseline, :func:`naive_compare` (full resolution: SIFT + RANSAC, warp, scikit-image
  CIELAB + CIEDE2000 and SSIM), in a child process, ``--naive-runs`` times on each of
  ``--naive-pairs`` pairs: it takes tens of seconds per pair.

Targets are reported as met or not met; the exit status is 0 unless something crashes.

Usage::

    python benchmarks/bench_pipeline.py [--pairs 5] [--repeats 3] [--cli-runs 5] [--quick]
        [--no-cli] [--no-batch] [--no-http] [--no-naive] [--default-allocator] [--full-decode]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Runnable as a plain script from any directory: the synthetic scenes live in tests/helpers.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tests.helpers.scenes import PRODUCT_IMAGES, Camera, make_pair, random_phone_camera  # noqa: E402
from vision.decode import load_image  # noqa: E402
from vision.pipeline import (  # noqa: E402
    compare,
    compare_side_by_side,
    decode_reduction,
    load_for_report,
    load_pair,
)
from vision.spec import Spec  # noqa: E402

# Targets of issue 9 (2-core machine, medians).
END_TO_END_TARGET_MS = 450.0
"""Decode + compare_side_by_side of one 12 MP pair, in process."""
NAIVE_SPEEDUP_TARGET = 20.0
"""Naive full-resolution baseline / sealcheck, end to end."""
DECODE_FLOOR_TARGET = 4.0
"""sealcheck end to end / decoding both JPEGs at full resolution."""
PEAK_RSS_TARGET_MB = 1.2e9 / 2**20
"""1.2 GB for one compare, in MiB (the unit RSS is reported in)."""
CLI_TARGET_S = 1.2
"""Wall time allowed for one ``sealcheck compare`` of two 12 MP photos, process start included."""
BATCH_TARGET = 3.0
"""``sealcheck rescore`` pairs/s with 2 workers, the whole command."""
CALIBRATION_TARGET_MS = 120.0
"""Colour-card calibration of one 12 MP photo (the unit's "calibrate" stage: card detection on
the shared 2048 px copy, patch sampling, fit, correction of the analysis copies). The golden
photo's identical share is done once, inside prepare_golden."""

PHOTO_SIZE = (4032, 3024)  # width, height of a 12 MP phone photo
PX_PER_MM = 8.0  # table resolution at which the product is still sharp in a 12 MP photo
JPEG_QUALITY = 92
OUT_DIR = REPO / "bench-out"
# Bump when the generated content changes for the same parameters (e.g. scenes.py changes).
_GENERATOR_VERSION = 2  # 2: the card drawn with the chart model's patch geometry
# Order in which stages are printed; stages the pipeline adds later are appended after these.
_STAGE_ORDER = (
    "prepare_golden", "downscale", "calibrate", "register", "warp", "color", "structure",
    "defects", "render",
)


# --------------------------------------------------------------------------------------------
# Pairs


@dataclasses.dataclass(frozen=True)
class PairSpec:
    """Everything that determines a generated pair; its hash names the cache directory."""

    seed: int
    product: str
    width: int = PHOTO_SIZE[0]
    height: int = PHOTO_SIZE[1]
    px_per_mm: float = PX_PER_MM
    jpeg_quality: int = JPEG_QUALITY
    generator_version: int = _GENERATOR_VERSION

    @property
    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return f"{self.product}-seed{self.seed}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def pair_specs(count: int) -> list[PairSpec]:
    """`count` pairs cycling through the bundled products, one seed each."""
    return [PairSpec(seed=i, product=PRODUCT_IMAGES[i % len(PRODUCT_IMAGES)]) for i in range(count)]


def _generate(spec: PairSpec, directory: str) -> dict:
    """Render one pair into `directory` (runs in a worker process)."""
    golden_camera = Camera(width=spec.width, height=spec.height)
    rng = np.random.default_rng(spec.seed)
    unit_camera = random_phone_camera(rng, base=golden_camera)
    pair = make_pair(spec.product, golden_camera=golden_camera, unit_camera=unit_camera,
                     px_per_mm=spec.px_per_mm, seed=spec.seed)
    # Write to a temporary name first so an interrupted run never leaves a half-written cache.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=Path(directory).parent))
    tmp.chmod(0o755)  # mkdtemp's private 0700 is pointless for a shared cache
    params = [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]
    for name, rgb in (("golden.jpg", pair.golden), ("unit.jpg", pair.unit)):
        if not cv2.imwrite(str(tmp / name), np.ascontiguousarray(rgb[..., ::-1]), params):
            raise OSError(f"could not write {tmp / name}")
    meta = {
        "spec": dataclasses.asdict(spec),
        "unit_camera": dataclasses.asdict(unit_camera),
        "homography_unit_to_golden": pair.homography_unit_to_golden.tolist(),
        "description": pair.description,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return meta


def ensure_pairs(specs: list[PairSpec], cache: Path) -> list[Path]:
    """Directories holding golden.jpg/unit.jpg for `specs`, generating the missing ones.

    Generation runs in child processes: it peaks at ~1.4 GB per pair, which would otherwise
    swamp the pipeline's own peak RSS, and the children can work in parallel.
    """
    cache.mkdir(parents=True, exist_ok=True)
    directories = [cache / spec.key for spec in specs]
    missing = [(spec, d) for spec, d in zip(specs, directories, strict=True)
               if not all((d / name).is_file() for name in ("golden.jpg", "unit.jpg", "meta.json"))]
    if missing:
        workers = max(1, min(len(missing), os.cpu_count() or 1, 4))
        print(f"generating {len(missing)} pair(s) in {cache} ({workers} worker(s)) ...",
              flush=True)
        start = time.perf_counter()
        context = multiprocessing.get_context("spawn")  # no fork of a threaded OpenCV
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = [pool.submit(_generate, spec, str(d)) for spec, d in missing]
            for job in jobs:
                job.result()
        print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
    return directories


# --------------------------------------------------------------------------------------------
# Measurements


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def _peak_rss_mb(usage: resource.struct_rusage) -> float:
    # ru_maxrss is in kilobytes on Linux but in bytes on macOS.
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return usage.ru_maxrss * scale / 2**20


@dataclasses.dataclass
class DecodeResult:
    full_ms: list[float]  # cv2.imdecode of both JPEGs at full resolution
    reduced_ms: list[float]  # load_for_report of both (sealcheck's decode)


@dataclasses.dataclass
class InProcessResult:
    samples_ms: dict[str, list[float]]  # stage of the sequential compare -> one value per run
    side_by_side_ms: list[float]  # decode + compare_side_by_side, one value per run
    verdicts: list[tuple[str, str, str]]  # (pair, verdict, one-line detail)
    peak_rss_mb: float
    baseline_rss_mb: float
    decode: DecodeResult  # the decode floor, timed between the runs above


FULL_DECODE = False  # --full-decode: every pixel, as before reduced decoding


def _decode(golden_path: Path, unit_path: Path):
    """Both photos as the CLI decodes them for a report: at the reduced size that
    vision.pipeline.decode_reduction allows (1/2 for 12 MP), with the photos' own sizes."""
    if FULL_DECODE:
        golden, unit = load_image(golden_path), load_image(unit_path)
        return golden, unit, [(image.shape[1], image.shape[0]) for image in (golden, unit)]
    (golden, golden_size), (unit, unit_size) = (load_for_report(golden_path),
                                                load_for_report(unit_path))
    return golden, unit, [golden_size, unit_size]


def _run_once(golden_path: Path, unit_path: Path, spec: Spec):
    """Decode + the sequential `compare`: (report, decode ms, end-to-end ms)."""
    start = time.perf_counter()
    golden, unit, sizes = _decode(golden_path, unit_path)
    decoded = time.perf_counter()
    comparison = compare(golden, unit, spec, render_images=False,
                         golden_photo_size=sizes[0], unit_photo_size=sizes[1])
    end = time.perf_counter()
    return comparison.report, (decoded - start) * 1e3, (end - start) * 1e3


def _run_side_by_side(golden_path: Path, unit_path: Path, spec: Spec):
    """What `sealcheck compare GOLDEN UNIT --json` runs: both photos decoded at once
    (``load_pair``), then ``compare_side_by_side``: (report, end-to-end ms)."""
    start = time.perf_counter()
    (golden, golden_size), (unit, unit_size) = load_pair(golden_path, unit_path,
                                                         for_report=not FULL_DECODE)
    comparison = compare_side_by_side(golden, unit, spec, render_images=False,
                                      golden_photo_size=golden_size, unit_photo_size=unit_size)
    return comparison.report, (time.perf_counter() - start) * 1e3


def time_in_process(directories: list[Path], repeats: int) -> InProcessResult:
    """Both paths on every pair `repeats` times, interleaved, after one warm-up run of each,
    and the decode floor of the pair between them: the ratio to the floor then compares
    timings taken under the same conditions (this shared machine's speed drifts by 10-20 %
    within minutes, and the floor once moved from 85 to 125 ms between two runs)."""
    spec = Spec()  # the CLI's default: whole overlap, default tolerances
    baseline = _peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))
    # Warm-up: SIFT creation, FLANN, OpenCV thread pool and lazy imports happen on first use.
    first = (directories[0] / "golden.jpg", directories[0] / "unit.jpg")
    _run_once(*first, spec)
    _run_side_by_side(*first, spec)

    samples: dict[str, list[float]] = {}
    side_by_side: list[float] = []
    decode = DecodeResult([], [])
    verdicts = []
    kinds = ("sequential", "side_by_side", "floor")
    for directory in directories:
        paths = (directory / "golden.jpg", directory / "unit.jpg")
        data = [path.read_bytes() for path in paths]
        for repeat in range(repeats):
            # Rotate which run goes first, so that none always follows another.
            order = kinds[repeat % 3:] + kinds[:repeat % 3]
            for run in order:
                if run == "floor":
                    full_ms, reduced_ms = _time_decode(data, directory)
                    decode.full_ms.append(full_ms)
                    decode.reduced_ms.append(reduced_ms)
                elif run == "side_by_side":
                    parallel_report, total_ms = _run_side_by_side(*paths, spec)
                    side_by_side.append(total_ms)
                else:
                    report, decode_ms, total_ms = _run_once(*paths, spec)
                    stages = {"decode": decode_ms, **report.timings_ms}
                    # Whatever compare() does outside its stopwatch (report building, checks).
                    stages["untimed"] = total_ms - sum(stages.values())
                    stages["end_to_end"] = total_ms
                    for name, value in stages.items():
                        samples.setdefault(name, []).append(float(value))
            if repeat == 0:
                detail = _detail(report)
                if parallel_report.verdict != report.verdict:
                    detail += f" (compare_side_by_side: {parallel_report.verdict})"
                verdicts.append((directory.name, report.verdict, detail))
    peak = _peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))
    return InProcessResult(samples, side_by_side, verdicts, peak, baseline, decode)


def _detail(report) -> str:
    reg = report.registration
    if not reg.ok:
        return f"registration failed: {reg.reason}"
    parts = [f"{reg.inliers} inliers"]
    if report.color.delta_e00 is not None:
        parts.append(f"dE00 {report.color.delta_e00:.2f}")
    if report.structure.ssim is not None:
        parts.append(f"SSIM {report.structure.ssim:.3f}")
    parts.append(f"{len(report.defects.regions)} defect region(s)")
    return ", ".join(parts)


def _time_decode(data: list[bytes], directory: Path) -> tuple[float, float]:
    """Decoding both JPEGs of a pair and nothing else, from bytes already in memory:
    (ms at full resolution with ``cv2.imdecode``, ms with sealcheck's ``load_for_report``)."""
    buffers = [np.frombuffer(jpeg, np.uint8) for jpeg in data]
    start = time.perf_counter()
    for buffer in buffers:
        if cv2.imdecode(buffer, cv2.IMREAD_COLOR) is None:
            raise OSError(f"cv2.imdecode failed on a JPEG of {directory}")
    middle = time.perf_counter()
    for jpeg in data:
        load_for_report(jpeg)
    end = time.perf_counter()
    return (middle - start) * 1e3, (end - middle) * 1e3


@dataclasses.dataclass
class CliResult:
    wall_s: list[float]
    peak_rss_mb: float
    verdict: str
    exit_code: int
    parent_rss_mb: float  # this process's peak RSS when it started the runs: see time_cli


def time_cli(directory: Path, runs: int) -> CliResult:
    """Wall time of `sealcheck compare GOLDEN UNIT --json`, interpreter start included, and
    its peak RSS.

    Call it while this process is small: on Linux a child's ru_maxrss starts at its parent's
    peak RSS (exec keeps the larger of the old and the new memory's high-water mark, and
    subprocess's vfork shares the parent's memory), so a child of a big process reports at
    least the parent's peak, whatever it used itself.
    """
    parent_rss = _peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))
    executable = Path(sys.executable).with_name("sealcheck")
    command = [str(executable) if executable.exists() else "sealcheck", "compare",
               str(directory / "golden.jpg"), str(directory / "unit.jpg"), "--json"]
    wall, peaks = [], []
    verdict, exit_code = "?", -1
    with tempfile.TemporaryFile("w+") as stdout:
        for _ in range(runs):
            stdout.seek(0)
            stdout.truncate()
            start = time.perf_counter()
            process = subprocess.Popen(command, stdout=stdout, cwd=REPO)  # stderr: ours
            # wait4 instead of wait: it also returns the child's own peak RSS.
            _, status, usage = os.wait4(process.pid, 0)
            wall.append(time.perf_counter() - start)
            process.returncode = exit_code = os.waitstatus_to_exitcode(status)
            peaks.append(_peak_rss_mb(usage))
        stdout.seek(0)
        try:
            verdict = json.load(stdout)["verdict"]
        except (ValueError, KeyError):
            verdict = "no JSON report"
    return CliResult(wall, max(peaks), verdict, exit_code, parent_rss)


# The naive baseline ---------------------------------------------------------------------------

NAIVE_STEPS = ("decode", "sift", "match", "ransac", "warp", "rgb2lab", "ciede2000", "ssim")
"""The naive baseline's steps, in order; :attr:`NaiveResult.timings_ms` has one entry each."""


@dataclasses.dataclass
class NaiveResult:
    """What :func:`naive_compare` measured, and how long each step took."""

    homography_unit_to_golden: np.ndarray | None  # None when too few matches
    matches: int  # after the ratio test
    inliers: int  # of the RANSAC homography
    delta_e00: float  # mean CIEDE2000 over the golden pixels the warped unit covers
    ssim: float  # mean SSIM over the same pixels
    timings_ms: dict[str, float]

    @property
    def total_ms(self) -> float:
        return sum(self.timings_ms.values())


def naive_compare(golden_path: str | os.PathLike[str], unit_path: str | os.PathLike[str], *,
                  ratio: float = 0.75, ransac_threshold_px: float = 5.0) -> NaiveResult:
    """Register and compare two photos the textbook way, every step at full resolution.

    The baseline sealcheck is measured against: what a developer would write first with
    OpenCV and scikit-image, doing the steps sealcheck does (register, compare colour,
    compare structure) without its reduced decode, working sizes or shared copies.

    Parameters
    ----------
    golden_path, unit_path : path-like
        The two photos; decoded in full with ``cv2.imread``.
    ratio : float, optional
        Lowe's ratio test: a match is kept when its distance is below `ratio` times the
        second-best's.
    ransac_threshold_px : float, optional
        RANSAC's reprojection threshold in golden pixels (``cv2.findHomography``).

    Returns
    -------
    NaiveResult
        The homography (unit to golden), match and inlier counts, the mean CIEDE2000 and mean
        SSIM over the overlap, and each step's wall time in ``NAIVE_STEPS`` order. Without at
        least 4 matches there is no homography, and Delta-E and SSIM are nan.

    Notes
    -----
    Steps: SIFT (``cv2.SIFT_create()`` defaults) on the full-resolution grey of both photos;
    FLANN k-d tree matching (5 trees, 50 checks, k=2) with the ratio test; RANSAC homography;
    ``cv2.warpPerspective`` of the unit onto the golden (bilinear); ``skimage.color.rgb2lab``
    of both (D65, 2 degrees) and ``skimage.color.deltaE_ciede2000`` per pixel; and
    ``skimage.metrics.structural_similarity`` on the grey images with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255``, the
    settings that reproduce Wang et al. (2004). Means are taken over the golden pixels that
    the warped unit covers, so the black border of the warp does not count.

    References
    ----------
    .. [1] D. G. Lowe, "Distinctive image features from scale-invariant keypoints",
       International Journal of Computer Vision 60(2), 91-110, 2004.
       :doi:`10.1023/B:VISI.0000029664.99615.94`
    .. [2] M. A. Fischler and R. C. Bolles, "Random sample consensus: a paradigm for model
       fitting with applications to image analysis and automated cartography",
       Communications of the ACM 24(6), 381-395, 1981. :doi:`10.1145/358669.358692`
    .. [3] G. Sharma, W. Wu and E. N. Dalal, "The CIEDE2000 color-difference formula:
       implementation notes, supplementary test data, and mathematical observations",
       Color Research & Application 30(1), 21-30, 2005. :doi:`10.1002/col.20070`
    .. [4] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Transactions on
       Image Processing 13(4), 600-612, 2004. :doi:`10.1109/TIP.2003.819861`
    """
    from skimage.color import deltaE_ciede2000, rgb2lab
    from skimage.metrics import structural_similarity

    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(step: str) -> None:
        now = time.perf_counter()
        timings[step] = (now - clock[0]) * 1e3
        clock[0] = now

    golden_bgr = cv2.imread(os.fspath(golden_path), cv2.IMREAD_COLOR)
    unit_bgr = cv2.imread(os.fspath(unit_path), cv2.IMREAD_COLOR)
    for path, image in ((golden_path, golden_bgr), (unit_path, unit_bgr)):
        if image is None:
            raise OSError(f"cv2.imread could not decode {path}")
    lap("decode")

    golden_grey = cv2.cvtColor(golden_bgr, cv2.COLOR_BGR2GRAY)
    unit_grey = cv2.cvtColor(unit_bgr, cv2.COLOR_BGR2GRAY)
    sift = cv2.SIFT_create()
    golden_keypoints, golden_descriptors = sift.detectAndCompute(golden_grey, None)
    unit_keypoints, unit_descriptors = sift.detectAndCompute(unit_grey, None)
    lap("sift")

    good = []
    if (golden_descriptors is not None and unit_descriptors is not None
            and len(golden_descriptors) >= 2):
        matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 5}, {"checks": 50})
        for pair in matcher.knnMatch(unit_descriptors, golden_descriptors, k=2):
            if len(pair) == 2 and pair[0].distance < ratio * pair[1].distance:
                good.append(pair[0])
    lap("match")

    H_unit_to_golden, inliers = None, 0
    if len(good) >= 4:
        unit_points = np.float32([unit_keypoints[m.queryIdx].pt for m in good])
        golden_points = np.float32([golden_keypoints[m.trainIdx].pt for m in good])
        H_unit_to_golden, inlier_mask = cv2.findHomography(
            unit_points, golden_points, cv2.RANSAC, ransac_threshold_px)
        inliers = 0 if inlier_mask is None else int(inlier_mask.sum())
    lap("ransac")
    if H_unit_to_golden is None:
        return NaiveResult(None, len(good), inliers, float("nan"), float("nan"), timings)

    size = (golden_bgr.shape[1], golden_bgr.shape[0])
    warped_bgr = cv2.warpPerspective(unit_bgr, H_unit_to_golden, size, flags=cv2.INTER_LINEAR)
    overlap = cv2.warpPerspective(np.ones(unit_grey.shape, np.uint8), H_unit_to_golden, size,
                                  flags=cv2.INTER_NEAREST) > 0
    lap("warp")

    golden_lab = rgb2lab(golden_bgr[..., ::-1])
    warped_lab = rgb2lab(warped_bgr[..., ::-1])
    lap("rgb2lab")

    delta_e00 = float(deltaE_ciede2000(golden_lab, warped_lab)[overlap].mean())
    lap("ciede2000")

    warped_grey = cv2.cvtColor(warped_bgr, cv2.COLOR_BGR2GRAY)
    _, ssim_map = structural_similarity(
        golden_grey, warped_grey, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255, full=True)
    ssim = float(ssim_map[overlap].mean())
    lap("ssim")
    return NaiveResult(H_unit_to_golden, len(good), inliers, delta_e00, ssim, timings)


def _naive_child_start(tune: bool) -> None:
    if tune:  # the same allocator as the sealcheck side, so that the ratio compares like
        from service.runtime import tune_allocator

        tune_allocator()


def _naive_in_child(golden_path: str, unit_path: str) -> tuple[NaiveResult, float]:
    result = naive_compare(golden_path, unit_path)
    return result, _peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))


@dataclasses.dataclass
class NaiveTiming:
    results: list[tuple[str, NaiveResult]]  # (pair, result), one per run
    runs_per_pair: int
    peak_rss_mb: float  # of the child process that ran them

    @property
    def total_ms(self) -> list[float]:
        return [result.total_ms for _, result in self.results]


def time_naive(directories: list[Path], runs: int, *, tune_allocator: bool) -> NaiveTiming:
    """:func:`naive_compare` `runs` times on each pair, in one child process (its gigabytes
    of float64 images must not count in this process's peak RSS)."""
    context = multiprocessing.get_context("spawn")
    results, peak = [], 0.0
    with concurrent.futures.ProcessPoolExecutor(
            1, mp_context=context, initializer=_naive_child_start,
            initargs=(tune_allocator,)) as pool:
        for directory in directories:
            for _ in range(runs):
                job = pool.submit(_naive_in_child, str(directory / "golden.jpg"),
                                  str(directory / "unit.jpg"))
                result, peak_mb = job.result()
                peak = max(peak, peak_mb)
                results.append((directory.name, result))
                print(f"  {directory.name:<44} {result.total_ms / 1e3:6.1f} s, "
                      f"{result.inliers} of {result.matches} matches inliers, "
                      f"dE00 {result.delta_e00:.2f}, SSIM {result.ssim:.3f}", flush=True)
    return NaiveTiming(results, runs, peak)


# Batch and HTTP ----------------------------------------------------------------------------


def time_batch(pairs: int, repeat: int, rounds: int, cache: Path) -> dict[str, dict]:
    """`sealcheck rescore` with 1 and 2 workers (bench_rescore.py's runs): the best round of
    each configuration, keyed by its label ("1 worker", "2 workers")."""
    from benchmarks.bench_rescore import CONFIGS, best_rows, throughput

    configs = tuple(config for config in CONFIGS if config[0] in ("1 worker", "2 workers"))
    return best_rows(throughput(pairs, repeat, rounds, configs=configs, cache=cache))


@dataclasses.dataclass
class HttpResult:
    clients: int
    answered_ms: list[float]  # client wall time of each request answered 201
    waited_ms: list[float]  # from an inspection's first attempt to its 201, back-off included
    busy: int  # attempts answered 503 (the pipeline queue was full)
    errors: list[str]
    wall_s: float  # the whole concurrent phase
    verdicts: dict[str, int]


def time_http(directory: Path, clients: int, per_client: int) -> HttpResult:
    """`clients` threads, each POSTing `per_client` inspections of the pair's unit JPEG against
    its sealed golden on a fresh `sealcheck serve` (bench_service.py's), all started at once.

    The server's queue is sized for the clients (``SEALCHECK_QUEUE_SIZE``); a 503 (its
    back-pressure) would make the client wait min(Retry-After, 1 s) and try again, as in
    benchmarks/load_test.py. Any other answer than 201 is an error.
    """
    import httpx

    from benchmarks._reliability import free_port
    from benchmarks.bench_service import inspect_unit, seal_golden, serving

    golden = (directory / "golden.jpg").read_bytes()
    unit = (directory / "unit.jpg").read_bytes()
    lock = threading.Lock()
    answered, waited, errors = [], [], []
    verdicts: dict[str, int] = {}
    busy = 0

    with (tempfile.TemporaryDirectory(prefix="sealcheck-bench-") as data_dir,
          # Deployed for this load: a queue that holds every client's request, so the figure
          # is the service's latency, not the default queue's (2 x workers) 503 back-pressure.
          serving(free_port(), Path(data_dir),
                  {"SEALCHECK_QUEUE_SIZE": str(clients)}) as (base, key)):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, timeout=300, headers=headers) as client:
            golden_id, _ = seal_golden(client, golden)
            inspect_unit(client, golden_id, unit).raise_for_status()  # warm-up, not counted
        barrier = threading.Barrier(clients + 1, timeout=120)  # all start together

        def run_client() -> None:
            nonlocal busy
            with httpx.Client(base_url=base, timeout=300, headers=headers) as client:
                barrier.wait()
                for _ in range(per_client):
                    first = time.perf_counter()
                    while True:
                        start = time.perf_counter()
                        try:
                            response = inspect_unit(client, golden_id, unit)
                        except httpx.HTTPError as exc:
                            with lock:
                                errors.append(f"{type(exc).__name__}: {exc}")
                            break
                        end = time.perf_counter()
                        if response.status_code == 503:
                            with lock:
                                busy += 1
                            time.sleep(min(float(response.headers.get("retry-after", 1)), 1.0))
                            continue
                        with lock:
                            if response.status_code == 201:
                                answered.append((end - start) * 1e3)
                                waited.append((end - first) * 1e3)
                                verdict = response.json()["verdict"]
                                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                            else:
                                errors.append(f"{response.status_code} {response.text[:200]}")
                        break

        threads = [threading.Thread(target=run_client, name=f"bench-client-{n}")
                   for n in range(clients)]
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    return HttpResult(clients, answered, waited, busy, errors, wall, verdicts)


# --------------------------------------------------------------------------------------------
# Output


@dataclasses.dataclass(frozen=True)
class Figure:
    """One row of the figures table: a value, and the target it must meet if it has one."""

    name: str
    value: float
    text: str  # the value as printed
    target: float | None = None
    unit: str = ""  # of the target, as printed after it ("ms", "x", ...)
    at_most: bool = True  # the target is an upper bound; False: a lower bound
    target_text: str | None = None  # the target as printed, when not `target` and `unit`

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.at_most else self.value >= self.target

    def row(self) -> str:
        if self.target is None:
            return f"| {self.name} | {self.text} | | |"
        space = "" if self.unit in ("", "x") else " "
        target = (f"{'<=' if self.at_most else '>='} "
                  f"{self.target_text or f'{self.target:g}{space}{self.unit}'}")
        return f"| {self.name} | {self.text} | {target} | {'met' if self.met else '**not met**'} |"


@dataclasses.dataclass
class BenchResults:
    """Everything one run measured; the parts that were skipped are None."""

    n_pairs: int
    repeats: int
    inproc: InProcessResult
    decode: DecodeResult
    cli: CliResult | None = None
    naive: NaiveTiming | None = None
    batch: dict[str, dict] | None = None
    batch_settings: str = ""  # e.g. ", best of 2 runs", for the batch rows' names
    http: HttpResult | None = None
    allocator_tuned: bool = True
    measured_at: str = ""


def _ordered_stages(samples: dict[str, list[float]]) -> list[str]:
    known = [s for s in ("decode", *_STAGE_ORDER) if s in samples]
    extra = [s for s in samples if s not in known and s not in ("untimed", "end_to_end")]
    return [*known, *extra, *(s for s in ("untimed", "end_to_end") if s in samples)]


def figures(results: BenchResults) -> list[Figure]:
    """The figures table's rows, targets included."""
    inproc = results.inproc
    end_to_end = statistics.median(inproc.side_by_side_ms)
    n = len(inproc.side_by_side_ms)
    rows = [Figure(f"**end to end in process**: decode + `compare_side_by_side` (the CLI's "
                   f"path), median of {n} (p90 {_percentile(inproc.side_by_side_ms, 90):.0f} "
                   f"ms)", end_to_end, f"**{end_to_end:.0f} ms**", END_TO_END_TARGET_MS, "ms")]
    naive = results.naive
    if naive is not None:
        naive_ms = statistics.median(naive.total_ms)
        pairs = len({name for name, _ in naive.results})
        rows += [
            Figure(f"naive baseline at full resolution (`naive_compare`), median of "
                   f"{len(naive.total_ms)} ({naive.runs_per_pair} run(s) on each of {pairs} "
                   f"pair(s), no warm-up; peak RSS {naive.peak_rss_mb:.0f} MiB)",
                   naive_ms, f"{naive_ms:.0f} ms"),
            Figure("naive baseline / sealcheck end to end", naive_ms / end_to_end,
                   f"{naive_ms / end_to_end:.1f}x", NAIVE_SPEEDUP_TARGET, "x", at_most=False),
        ]
    floor = statistics.median(results.decode.full_ms)
    reduced = statistics.median(results.decode.reduced_ms)
    rows += [
        Figure("decode floor: `cv2.imdecode` of both JPEGs at full resolution, one after the "
               "other, bytes already in memory, timed between the runs above, median", floor,
               f"{floor:.0f} ms"),
        Figure("sealcheck end to end / decode floor", end_to_end / floor,
               f"{end_to_end / floor:.2f}x", DECODE_FLOOR_TARGET, "x"),
        Figure("for reference: sealcheck's reduced decode of both (`load_for_report`, "
               f"1/{decode_reduction(PHOTO_SIZE)} through the DCT), "
               "bytes in memory, median", reduced, f"{reduced:.0f} ms"),
    ]
    cli = results.cli
    if cli is not None:
        rows.append(Figure(
            f"peak RSS, one `sealcheck compare --json` (a fresh process, started while this "
            f"one was at {cli.parent_rss_mb:.0f} MiB)", cli.peak_rss_mb,
            f"{cli.peak_rss_mb:.0f} MiB", PEAK_RSS_TARGET_MB, target_text="1.2 GB"))
    rows.append(Figure(
        f"peak RSS, this process after {2 * n + 2} in-process compares (after imports: "
        f"{inproc.baseline_rss_mb:.0f} MiB)", inproc.peak_rss_mb,
        f"{inproc.peak_rss_mb:.0f} MiB", None if cli else PEAK_RSS_TARGET_MB,
        target_text="1.2 GB"))
    if cli is not None:
        median_s = statistics.median(cli.wall_s)
        rows.append(Figure(
            f"`sealcheck compare --json`, process start included, median of {len(cli.wall_s)} "
            f"(min {min(cli.wall_s):.2f}, max {max(cli.wall_s):.2f} s)", median_s,
            f"{median_s:.2f} s", CLI_TARGET_S, "s"))
    if "calibrate" in inproc.samples_ms:
        calibrate = statistics.median(inproc.samples_ms["calibrate"])
        rows.append(Figure("colour-card calibration per photo (`calibrate` stage), median",
                           calibrate, f"{calibrate:.0f} ms", CALIBRATION_TARGET_MS, "ms"))
    for label, row in (results.batch or {}).items():
        rows.append(Figure(
            f"batch `sealcheck rescore`, {label}, {row['items']} pairs: whole command"
            f"{results.batch_settings} (steady state: first result to last)",
            row["pairs_per_s"], f"{row['pairs_per_s']:.2f} pairs/s "
            f"({row['steady_pairs_per_s'] or 0:.2f})",
            BATCH_TARGET if row["workers"] == 2 else None, "pairs/s", at_most=False))
    http = results.http
    if http is not None:
        if http.answered_ms:
            p50, p99 = (_percentile(http.answered_ms, q) for q in (50, 99))
            rows.append(Figure(
                f"HTTP inspection, {http.clients} concurrent clients on loopback, 12 MP unit "
                f"upload: client wall p50 / p99 of {len(http.answered_ms)} answered",
                p50, f"{p50:.0f} / {p99:.0f} ms"))
            w50, w99 = (_percentile(http.waited_ms, q) for q in (50, 99))
            rows.append(Figure(
                f"HTTP: {http.busy} attempt(s) answered 503 (queue full), retried after "
                "<= 1 s; p50 / p99 from first attempt to answer", w50,
                f"{w50:.0f} / {w99:.0f} ms"))
        rate = len(http.answered_ms) / http.wall_s
        rows.append(Figure(
            f"HTTP throughput, {http.clients} clients ({len(http.errors)} error(s))", rate,
            f"{rate:.2f} inspections/s"))
    return rows


def markdown_table(results: BenchResults) -> str:
    """The results as a markdown section that can be pasted into the README."""
    inproc = results.inproc
    n = len(inproc.samples_ms["end_to_end"])
    allocator = ("glibc allocator tuned as in every sealcheck process "
                 "(`service.runtime.tune_allocator`)" if results.allocator_tuned
                 else "default glibc allocator (`--default-allocator`)")
    decode = "full decode (`--full-decode`)" if FULL_DECODE else "reduced decode"
    lines = [
        f"Measured {results.measured_at}: {results.n_pairs} synthetic 12 MP "
        f"({PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}) JPEG pairs, {results.repeats} run(s) of each path "
        f"per pair after one warm-up ({n} samples each); {platform.machine()}, "
        f"{os.cpu_count()} CPU(s), OpenCV {cv2.__version__} with {cv2.getNumThreads()} "
        f"thread(s), Python {platform.python_version()}; {allocator}; {decode}.",
        "",
        "| in process: stage of the sequential `compare` | median ms | p90 ms | share |",
        "|---|---:|---:|---:|",
    ]
    total = statistics.median(inproc.samples_ms["end_to_end"])
    for stage in _ordered_stages(inproc.samples_ms):
        values = inproc.samples_ms[stage]
        median = statistics.median(values)
        name = ("end to end: decode + sequential `compare`" if stage == "end_to_end"
                else stage)
        share = "" if stage == "end_to_end" else f"{100 * median / total:.0f} %"
        lines.append(f"| {name} | {median:.0f} | {_percentile(values, 90):.0f} | {share} |")
    side = inproc.side_by_side_ms
    lines.append(f"| **end to end: decode + `compare_side_by_side` (the CLI's path)** | "
                 f"**{statistics.median(side):.0f}** | {_percentile(side, 90):.0f} | |")
    if results.naive is not None:
        lines += ["", "| naive baseline step, full resolution | median ms | p90 ms |",
                  "|---|---:|---:|"]
        labels = {"decode": "decode both (`cv2.imread`)", "sift": "SIFT on both greys",
                  "match": "FLANN matching + ratio test", "ransac": "RANSAC homography",
                  "warp": "`warpPerspective` of the unit", "rgb2lab": "`rgb2lab` of both",
                  "ciede2000": "`deltaE_ciede2000` per pixel + mean",
                  "ssim": "`structural_similarity` (Gaussian, sigma 1.5)"}
        for step in NAIVE_STEPS:
            values = [r.timings_ms[step] for _, r in results.naive.results
                      if step in r.timings_ms]
            if values:
                lines.append(f"| {labels[step]} | {statistics.median(values):.0f} | "
                             f"{_percentile(values, 90):.0f} |")
        totals = results.naive.total_ms
        lines.append(f"| **end to end** | **{statistics.median(totals):.0f}** | "
                     f"{_percentile(totals, 90):.0f} |")
    lines += ["", "| figure | value | target | result |", "|---|---:|---|---|"]
    lines += [figure.row() for figure in figures(results)]
    return "\n".join(lines)


class _OtherLoad:
    """How many CPUs other processes kept busy while we timed: they inflate every timing.

    System busy time from /proc/stat minus this process's and its children's own CPU time
    (the CLI runs, batch jobs, the server, the naive baseline's process); None where /proc/stat
    does not exist (macOS, Windows).
    """

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        busy_s = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # - idle, iowait
        own = os.times()
        own_s = own.user + own.system + own.children_user + own.children_system
        return time.perf_counter(), busy_s, own_s

    def busy_cpus(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        others_s = (end[1] - self._start[1]) - (end[2] - self._start[2])
        return max(0.0, others_s / max(wall, 1e-9))


def _load_warning(busy_cpus: float | None) -> str | None:
    if busy_cpus is None or busy_cpus < 0.25:
        return None
    return (f"other processes kept {busy_cpus:.1f} of {os.cpu_count()} CPUs busy during the "
            "measurements; these timings are likely inflated.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5, help="number of photo pairs (default 5)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed in-process runs of each path per pair, after one warm-up "
                             "(default 3)")
    parser.add_argument("--cli-runs", type=int, default=5,
                        help="timed `sealcheck compare` runs, median reported (default 5)")
    parser.add_argument("--naive-pairs", type=int, default=None,
                        help="pairs the naive baseline runs on (default: all of --pairs)")
    parser.add_argument("--naive-runs", type=int, default=1,
                        help="naive baseline runs per pair (default 1; tens of seconds each)")
    parser.add_argument("--batch-repeat", type=int, default=24,
                        help="times each pair is listed in the batch manifest (default 24: "
                        "120 items, so that start-up weighs little, as in real jobs; see "
                        "bench_rescore.py)")
    parser.add_argument("--batch-rounds", type=int, default=2,
                        help="runs of each batch configuration; the best counts (default 2)")
    parser.add_argument("--http-clients", type=int, default=8,
                        help="concurrent HTTP clients (default 8)")
    parser.add_argument("--http-requests", type=int, default=6,
                        help="inspections each HTTP client sends (default 6)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2 pairs, 1 repeat, 2 CLI runs, the naive baseline "
                             "on 1 pair, 1 small batch round, 1 request per HTTP client")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI timing")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--no-batch", action="store_true", help="skip `sealcheck rescore`")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP service")
    parser.add_argument("--out", type=Path, default=OUT_DIR,
                        help="pair cache and bench.md go here (default bench-out/)")
    parser.add_argument("--no-write", action="store_true", help="do not write bench.md")
    parser.add_argument("--full-decode", action="store_true",
                        help="decode every pixel in process (the path before reduced decoding)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="do not tune glibc's allocator in process (sealcheck's own "
                             "processes always do; see service/runtime.py)")
    args = parser.parse_args(argv)
    global FULL_DECODE
    FULL_DECODE = args.full_decode
    if args.quick:
        args.pairs, args.repeats, args.cli_runs = 2, 1, 2
        args.naive_pairs, args.batch_repeat, args.batch_rounds = 1, 2, 1
        args.http_requests = 1
    args.naive_pairs = min(args.pairs, args.naive_pairs or args.pairs)
    counts = ("pairs", "repeats", "cli_runs", "naive_pairs", "naive_runs", "batch_repeat",
              "batch_rounds", "http_clients", "http_requests")
    if any(getattr(args, name) < 1 for name in counts):
        parser.error(f"{', '.join('--' + name.replace('_', '-') for name in counts)} must be "
                     "at least 1")
    tuned = False
    if not args.default_allocator:
        from service.runtime import tune_allocator

        tuned = tune_allocator()
    measured_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")

    directories = ensure_pairs(pair_specs(args.pairs), args.out / "pairs")
    other_load = _OtherLoad()  # started after generation, whose workers are our children

    cli = None
    if not args.no_cli:  # first, while this process is small (see time_cli)
        print(f"CLI: `sealcheck compare --json` x {args.cli_runs} on {directories[0].name} ...",
              flush=True)
        cli = time_cli(directories[0], args.cli_runs)
        print(f"  verdict {cli.verdict}, exit code {cli.exit_code}, "
              f"runs: {', '.join(f'{s:.2f}' for s in cli.wall_s)} s\n")

    print(f"in process: {args.pairs} pair(s) x {args.repeats} run(s) of each path after 1 "
          f"warm-up ({'tuned' if tuned else 'default'} allocator) ...", flush=True)
    inproc = time_in_process(directories, args.repeats)
    print("\nverdicts (identical content, so each should be 'pass'):")
    for name, verdict, detail in inproc.verdicts:
        print(f"  {name:<44} {verdict:<12} {detail}")
    results = BenchResults(args.pairs, args.repeats, inproc, inproc.decode, cli=cli,
                           allocator_tuned=tuned, measured_at=measured_at)

    if not args.no_batch:
        print(f"\nbatch: `sealcheck rescore`, {args.pairs} pair(s) x {args.batch_repeat}, "
              f"{args.batch_rounds} round(s) ...", flush=True)
        results.batch = time_batch(args.pairs, args.batch_repeat, args.batch_rounds,
                                   args.out / "pairs")
        results.batch_settings = (f", best of {args.batch_rounds} runs"
                                  if args.batch_rounds > 1 else "")

    if not args.no_http:
        print(f"\nHTTP: {args.http_clients} clients x {args.http_requests} inspection(s) on "
              f"{directories[0].name} ...", flush=True)
        http = results.http = time_http(directories[0], args.http_clients, args.http_requests)
        print(f"  {len(http.answered_ms)} answered in {http.wall_s:.1f} s, verdicts "
              f"{http.verdicts}, {http.busy} busy (503), {len(http.errors)} error(s)"
              + "".join(f"\n    {error}" for error in http.errors[:5]))

    if not args.no_naive:
        print(f"\nnaive baseline: {args.naive_runs} run(s) on each of {args.naive_pairs} "
              "pair(s), in a child process ...", flush=True)
        results.naive = time_naive(directories[:args.naive_pairs], args.naive_runs,
                                   tune_allocator=tuned)

    table = markdown_table(results)
    warning = _load_warning(other_load.busy_cpus())
    if warning:
        table += f"\n\nNote: {warning}"
    print("\n" + table)
    if not args.no_write:
        path = args.out / "bench.md"
        path.write_text(table + "\n")
        print(f"\n(written to {path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
