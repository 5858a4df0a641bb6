"""Time sealcheck on phone-sized photos: per pipeline stage, end to end, and through the CLI.

Pairs are synthetic 12 MP (4032 x 3024) phone photos from ``tests/helpers/scenes.py``: the same
flawless product photographed by a frontal golden camera and by a hand-held unit camera (any
rotation, tilt, zoom, other light), so every pair should pass. They are written as JPEG and
cached in ``bench-out/pairs/`` (generation takes seconds per pair; timing does not depend on it).

Measured:

- in process, what the CLI does for a report: ``vision.decode.load_image`` of both files at
  the reduction ``vision.pipeline.decode_reduction`` allows (1/2 through the JPEG's DCT for
  12 MP; ``--full-decode`` decodes every pixel instead), then ``vision.pipeline.compare`` with
  ``render_images=False`` (the golden is *not* prepared in advance, as in the CLI); median and
  p90 per stage of ``report.timings_ms``, of decoding, and end to end;
- peak RSS of this process (pairs are generated in child processes so that they do not count);
- ``sealcheck compare GOLDEN UNIT --json`` wall time including interpreter start, against the
  :data:`CLI_TARGET_S` target, and its peak RSS.

Targets are reported as met or not met; the exit status is 0 unless something crashes.

Usage::

    python benchmarks/bench_pipeline.py [--pairs 5] [--repeats 3] [--cli-runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
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
import time
from pathlib import Path

# Runnable as a plain script from any directory: the synthetic scenes live in tests/helpers.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tests.helpers.scenes import PRODUCT_IMAGES, Camera, make_pair, random_phone_camera  # noqa: E402
from vision.decode import load_image  # noqa: E402
from vision.pipeline import compare, load_for_report  # noqa: E402
from vision.spec import Spec  # noqa: E402

CLI_TARGET_S = 1.5
# Colour-card calibration of one 12 MP photo (the unit's "calibrate" stage: card detection on
# the shared 2048 px copy, patch sampling, fit, correction of the analysis copies). The golden
# photo's identical share is done once, inside prepare_golden.
CALIBRATION_TARGET_MS = 120.0
"""Wall time allowed for one ``sealcheck compare`` of two 12 MP photos, process start included."""

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
class InProcessResult:
    samples_ms: dict[str, list[float]]  # stage -> one value per timed run
    verdicts: list[tuple[str, str, str]]  # (pair, verdict, one-line detail)
    peak_rss_mb: float
    baseline_rss_mb: float


FULL_DECODE = False  # --full-decode: every pixel, as before reduced decoding


def _run_once(golden_path: Path, unit_path: Path, spec: Spec):
    """What `sealcheck compare` does for a report: JPEGs decoded at the reduced size that
    vision.pipeline.decode_reduction allows (1/2 for 12 MP), positions in the photos' pixels."""
    start = time.perf_counter()
    if FULL_DECODE:
        golden, unit = load_image(golden_path), load_image(unit_path)
        sizes = [(image.shape[1], image.shape[0]) for image in (golden, unit)]
    else:
        (golden, golden_size), (unit, unit_size) = (load_for_report(golden_path),
                                                    load_for_report(unit_path))
        sizes = [golden_size, unit_size]
    decoded = time.perf_counter()
    comparison = compare(golden, unit, spec, render_images=False,
                         golden_photo_size=sizes[0], unit_photo_size=sizes[1])
    end = time.perf_counter()
    return comparison.report, (decoded - start) * 1e3, (end - start) * 1e3


def time_in_process(directories: list[Path], repeats: int) -> InProcessResult:
    """Decode + compare every pair `repeats` times after one warm-up run."""
    spec = Spec()  # the CLI's default: whole overlap, default tolerances
    baseline = _peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))
    # Warm-up: SIFT creation, FLANN, OpenCV thread pool and lazy imports happen on first use.
    _run_once(directories[0] / "golden.jpg", directories[0] / "unit.jpg", spec)

    samples: dict[str, list[float]] = {}
    verdicts = []
    for directory in directories:
        for repeat in range(repeats):
            report, decode_ms, total_ms = _run_once(directory / "golden.jpg",
                                                    directory / "unit.jpg", spec)
            stages = {"decode": decode_ms, **report.timings_ms}
            # Whatever compare() does outside its stopwatch (report building, checks).
            stages["untimed"] = total_ms - sum(stages.values())
            stages["end_to_end"] = total_ms
            for name, value in stages.items():
                samples.setdefault(name, []).append(float(value))
            if repeat == 0:
                verdicts.append((directory.name, report.verdict, _detail(report)))
    peak = _peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))
    return InProcessResult(samples, verdicts, peak, baseline)


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


@dataclasses.dataclass
class CliResult:
    wall_s: list[float]
    peak_rss_mb: float
    verdict: str
    exit_code: int


def time_cli(directory: Path, runs: int) -> CliResult:
    """Wall time of `sealcheck compare GOLDEN UNIT --json`, interpreter start included."""
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
    return CliResult(wall, max(peaks), verdict, exit_code)


