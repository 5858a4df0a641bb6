"""`sealcheck rescore`: throughput of the local engine, and the kill -9 exactly-once figure.

Throughput (the default): synthetic 12 MP pairs (the same cached pairs as
``bench_pipeline.py``, in ``bench-out/pairs/``), each listed `--repeat` times in a manifest
(units per golden), scored by the real command into fresh RESULTS files with 1 worker and 2
workers (each worker one core: one thread per library), interleaved over `--rounds`; the best
round of each counts, since other jobs on a shared machine only ever slow a run down.
Pairs/s is items / wall time of the whole command (interpreter, pool and ONNX session start
included), what a user sees; the steady state (first result to last) is printed beside it.
Targets: >= 2 pairs/s with 2 workers, and 2 workers >= 1.7x one.

Kill -9 (``--kill-test``): a 200-item job of small photos is run once uninterrupted, then again
into another RESULTS file, killed with SIGKILL at 5 random moments and resumed after each; the
final RESULTS must hold the 200 ids once each, every line whole, and the same reports as the
uninterrupted run (timings aside). tests/test_rescore_kill.py runs the same function.

Usage::

    python benchmarks/bench_rescore.py [--pairs 5] [--repeat 24] [--rounds 2]
    python benchmarks/bench_rescore.py --kill-test [--kills 5] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testkit.batch import (  # noqa: E402
    clean_env,
    compare_results,
    kill_and_resume,
    line_count,
    read_results,
    run_job,
    sealcheck_command,
    write_small_job,
)

THROUGHPUT_TARGET = 2.0  # pairs/s with 2 workers
SCALING_TARGET = 1.7  # 2 workers / 1 worker


# --------------------------------------------------------------------------------------------
# The kill -9 figure


def kill_test(kills: int, seed: int, workers: int, items: int = 200) -> dict:
    with tempfile.TemporaryDirectory(prefix="rescore-kill-") as tmp:
        directory = Path(tmp)
        manifest = write_small_job(directory, items)
        reference = directory / "reference.jsonl"
        start = time.perf_counter()
        done = run_job(manifest, reference, workers)
        if done.returncode != 0:
            raise AssertionError(f"the uninterrupted run exited {done.returncode}:\n"
                                 f"{done.stderr}")
        uninterrupted_s = time.perf_counter() - start
        resumed = directory / "resumed.jsonl"
        moments = kill_and_resume(manifest, resumed, kills=kills, seed=seed, workers=workers)
        outcome = compare_results(reference, resumed, items)
        outcome.update(kills=moments, uninterrupted_s=round(uninterrupted_s, 1))
        return outcome


# --------------------------------------------------------------------------------------------
# Throughput


def _timed_job(manifest: Path, out: Path, workers: int, env: dict[str, str] | None = None
               ) -> tuple[float, float, list[float]]:
    """Run the command; (wall seconds, CPU seconds of it and its workers, seconds from start
    at which each result appeared)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(
        [*sealcheck_command(), "rescore", str(manifest), "--out", str(out), "--workers",
         str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**clean_env(), **(env or {})}, cwd=REPO)
    appeared: list[float] = []
    while process.poll() is None:
        lines = line_count(out)
        while len(appeared) < lines:
            appeared.append(time.perf_counter() - start)
        time.sleep(0.02)
    wall = time.perf_counter() - start
    stderr = process.stderr.read()
    if process.returncode != 0:
        raise AssertionError(f"rescore exited {process.returncode}:\n{stderr}")
    while len(appeared) < line_count(out):
        appeared.append(wall)
    # The pool's workers are reaped by the command, so their CPU time is counted in its own.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, appeared


# (label, workers, extra environment). Every worker runs one thread per library (a worker is
# one core, service.rescore.job.make_engine), so the two rows differ only in the cores used.
CONFIGS = (
    ("1 worker", 1, {}),
    ("2 workers", 2, {}),
)


