"""bench_pipeline.py's results, issue 9's targets, and the figures table that marks each target
met or not met (printed, and written to bench-out/bench.md)."""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics

import cv2

from testkit.measure import percentile
from testkit.naive import NAIVE_STEPS, NaiveTiming
from testkit.pairs import PHOTO_SIZE
from vision.load import decode_reduction

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

# Order in which stages are printed; stages the pipeline adds later are appended after these.
_STAGE_ORDER = (
    "prepare_golden", "downscale", "calibrate", "register", "warp", "color", "structure",
    "defects", "render",
)


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


@dataclasses.dataclass
class CliResult:
    wall_s: list[float]
    peak_rss_mb: float
    verdict: str
    exit_code: int
    parent_rss_mb: float  # this process's peak RSS when it started the runs: see time_cli


@dataclasses.dataclass
class HttpResult:
    clients: int
    answered_ms: list[float]  # client wall time of each request answered 201
    waited_ms: list[float]  # from an inspection's first attempt to its 201, back-off included
    busy: int  # attempts answered 503 (the pipeline queue was full)
    errors: list[str]
    wall_s: float  # the whole concurrent phase
    verdicts: dict[str, int]


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
    full_decode: bool = False  # --full-decode: every pixel in process, not the reduced decode


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
                   f"path), median of {n} (p90 {percentile(inproc.side_by_side_ms, 90):.0f} "
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
            p50, p99 = (percentile(http.answered_ms, q) for q in (50, 99))
            rows.append(Figure(
                f"HTTP inspection, {http.clients} concurrent clients on loopback, 12 MP unit "
                f"upload: client wall p50 / p99 of {len(http.answered_ms)} answered",
                p50, f"{p50:.0f} / {p99:.0f} ms"))
            w50, w99 = (percentile(http.waited_ms, q) for q in (50, 99))
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
    decode = "full decode (`--full-decode`)" if results.full_decode else "reduced decode"
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
        lines.append(f"| {name} | {median:.0f} | {percentile(values, 90):.0f} | {share} |")
    side = inproc.side_by_side_ms
    lines.append(f"| **end to end: decode + `compare_side_by_side` (the CLI's path)** | "
                 f"**{statistics.median(side):.0f}** | {percentile(side, 90):.0f} | |")
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
                             f"{percentile(values, 90):.0f} |")
        totals = results.naive.total_ms
        lines.append(f"| **end to end** | **{statistics.median(totals):.0f}** | "
                     f"{percentile(totals, 90):.0f} |")
    lines += ["", "| figure | value | target | result |", "|---|---:|---|---|"]
    lines += [figure.row() for figure in figures(results)]
    return "\n".join(lines)
