"""The naive baseline bench_pipeline.py times sealcheck against: register and compare two photos
the textbook way, every step at full resolution (:func:`naive_compare`), and its timing in a
child process (:func:`time_naive`)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import resource
import time
from pathlib import Path

import cv2
import numpy as np

from testkit.measure import peak_rss_mb

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
    return result, peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))


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