# --------------------------------------------------------------------------------------------
# Output


def _ordered_stages(samples: dict[str, list[float]]) -> list[str]:
    known = [s for s in ("decode", *_STAGE_ORDER) if s in samples]
    extra = [s for s in samples if s not in known and s not in ("untimed", "end_to_end")]
    return [*known, *extra, "untimed", "end_to_end"]


def markdown_table(inproc: InProcessResult, cli: CliResult | None, n_pairs: int,
                   repeats: int) -> str:
    """The results as a markdown section that can be pasted into the README."""
    n = len(inproc.samples_ms["end_to_end"])
    lines = [
        f"Pipeline on {n_pairs} synthetic 12 MP ({PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}) JPEG pairs, "
        f"{repeats} run(s) each ({n} samples); {platform.machine()}, {os.cpu_count()} CPU(s), "
        f"OpenCV {cv2.__version__} with {cv2.getNumThreads()} thread(s), "
        f"Python {platform.python_version()}.",
        "",
        "| stage | median ms | p90 ms | share of median total |",
        "|---|---:|---:|---:|",
    ]
    total = statistics.median(inproc.samples_ms["end_to_end"])
    for stage in _ordered_stages(inproc.samples_ms):
        values = inproc.samples_ms[stage]
        median = statistics.median(values)
        name = "**end to end (in process)**" if stage == "end_to_end" else stage
        share = "" if stage == "end_to_end" else f"{100 * median / total:.0f} %"
        lines.append(f"| {name} | {median:.0f} | {_percentile(values, 90):.0f} | {share} |")
    lines += [
        "",
        "| measure | value | target |",
        "|---|---:|---|",
        f"| peak RSS, in-process runs | {inproc.peak_rss_mb:.0f} MB | "
        f"(after imports: {inproc.baseline_rss_mb:.0f} MB) |",
    ]
    if "calibrate" in inproc.samples_ms:
        calibrate = statistics.median(inproc.samples_ms["calibrate"])
        met = "met" if calibrate <= CALIBRATION_TARGET_MS else "**not met**"
        lines.append(f"| colour-card calibration per photo (`calibrate` stage), median | "
                     f"{calibrate:.0f} ms | <= {CALIBRATION_TARGET_MS:g} ms: {met} |")
    if cli is not None:
        median_s = statistics.median(cli.wall_s)
        met = "met" if median_s <= CLI_TARGET_S else "**not met**"
        lines += [
            f"| `sealcheck compare --json`, median of {len(cli.wall_s)} (min {min(cli.wall_s):.2f}"
            f", max {max(cli.wall_s):.2f} s) | {median_s:.2f} s | <= {CLI_TARGET_S:g} s: {met} |",
            f"| peak RSS, `sealcheck compare` | {cli.peak_rss_mb:.0f} MB | |",
        ]
    return "\n".join(lines)


class _OtherLoad:
    """How many CPUs other processes kept busy while we timed: they inflate every timing.

    System busy time from /proc/stat minus this process's and its children's own CPU time
    (the CLI runs); None where /proc/stat does not exist (macOS, Windows).
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="number of photo pairs (default 5)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed in-process runs per pair, after one warm-up (default 3)")
    parser.add_argument("--cli-runs", type=int, default=5,
                        help="timed `sealcheck compare` runs, median reported (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 2 pairs, 1 repeat, 2 CLI runs")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI timing")
    parser.add_argument("--out", type=Path, default=OUT_DIR,
                        help="pair cache and bench.md go here (default bench-out/)")
    parser.add_argument("--no-write", action="store_true", help="do not write bench.md")
    parser.add_argument("--full-decode", action="store_true",
                        help="decode every pixel in process (the path before reduced decoding)")
    args = parser.parse_args(argv)
    global FULL_DECODE
    FULL_DECODE = args.full_decode
    if args.quick:
        args.pairs, args.repeats, args.cli_runs = 2, 1, 2
    if args.pairs < 1 or args.repeats < 1 or args.cli_runs < 1:
        parser.error("--pairs, --repeats and --cli-runs must be at least 1")

    directories = ensure_pairs(pair_specs(args.pairs), args.out / "pairs")
    other_load = _OtherLoad()  # started after generation, whose workers are our children

    print(f"in process: {args.pairs} pair(s) x {args.repeats} run(s) after 1 warm-up ...",
          flush=True)
    inproc = time_in_process(directories, args.repeats)
    print("\nverdicts (identical content, so each should be 'pass'):")
    for name, verdict, detail in inproc.verdicts:
        print(f"  {name:<44} {verdict:<12} {detail}")

    cli = None
    if not args.no_cli:
        print(f"\nCLI: `sealcheck compare --json` x {args.cli_runs} on {directories[0].name} ...",
              flush=True)
        cli = time_cli(directories[0], args.cli_runs)
        print(f"  verdict {cli.verdict}, exit code {cli.exit_code}, "
              f"runs: {', '.join(f'{s:.2f}' for s in cli.wall_s)} s")

    table = markdown_table(inproc, cli, args.pairs, args.repeats)
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
