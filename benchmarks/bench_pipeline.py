"""Time sealcheck on 12 MP phone photos, against a naive full-resolution baseline and the
decode floor, through the CLI, in batch and over HTTP: one table (issue 9, ``make bench``).

Pairs are synthetic 12 MP (4032 x 3024) phone photos from ``testkit/scenes.py``: the same
flawless product photographed by a frontal golden camera and by a hand-held unit camera (any
rotation, tilt, zoom, other light), so every pair should pass. They are written as JPEG and
cached in ``bench-out/pairs/`` (generation takes seconds per pair; timing does not depend on it).

Measured (the CLI first, the naive baseline last; parts can be skipped for quick runs):

- in process, what the CLI does for a report: ``vision.load.load_pair`` (both files at
  once, each through ``load_for_report``: 1/2 through the JPEG's DCT for 12 MP;
  ``--full-decode`` decodes every pixel instead), then
  ``vision.compare.compare_side_by_side`` (the golden's preparation in a second thread) with
  ``render_images=False``: end to end, the headline figure. Interleaved with it, the same
  decode + the sequential ``vision.compare.compare``, whose ``report.timings_ms`` give the
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
- HTTP: a real ``sealcheck serve`` on loopback (``testkit.server.serving``), one golden
  sealed, then ``--http-clients`` concurrent clients each POSTing ``--http-requests``
  inspections with the 12 MP unit JPEG: client wall p50/p99 and inspections per second;
- the naive baseline, :func:`testkit.naive.naive_compare` (full resolution: SIFT + RANSAC,
  warp, scikit-image CIELAB + CIEDE2000 and SSIM), in a child process, ``--naive-runs`` times
  on each of ``--naive-pairs`` pairs: it takes tens of seconds per pair.

Targets are reported as met or not met; the exit status is 0 unless something crashes.
This script holds the in-process and CLI measurements; the pair cache is testkit/pairs.py, the
naive baseline testkit/naive.py, the targets and table testkit/bench_table.py (checked by
tests/test_bench_pipeline.py), the batch and HTTP drivers benchmarks/drivers.py.

Usage::

    python benchmarks/bench_pipeline.py [--pairs 5] [--repeats 3] [--cli-runs 5] [--quick]
        [--no-cli] [--no-batch] [--no-http] [--no-naive] [--default-allocator] [--full-decode]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Runnable as a plain script from any directory: the synthetic scenes live in testkit/.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.drivers import time_batch, time_http  # noqa: E402
from testkit.bench_table import (  # noqa: E402
    BenchResults,
    CliResult,
    DecodeResult,
    InProcessResult,
    markdown_table,
)
from testkit.measure import peak_rss_mb  # noqa: E402
from testkit.naive import time_naive  # noqa: E402
from testkit.pairs import OUT_DIR, ensure_pairs, pair_specs  # noqa: E402
from vision.compare import compare, compare_side_by_side  # noqa: E402
from vision.decode import load_image  # noqa: E402
from vision.load import load_for_report, load_pair  # noqa: E402
from vision.spec import Spec  # noqa: E402

# --------------------------------------------------------------------------------------------
# Measurements in process and through the CLI

FULL_DECODE = False  # --full-decode: every pixel, as before reduced decoding


def _decode(golden_path: Path, unit_path: Path):
    """Both photos as the CLI decodes them for a report: at the reduced size that
    vision.load.decode_reduction allows (1/2 for 12 MP), with the photos' own sizes."""
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
    baseline = peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))
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
    peak = peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))
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


def time_cli(directory: Path, runs: int) -> CliResult:
    """Wall time of `sealcheck compare GOLDEN UNIT --json`, interpreter start included, and
    its peak RSS.

    Call it while this process is small: on Linux a child's ru_maxrss starts at its parent's
    peak RSS (exec keeps the larger of the old and the new memory's high-water mark, and
    subprocess's vfork shares the parent's memory), so a child of a big process reports at
    least the parent's peak, whatever it used itself.
    """
    parent_rss = peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF))
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
            peaks.append(peak_rss_mb(usage))
        stdout.seek(0)
        try:
            verdict = json.load(stdout)["verdict"]
        except (ValueError, KeyError):
            verdict = "no JSON report"
    return CliResult(wall, max(peaks), verdict, exit_code, parent_rss)


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
                           allocator_tuned=tuned, measured_at=measured_at,
                           full_decode=FULL_DECODE)

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
