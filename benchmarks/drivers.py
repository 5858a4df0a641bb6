"""bench_pipeline.py's batch and HTTP drivers: ``sealcheck rescore`` with 1 and 2 workers, and
concurrent clients against a real ``sealcheck serve``."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from testkit.bench_table import HttpResult


def time_batch(pairs: int, repeat: int, rounds: int, cache: Path) -> dict[str, dict]:
    """`sealcheck rescore` with 1 and 2 workers (bench_rescore.py's runs): the best round of
    each configuration, keyed by its label ("1 worker", "2 workers")."""
    from benchmarks.bench_rescore import CONFIGS, best_rows, throughput

    configs = tuple(config for config in CONFIGS if config[0] in ("1 worker", "2 workers"))
    return best_rows(throughput(pairs, repeat, rounds, configs=configs, cache=cache))


def time_http(directory: Path, clients: int, per_client: int) -> HttpResult:
    """`clients` threads, each POSTing `per_client` inspections of the pair's unit JPEG against
    its sealed golden on a fresh `sealcheck serve` (bench_service.py's), all started at once.

    The server's queue is sized for the clients (``SEALCHECK_QUEUE_SIZE``); a 503 (its
    back-pressure) would make the client wait min(Retry-After, 1 s) and try again, as in
    benchmarks/load_test.py. Any other answer than 201 is an error.
    """
    import httpx

    from testkit.server import free_port, inspect_unit, seal_golden, serving

    golden = (directory / "golden.jpg").read_bytes()
    unit = (directory / "unit.jpg").read_bytes()
    lock = threading.Lock()
    answered, waited, errors = [], [], []
    verdicts: dict[str, int] = {}
    busy = 0

    with (tempfile.TemporaryDirectory(prefix="sealcheck-bench-") as data_dir,
          # Deployed for this load: a queue that holds every client's request, so the figure
          # is the service's latency, not the default queue's (2 x workers) 503 back-pressure.
          serving(free_port(), Path(data_dir),
                  {"SEALCHECK_QUEUE_SIZE": str(clients)}) as (base, key)):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, timeout=300, headers=headers) as client:
            golden_id, _ = seal_golden(client, golden)
            inspect_unit(client, golden_id, unit).raise_for_status()  # warm-up, not counted
        barrier = threading.Barrier(clients + 1, timeout=120)  # all start together

        def run_client() -> None:
            nonlocal busy
            with httpx.Client(base_url=base, timeout=300, headers=headers) as client:
                barrier.wait()
                for _ in range(per_client):
                    first = time.perf_counter()
                    while True:
                        start = time.perf_counter()
                        try:
                            response = inspect_unit(client, golden_id, unit)
                        except httpx.HTTPError as exc:
                            with lock:
                                errors.append(f"{type(exc).__name__}: {exc}")
                            break
                        end = time.perf_counter()
                        if response.status_code == 503:
                            with lock:
                                busy += 1
                            time.sleep(min(float(response.headers.get("retry-after", 1)), 1.0))
                            continue
                        with lock:
                            if response.status_code == 201:
                                answered.append((end - start) * 1e3)
                                waited.append((end - first) * 1e3)
                                verdict = response.json()["verdict"]
                                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                            else:
                                errors.append(f"{response.status_code} {response.text[:200]}")
                        break

        threads = [threading.Thread(target=run_client, name=f"bench-client-{n}")
                   for n in range(clients)]
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    return HttpResult(clients, answered, waited, busy, errors, wall, verdicts)
