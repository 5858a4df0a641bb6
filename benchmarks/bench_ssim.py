"""Time vision.measure.structure.structural_similarity against scikit-image's.

Both compute SSIM with the settings of Wang et al. (2004): Gaussian window sigma 1.5 (11 x 11),
K1 = 0.01, K2 = 0.03, population covariance. The requirement is a speed-up of at least 4x.

Usage::

    python benchmarks/bench_ssim.py [--repeats 15] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from skimage import data
from skimage.metrics import structural_similarity as skimage_ssim

# Runnable as a plain script from any directory, without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vision.measure.structure import structural_similarity  # noqa: E402

REQUIRED_SPEEDUP = 4.0
# Width x height of the registered images the pipeline compares (12 MP photos at 1/4 and 1/2).
SIZES: tuple[tuple[int, int], ...] = ((1008, 756), (2016, 1512))


def make_pair(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A natural uint8 greyscale image and a noisy, slightly blurred copy of it."""
    golden = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_CUBIC)
    golden = cv2.cvtColor(golden, cv2.COLOR_RGB2GRAY)
    rng = np.random.default_rng(seed)
    unit = cv2.GaussianBlur(golden, (0, 0), 0.8).astype(np.float32)
    unit += rng.normal(0.0, 6.0, size=unit.shape).astype(np.float32)
    return golden, np.clip(unit, 0, 255).astype(np.uint8)


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call allocations and OpenCV/scipy set-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(
    sizes: tuple[tuple[int, int], ...] = SIZES, repeats: int = 15, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Median run times of both SSIM implementations for each image size.

    Parameters
    ----------
    sizes : tuple of (width, height)
        Image sizes to time.
    repeats : int
        Timed runs per implementation and size, after one untimed warm-up run.
    seed : int
        Seed of the noise added to make the second image.

    Returns
    -------
    results : dict
        Keyed by ``"WxH"``; each value has ``ours_ms``, ``skimage_ms``, ``speedup``
        (skimage time / ours) and ``abs_mean_difference`` between the two mean SSIMs.
    """
    results: dict[str, dict[str, float]] = {}
    for width, height in sizes:
        im1, im2 = make_pair(width, height, seed)

        def ours(im1: np.ndarray = im1, im2: np.ndarray = im2) -> tuple[float, np.ndarray]:
            return structural_similarity(im1, im2, data_range=255)

        def reference(im1: np.ndarray = im1, im2: np.ndarray = im2) -> float:
            return skimage_ssim(
                im1,
                im2,
                data_range=255,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )

        ours_s = _median_seconds(ours, repeats)
        skimage_s = _median_seconds(reference, repeats)
        results[f"{width}x{height}"] = {
            "ours_ms": 1e3 * ours_s,
            "skimage_ms": 1e3 * skimage_s,
            "speedup": skimage_s / ours_s,
            "abs_mean_difference": abs(ours()[0] - float(reference())),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per case (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="cv2.setNumThreads (default: OpenCV's choice)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        cv2.setNumThreads(args.threads)

    results = run(repeats=args.repeats, seed=args.seed)
    print(
        f"SSIM, median of {args.repeats} runs, OpenCV {cv2.__version__} "
        f"with {cv2.getNumThreads()} threads"
    )
    print(f"{'size':>10} {'ours ms':>9} {'skimage ms':>11} {'speed-up':>9} {'|d mean|':>9}")
    for size, row in results.items():
        print(
            f"{size:>10} {row['ours_ms']:9.1f} {row['skimage_ms']:11.1f} "
            f"{row['speedup']:8.1f}x {row['abs_mean_difference']:9.1e}"
        )
    slow = [size for size, row in results.items() if row["speedup"] < REQUIRED_SPEEDUP]
    if slow:
        print(f"below the required {REQUIRED_SPEEDUP:g}x speed-up: {', '.join(slow)}")
        return 1
    print(f"all sizes meet the required {REQUIRED_SPEEDUP:g}x speed-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
