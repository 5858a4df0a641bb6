"""Slow and idle clients against a real `sealcheck serve` (issue 25's figure).

`sealcheck serve` runs in a subprocess whose soft RLIMIT_NOFILE is 1024 (default settings,
SQLite). This process opens 1100 connections to it, the four kinds in turn (testkit/
slow_clients.py): idle, a partial request line, partial headers, complete headers and part of
a sign-in form's body; every one then waits. 20 s after they opened, a fresh `GET /healthz` is
timed, and the server log's growth over the run is measured.

Figure: `/healthz` answers 200 within 1 s, and the log grows by less than 1 MB. Also printed:
the /healthz answer 1 s into the flood (a quick 503 is expected while the connection cap is
reached), the server's peak open descriptors, and how many of the 1100 the server had closed
by the 20th second (shed at once, or cut at SEALCHECK_HEADER_TIMEOUT / READ_TIMEOUT).

Usage::

    python benchmarks/slow_clients.py [--runs 3] [--clients 1100] [--soft-limit 1024] [--wait 20]

Exit status 0 when every run meets the figure, 1 otherwise. ``make reliability`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.server import free_port  # noqa: E402
from testkit.slow_clients import (  # noqa: E402
    close_all,
    closed_by_server,
    healthz_seconds,
    open_slow_clients,
    serving_with_file_limit,
)

MAX_HEALTHZ_S = 1.0
MAX_LOG_GROWTH = 1024 * 1024


def _peak_descriptors(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.wait(0.2):
        try:
            peak[0] = max(peak[0], len(os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            return


def one_run(clients: int, soft_limit: int, wait: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="sealcheck-slow-") as tmp:
        data_dir, port = Path(tmp), free_port()
        with serving_with_file_limit(port, data_dir, soft_limit) as server:
            log = data_dir / "server.log"
            before = log.stat().st_size
            stop, peak = threading.Event(), [0]
            watcher = threading.Thread(target=_peak_descriptors, args=(server.pid, stop, peak))
            watcher.start()
            opened_at = time.monotonic()
            sockets, failed = open_slow_clients(port, clients)
            try:
                opening_s = time.monotonic() - opened_at
                time.sleep(max(0.0, opened_at + 1 - time.monotonic()))
                during_s, during_status = healthz_seconds(port)
                time.sleep(max(0.0, opened_at + wait - time.monotonic()))
                healthz_s, status = healthz_seconds(port)
                closed = closed_by_server(sockets)
            finally:
                close_all(sockets)
                stop.set()
                watcher.join()
            grown = log.stat().st_size - before
    return {"clients": clients, "connect_failures": failed, "opening_s": round(opening_s, 2),
            "healthz_after_1s": [during_status, round(during_s, 3)],
            f"healthz_after_{wait:g}s": [status, round(healthz_s, 3)],
            "closed_by_server": closed, "peak_descriptors": peak[0], "log_growth_bytes": grown,
            "ok": status == 200 and healthz_s < MAX_HEALTHZ_S and grown < MAX_LOG_GROWTH}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1100)
    parser.add_argument("--soft-limit", type=int, default=1024)
    parser.add_argument("--wait", type=float, default=20.0)
    args = parser.parse_args()
    runs = []
    for n in range(args.runs):
        runs.append(one_run(args.clients, args.soft_limit, args.wait))
        print(f"run {n + 1}: {json.dumps(runs[-1])}", flush=True)
    key = f"healthz_after_{args.wait:g}s"
    print(json.dumps({
        "soft_limit": args.soft_limit, "clients": args.clients, "runs": len(runs),
        "healthz_s_median": statistics.median(r[key][1] for r in runs),
        "healthz_statuses": [r[key][0] for r in runs],
        "log_growth_bytes_median": statistics.median(r["log_growth_bytes"] for r in runs),
        "peak_descriptors_max": max(r["peak_descriptors"] for r in runs),
        "all_ok": all(r["ok"] for r in runs)}))
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
