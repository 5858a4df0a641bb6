"""Bounded load test: 16 concurrent clients for 2 minutes against a real `sealcheck serve`.

The server runs in its own process (uvicorn, SQLite by default, fresh data directory); this
process is the load generator on loopback. Four golden/unit photo pairs of different products
(flawless, stained, scratched, colour-drifted; testkit/scenes.py) are sealed first. Then
every client loops over a mix that looks like a QC station's day:

- 60%  POST /v1/goldens/{id}/inspections (a unit photo; the pipeline, files, rows)
- 30%  reads: GET /v1/inspections/{id}, .../overlay.png, .../images/0 (re-encoded), a list
- 10%  POST /v1/compare (the heaviest request: the golden is prepared in the request)

A 503 (the pipeline queue is full) is back-pressure, not an error: the client waits
min(Retry-After, 1 s) and goes on. Any other non-2xx, or a transport error, is an error.

Figures (issue 10): requests, 503s, other errors (must be 0), p50/p99 latency of the answered
requests per kind, and the server's RSS growth from the end of warm-up to the end (must be
< 10%): the median of the RSS samples in the first 15 s after warm-up against the median of the
last 15 s, so that one sample taken mid-request does not decide it. Counts and latencies are
those of the measured 2 minutes; the warm-up's are dropped.

Usage::

    python benchmarks/load_test.py [--clients 16] [--seconds 120] [--warmup 60]
                                   [--backend sqlite|postgresql] [--size 1280x960]

Exit status 0 when both criteria hold, 1 otherwise. ``make reliability`` runs it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._reliability import Server, database, photo_pairs  # noqa: E402
from testkit.server import free_port  # noqa: E402

MAX_RSS_GROWTH = 0.10


class Stats:
    """Per-kind latencies and outcomes, shared by the client threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency_ms: dict[str, list[float]] = defaultdict(list)
        self.busy = 0
        self.errors: list[str] = []
        self.requests = 0

    def record(self, kind: str, started: float, response: httpx.Response | None,
               error: str | None = None) -> None:
        elapsed = 1000 * (time.perf_counter() - started)
        with self.lock:
            self.requests += 1
            if error is not None:
                self.errors.append(f"{kind}: {error}")
            elif response.status_code == 503:
                self.busy += 1
            elif response.is_success:
                self.latency_ms[kind].append(elapsed)
            else:
                self.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _client(n: int, base: str, key: str, goldens: list[dict], stats: Stats,
            stop: threading.Event, inspections: list[str]) -> None:
    rng = random.Random(n)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=300) as http:
        while not stop.is_set():
            golden = rng.choice(goldens)
            roll = rng.random()
            started = time.perf_counter()
            try:
                if roll < 0.6 or not inspections:
                    kind = "inspect"
                    response = http.post(f"/v1/goldens/{golden['id']}/inspections",
                                         data={"unit_label": f"client {n}"},
                                         files={"images": ("unit.jpg", golden["unit"],
                                                           "image/jpeg")})
                    if response.status_code == 201:
                        inspections.append(response.json()["id"])
                elif roll < 0.9:
                    inspection = rng.choice(inspections)
                    kind, path = rng.choice((
                        ("read", f"/v1/inspections/{inspection}"),
                        ("overlay", f"/v1/inspections/{inspection}/overlay.png"),
                        ("photo", f"/v1/inspections/{inspection}/images/0"),
                        ("list", "/v1/inspections?limit=20")))
                    response = http.get(path)
                else:
                    kind = "compare"
                    response = http.post("/v1/compare", data={"spec": json.dumps(
                        {"roi": golden["roi"]})}, files={
                        "golden": ("golden.jpg", golden["golden"], "image/jpeg"),
                        "unit": ("unit.jpg", golden["unit"], "image/jpeg")})
            except httpx.HTTPError as exc:
                stats.record("transport", started, None, f"{exc.__class__.__name__}: {exc}")
                continue
            stats.record(kind, started, response)
            if response.status_code == 503:
                stop.wait(min(float(response.headers.get("Retry-After", "1")), 1.0)
                          * rng.uniform(0.5, 1.0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--warmup", type=float, default=60.0,
                        help="seconds of load before the RSS baseline is taken (default 60: "
                        "on 2 shared cores that is ~20 pipeline runs, enough for every "
                        "worker thread's allocator arena to have seen a full inspection)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--size", default="1280x960", help="photo size WxH (default 1280x960)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    print(f"load test: {args.clients} clients, {args.seconds:.0f} s (+{args.warmup:.0f} s "
          f"warm-up), {args.backend}, photos {width}x{height}", flush=True)
    pairs = photo_pairs((width, height))
    with tempfile.TemporaryDirectory(prefix="sealcheck-load-") as tmp, \
            database(args.backend, Path(tmp)) as db:
        server = Server(db, free_port())
        key = server.create_key("load")
        server.start()
        try:
            figures = _run(server, key, pairs, args)
        finally:
            server.stop()
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    ok = figures["other_errors"] == 0 and figures["rss_growth"] < MAX_RSS_GROWTH
    print(f"load: {figures['requests']} requests, {figures['busy_503']} x 503, "
          f"{figures['other_errors']} other errors, p50 {figures['all']['p50_ms']:.0f} ms, "
          f"p99 {figures['all']['p99_ms']:.0f} ms, RSS {figures['rss_mb_after_warmup']:.0f} -> "
          f"{figures['rss_mb_end']:.0f} MB ({100 * figures['rss_growth']:+.1f}%; limit "
          f"+{100 * MAX_RSS_GROWTH:.0f}%): {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def _run(server: Server, key: str, pairs: list[dict], args) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    goldens = []
    for pair in pairs:
        sealed = httpx.post(f"{server.base}/v1/goldens", headers=headers, timeout=300, data={
            "name": pair["product"], "sku": pair["product"].upper(),
            "spec": json.dumps({"roi": pair["roi"]})},
            files={"images": ("golden.jpg", pair["golden"], "image/jpeg")})
        if sealed.status_code != 201:
            raise SystemExit(f"sealing failed: {sealed.status_code} {sealed.text}")
        goldens.append({**pair, "id": sealed.json()["id"]})

    process = psutil.Process(server.process.pid)
    stats, stop = Stats(), threading.Event()
    inspections: list[str] = []
    threads = [threading.Thread(target=_client, daemon=True, args=(
        n, server.base, key, goldens, stats, stop, inspections)) for n in range(args.clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    rss: list[tuple[float, float]] = []  # (seconds since start, MB)
    warm_stats_taken = False
    end = start + args.warmup + args.seconds
    while time.monotonic() < end:
        rss.append((time.monotonic() - start, process.memory_info().rss / 2**20))
        if not warm_stats_taken and time.monotonic() - start >= args.warmup:
            # Latencies and counts are measured after warm-up only.
            with stats.lock:
                stats.latency_ms.clear()
                stats.busy, stats.requests, stats.errors = 0, 0, []
            warm_stats_taken = True
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=300)
    window = min(15.0, args.seconds / 3)
    after_warmup = [mb for t, mb in rss if args.warmup <= t < args.warmup + window]
    last = [mb for t, mb in rss if t >= args.warmup + args.seconds - window]
    baseline, final = statistics.median(after_warmup), statistics.median(last)
    every = [v for values in stats.latency_ms.values() for v in values]
    log = server.log_tail(10**6)
    return {
        "clients": args.clients, "seconds": args.seconds, "backend": args.backend,
        "photo_size": args.size, "requests": stats.requests, "busy_503": stats.busy,
        "other_errors": len(stats.errors), "error_samples": stats.errors[:10],
        "answered": len(every),
        "all": {"p50_ms": _percentile(every, 0.5), "p99_ms": _percentile(every, 0.99)},
        "per_kind": {kind: {"n": len(v), "p50_ms": round(_percentile(v, 0.5)),
                            "p99_ms": round(_percentile(v, 0.99))}
                     for kind, v in sorted(stats.latency_ms.items()) if v},
        "rss_mb_after_warmup": baseline, "rss_mb_end": final,
        "rss_mb_peak": max(mb for _, mb in rss), "rss_growth": final / baseline - 1,
        # Every 10 s: seconds since the load began, RSS in MB (warm-up included).
        "rss_trajectory": [(round(t), round(mb)) for t, mb in rss[::20]],
        "server_tracebacks": log.count("Traceback"),
    }


if __name__ == "__main__":
    sys.exit(main())
