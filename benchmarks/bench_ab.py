"""Time this checkout's comparison against another checkout's, interleaved: is a change slower?

The path timed is ``make bench``'s headline figure (``bench_pipeline.py``'s "end to end"): both
12 MP JPEGs decoded for a report and compared with ``compare_side_by_side``, in process. Each
round runs one child process per checkout, alternating which goes first, so both see the same
machine (this shared 2-core machine's speed drifts by tens of per cent within minutes); a child
warms up once and then times ``--repeats`` comparisons of each pair. The figure is the ratio of
the medians over all rounds, with the per-round ratios beside it. Beside it, the same for the
CPU time a comparison takes (both threads, ``time.process_time``): on a machine other
processes keep busy the wall ratio is compressed (the second thread's share comes and goes),
while the CPU ratio still shows what a change costs.

Make the other checkout with ``git worktree add /tmp/base <commit>``; the bench pairs are the
ones in ``bench-out/pairs/`` (made by ``bench_pipeline.py`` if missing)::

    python benchmarks/bench_ab.py --base /tmp/base [--rounds 6] [--repeats 3] [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testkit.pairs import OUT_DIR, ensure_pairs, pair_specs  # noqa: E402

# Runs in a child process whose sys.path starts with one checkout. It imports what that
# checkout has: the comparison's modules (vision.load/vision.compare) or the single module
# they were split from (vision.pipeline).
_CHILD = r"""
import json, statistics, sys, time
from pathlib import Path

try:
    from vision.compare import compare_side_by_side
    from vision.load import load_pair
except ImportError:
    from vision.pipeline import compare_side_by_side, load_pair
from service.runtime import tune_allocator

tune_allocator()
directories, repeats = [Path(d) for d in json.loads(sys.argv[1])], int(sys.argv[2])
pairs = [((d / "golden.jpg").read_bytes(), (d / "unit.jpg").read_bytes()) for d in directories]


def once(golden, unit):
    start, cpu_start = time.perf_counter(), time.process_time()
    (g, g_size), (u, u_size) = load_pair(golden, unit)
    compare_side_by_side(g, u, golden_photo_size=g_size, unit_photo_size=u_size,
                         render_images=False)
    return (time.perf_counter() - start) * 1e3, (time.process_time() - cpu_start) * 1e3


once(*pairs[0])  # warm-up: library set-up, the model's session
times = [once(*pair) for _ in range(repeats) for pair in pairs]
print(json.dumps({"median_ms": statistics.median(t for t, _ in times),
                  "cpu_median_ms": statistics.median(c for _, c in times), "n": len(times)}))
"""


def _time(checkout: Path, directories: list[Path], repeats: int) -> tuple[float, float]:
    """(wall, CPU) medians of one child's comparisons, ms."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps([str(d) for d in directories]),
                           str(repeats)], cwd=checkout, env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: the timing child failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["median_ms"], result["cpu_median_ms"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True,
                        help="the other checkout (e.g. a git worktree of the commit before)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each pair per child")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args(argv)
    if not (args.base / "vision").is_dir():
        parser.error(f"--base {args.base}: no vision/ package there; give a checkout's root")
    directories = ensure_pairs(pair_specs(args.pairs), OUT_DIR / "pairs")
    base_ms, here_ms, base_cpu, here_cpu = [], [], [], []
    for round_ in range(args.rounds):
        order = [("base", args.base), ("here", REPO)]
        if round_ % 2:
            order.reverse()
        for name, checkout in order:
            wall, cpu = _time(checkout, directories, args.repeats)
            (base_ms if name == "base" else here_ms).append(wall)
            (base_cpu if name == "base" else here_cpu).append(cpu)
        print(f"round {round_ + 1}: base {base_ms[-1]:.0f} ms, here {here_ms[-1]:.0f} ms, "
              f"ratio {here_ms[-1] / base_ms[-1]:.3f}; CPU ratio "
              f"{here_cpu[-1] / base_cpu[-1]:.3f}", flush=True)
    ratio = statistics.median(here_ms) / statistics.median(base_ms)
    print(f"\nend to end, median of {args.rounds} rounds: base {statistics.median(base_ms):.0f} "
          f"ms, here {statistics.median(here_ms):.0f} ms: here / base = {ratio:.3f} "
          f"({(ratio - 1) * 100:+.1f}%)")
    cpu_ratio = statistics.median(here_cpu) / statistics.median(base_cpu)
    print(f"CPU per comparison (both threads), median: base {statistics.median(base_cpu):.0f} "
          f"ms, here {statistics.median(here_cpu):.0f} ms: here / base = {cpu_ratio:.3f} "
          f"({(cpu_ratio - 1) * 100:+.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
