"""Time the HTTP service: inspections against a sealed golden vs one-off /v1/compare.

A real server (``sealcheck serve``, uvicorn, SQLite in a temporary data directory) is started;
a golden is sealed once, then 20 inspections of a unit against it and 20 ``POST /v1/compare``
of the same golden + unit pair are sent one at a time, alternating so that both see the same
machine load. The figure is the median *server* time per request (the ``Server-Timing``
header: from the request's first byte to the response's start, upload parsing, decoding, the
pipeline, PNG encoding, fsyncs and the database included); client wall time is shown too.

Target (issue 5): per-inspection server time at least 30% below /v1/compare's, because the
sealed golden's decoding and preparation are reused. Per-stage means come from the server's
Prometheus metrics. The pair is the first 12 MP pair of the bench's cache (testkit/pairs.py)
(hand-held unit, other light), cached in ``bench-out/pairs/``.

The server is testkit.server's (``serving``), which bench_pipeline.py's HTTP figure uses too.

Usage::

    python benchmarks/bench_service.py [--inspections 20]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from testkit.pairs import OUT_DIR, ensure_pairs, pair_specs  # noqa: E402
from testkit.server import inspect_unit, seal_golden, server_time_ms, serving  # noqa: E402

TARGET_REDUCTION = 0.30


def _stage_means(metrics_text: str) -> dict[str, tuple[float, int]]:
    sums, counts = {}, {}
    for line in metrics_text.splitlines():
        match = re.match(r'sealcheck_pipeline_stage_seconds_(sum|count)\{stage="([^"]+)"\} (\S+)',
                         line)
        if match:
            kind, stage, value = match.groups()
            (sums if kind == "sum" else counts)[stage] = float(value)
    return {s: (1000 * sums[s] / counts[s], int(counts[s])) for s in sums if counts.get(s)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inspections", type=int, default=20)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    pair_dir = ensure_pairs(pair_specs(1), OUT_DIR / "pairs")[0]
    golden = (pair_dir / "golden.jpg").read_bytes()
    unit = (pair_dir / "unit.jpg").read_bytes()

    with (tempfile.TemporaryDirectory(prefix="sealcheck-bench-") as data_dir,
          serving(args.port, Path(data_dir)) as (base, key)):
        client = httpx.Client(base_url=base, timeout=300,
                              headers={"Authorization": f"Bearer {key}"})
        golden_id, seal_ms = seal_golden(client, golden)

        def inspect() -> httpx.Response:
            return inspect_unit(client, golden_id, unit)

        def compare() -> httpx.Response:
            return client.post("/v1/compare", files={
                "golden": ("golden.jpg", golden, "image/jpeg"),
                "unit": ("unit.jpg", unit, "image/jpeg")})

        inspect().raise_for_status()  # warm-up, not counted
        compare().raise_for_status()
        times: dict[str, list[tuple[float, float]]] = {"inspection": [], "compare": []}
        verdicts = set()
        for _ in range(args.inspections):
            for name, call in (("inspection", inspect), ("compare", compare)):
                start = time.perf_counter()
                response = call()
                wall = (time.perf_counter() - start) * 1000
                if response.status_code not in (200, 201):
                    raise SystemExit(f"{name}: {response.status_code} {response.text}")
                verdicts.add((name, response.json()["report"]["verdict"]
                              if name == "compare" else response.json()["verdict"]))
                times[name].append((server_time_ms(response), wall))
        stages = _stage_means(client.get("/metrics").text)

    median = {name: (statistics.median(s for s, _ in values),
                     statistics.median(w for _, w in values)) for name, values in times.items()}
    reduction = 1 - median["inspection"][0] / median["compare"][0]
    print(f"pair: {pair_dir.name} (12 MP JPEG, golden {len(golden) / 1e6:.1f} MB, unit "
          f"{len(unit) / 1e6:.1f} MB); {args.inspections} of each, alternating; "
          f"{os.cpu_count()} CPUs")
    print(f"seal (decode + prepare_golden + store): server {seal_ms:.0f} ms")
    print("| request | median server ms | median wall ms |")
    print("|---|---:|---:|")
    for name, (server_ms, wall_ms) in median.items():
        print(f"| {name} | {server_ms:.0f} | {wall_ms:.0f} |")
    print(f"inspection vs compare (server, median): {reduction:.0%} lower; target >= "
          f"{TARGET_REDUCTION:.0%}: {'met' if reduction >= TARGET_REDUCTION else 'NOT MET'}")
    print("stage means over every request (server metrics):")
    for stage, (mean_ms, count) in sorted(stages.items(), key=lambda kv: -kv[1][0]):
        print(f"  {stage:15s} {mean_ms:7.1f} ms  (n={count})")
    print("verdicts:", json.dumps(sorted(verdicts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