def throughput(pairs: int, repeat: int, rounds: int = 1, *,
               configs: tuple[tuple[str, int, dict[str, str]], ...] = CONFIGS,
               cache: Path | None = None) -> list[dict]:
    """One row per run of each of `configs`, interleaved over `rounds`, on the first `pairs`
    bench pairs (generated into `cache`, bench-out/pairs/ by default) listed `repeat` times."""
    from testkit.pairs import OUT_DIR, ensure_pairs, pair_specs

    directories = ensure_pairs(pair_specs(pairs), cache or OUT_DIR / "pairs")
    rows = []
    with tempfile.TemporaryDirectory(prefix="rescore-bench-") as tmp:
        manifest = Path(tmp) / "manifest.jsonl"
        with open(manifest, "w") as handle:
            for r in range(repeat):
                for d in directories:
                    handle.write(json.dumps({"id": f"{d.name}-{r}", "golden": str(d / "golden.jpg"),
                                             "unit": str(d / "unit.jpg")}) + "\n")
        items = pairs * repeat
        runs = [config for _ in range(rounds) for config in configs]
        for number, (label, workers, env) in enumerate(runs):
            out = Path(tmp) / f"results-{number}.jsonl"
            load_before = os.getloadavg()[0]
            wall, cpu, appeared = _timed_job(manifest, out, workers, env)
            records, _ = read_results(out)
            verdicts: dict[str, int] = {}
            for record in records:
                key = record["report"]["verdict"] if record["status"] == "ok" else "error"
                verdicts[key] = verdicts.get(key, 0) + 1
            pipeline_ms = sorted(sum(r["report"]["timings_ms"].values()) for r in records
                                 if r["status"] == "ok")
            # Steady state: from the first result to the last (start-up and the first item
            # excluded: interpreter, imports, pool and ONNX session start, first golden).
            steady = ((len(appeared) - 1) / (appeared[-1] - appeared[0])
                      if len(appeared) > 1 and appeared[-1] > appeared[0] else None)
            rows.append({"label": label, "workers": workers, "items": items,
                         "wall_s": round(wall, 2), "pairs_per_s": round(items / wall, 3),
                         "steady_pairs_per_s": steady and round(steady, 3),
                         "first_result_s": round(appeared[0], 2) if appeared else None,
                         "cpu_s_per_pair": round(cpu / items, 3),
                         "verdicts": verdicts,
                         "median_compare_ms": pipeline_ms[len(pipeline_ms) // 2],
                         "load_before": round(load_before, 2)})
            print(f"  {label}: {items} pairs in {wall:.1f} s = {items / wall:.2f} pairs/s "
                  f"(steady state {steady or 0:.2f}/s; first result after "
                  f"{rows[-1]['first_result_s']} s; median compare "
                  f"{rows[-1]['median_compare_ms']:.0f} ms; {cpu / items:.2f} CPU s per "
                  f"pair; load average before "
                  f"{load_before:.1f})", flush=True)
    return rows


def best_rows(rows: list[dict]) -> dict[str, dict]:
    """The fastest run of each configuration (by label): other jobs on a shared machine only
    ever slow a run down."""
    best: dict[str, dict] = {}
    for row in rows:
        if row["label"] not in best or row["pairs_per_s"] > best[row["label"]]["pairs_per_s"]:
            best[row["label"]] = row
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5, help="12 MP pairs (default 5)")
    # 120 items: the archive jobs this command is for hold thousands, where the ~3 s of
    # start-up before the first result (interpreter, imports, the pool, the model session,
    # the first golden) vanishes; at 60 items it was still 12% of a 2-worker run and held the
    # 2-worker ratio to 1.57-1.69x on 2026-11-27 (1.81x at 120). The steady state (first
    # result to last) is printed beside it.
    parser.add_argument("--repeat", type=int, default=24, help="times each pair is listed "
                        "(units per golden; default 24)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration, "
                        "interleaved; the best counts (default 2)")
    parser.add_argument("--kill-test", action="store_true", help="the kill -9 figure instead")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="for --kill-test")
    args = parser.parse_args(argv)
    if args.kill_test:
        outcome = kill_test(args.kills, args.seed, args.workers)
        for number, moment in enumerate(outcome["kills"], start=1):
            print(f"kill {number} ({moment['phase']}): after {moment['after_s']} s, "
                  f"{moment['lines_before']} -> "
                  f"{moment['lines_at_kill']} lines"
                  + (", torn last line" if moment["torn_tail"] else ""))
        print(f"{outcome['items']} items ({outcome['scored_ok']} scored, the rest missing "
              f"files), {outcome['duplicates']} duplicates, "
              f"{outcome['torn_lines']} torn lines, identical: "
              f"{'yes' if outcome['identical'] else 'no ' + str(outcome['differing_ids'])} "
              f"(uninterrupted run {outcome['uninterrupted_s']} s)")
        ok = (outcome["items"] == outcome["expected"] and outcome["duplicates"] == 0
              and outcome["identical"] and not outcome["torn_lines"])
        return 0 if ok else 1
    print(f"sealcheck rescore, local engine: {args.pairs} synthetic 12 MP pairs x {args.repeat}, "
          f"{os.cpu_count()} CPUs", flush=True)
    rows = best_rows(throughput(args.pairs, args.repeat, args.rounds))
    one, two = (rows[label] for label in ("1 worker", "2 workers"))
    ratio = two["pairs_per_s"] / one["pairs_per_s"]
    print(f"2 workers: {two['pairs_per_s']:.2f} pairs/s (target >= {THROUGHPUT_TARGET}: "
          f"{'met' if two['pairs_per_s'] >= THROUGHPUT_TARGET else 'NOT met'}); 2 workers / "
          f"1 worker = {ratio:.2f}x (target >= {SCALING_TARGET}x: "
          f"{'met' if ratio >= SCALING_TARGET else 'NOT met'})")
    # What the same work would reach with the machine to itself: the CPU time a pair costs
    # does not depend on other jobs (much), the wall time does.
    print(f"CPU per pair: 1 worker {one['cpu_s_per_pair']:.2f} s, "
          f"2 workers {two['cpu_s_per_pair']:.2f} s; on "
          f"{os.cpu_count()} idle cores 2 workers could reach at most "
          f"{(os.cpu_count() or 1) / two['cpu_s_per_pair']:.2f} pairs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
