"""Time the web report page of a finished inspection: server time per request.

A real server (``sealcheck serve``, uvicorn, SQLite in a temporary data directory) is started;
a golden is sealed and a unit with three defects (scratch, stain, hole) is inspected through the
API, a browser session is opened with the key, then the report page is requested ``--requests``
times one after another on loopback. The figure is the median *server* time (the
``Server-Timing`` header: from the request's first byte to the response's start, the session
look-up, the database read and the template rendering included); client wall time is shown too.
The pictures are separate requests, lazy-loaded by the browser, and not part of the figure.

Target (issue 6): median <= 300 ms.

Usage::

    python benchmarks/bench_web.py [--requests 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from testkit.photos import jpeg  # noqa: E402
from testkit.scenes import Camera, make_pair  # noqa: E402

# A real server, timed by its Server-Timing header, as in the service benchmark.
from testkit.server import SEALCHECK, server_time_ms, wait_ready  # noqa: E402

TARGET_MS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    if args.requests < 20:
        parser.error("--requests must be at least 20 for a stable median")

    # A phone-sized pair (2016x1512) with three defects, so the page has several defect cards.
    pair = make_pair("astronaut", golden_camera=Camera(),
                     defects=(("scratch", 15.0), ("stain", 12.0), ("hole", 10.0)), seed=3)
    golden, unit = jpeg(pair.golden), jpeg(pair.unit)
    spec = json.dumps({"roi": [int(v) for v in pair.roi]})
    base = f"http://127.0.0.1:{args.port}"

    with tempfile.TemporaryDirectory(prefix="sealcheck-bench-web-") as data_dir:
        env = dict(os.environ, SEALCHECK_DATA_DIR=data_dir)
        env.pop("SEALCHECK_DATABASE_URL", None)
        key = subprocess.run([SEALCHECK, "keys", "create", "--tenant", "bench"], env=env,
                             check=True, capture_output=True, text=True).stdout.strip()
        log = open(Path(data_dir) / "server.log", "wb")  # noqa: SIM115 (closed below)
        server = subprocess.Popen([SEALCHECK, "serve", "--port", str(args.port)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(base, server)
            api = httpx.Client(base_url=base, timeout=300,
                               headers={"Authorization": f"Bearer {key}"})
            golden_id = api.post("/v1/goldens", data={"name": "bench", "sku": "BENCH-1",
                                                      "spec": spec},
                                 files={"images": ("golden.jpg", golden, "image/jpeg")}
                                 ).raise_for_status().json()["id"]
            inspection = api.post(f"/v1/goldens/{golden_id}/inspections",
                                  files={"images": ("unit.jpg", unit, "image/jpeg")}
                                  ).raise_for_status().json()
            browser = httpx.Client(base_url=base, timeout=60)
            signed_in = browser.post("/signin", data={"api_key": key})
            if signed_in.status_code != 303:
                raise SystemExit(f"sign-in failed: {signed_in.status_code}")
            url = f"/inspections/{inspection['id']}"
            first = browser.get(url).raise_for_status()  # warm-up (template compile), not counted
            images = re.findall(r"<img [^>]*>", first.text)
            lazy = sum('loading="lazy"' in tag for tag in images)
            server_ms, wall_ms = [], []
            for _ in range(args.requests):
                start = time.perf_counter()
                response = browser.get(url).raise_for_status()
                wall_ms.append((time.perf_counter() - start) * 1000)
                server_ms.append(server_time_ms(response))
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()

    median = statistics.median(server_ms)
    p90 = statistics.quantiles(server_ms, n=10)[-1]
    print(f"report page of a finished inspection ({inspection['verdict']}, "
          f"{len(inspection['report']['defects']['regions'])} defect regions, "
          f"{len(first.content) / 1024:.1f} kB of HTML, {len(images)} <img>, {lazy} lazy)")
    print(f"server time over {args.requests} requests: median {median:.1f} ms, p90 {p90:.1f} ms, "
          f"max {max(server_ms):.1f} ms; client wall median {statistics.median(wall_ms):.1f} ms")
    met = median <= TARGET_MS and lazy == len(images)
    print(f"target: median <= {TARGET_MS:.0f} ms with every <img> lazy: "
          f"{'met' if met else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
