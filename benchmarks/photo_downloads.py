"""What a client can make the server hold with photos (issue 25): a real `sealcheck serve`
(SQLite, its own data directory), its resident memory sampled from /proc every 10 ms.

1. Downloads of an 80 MP stored photo (a lossless WebP of one colour, a few dozen bytes):
   `--concurrent` (6) at once while it is not re-encoded yet, then the same again from the
   file; then `--flood` (50) at once of another such photo. Reported: statuses (503s with
   Retry-After), peak RSS per phase. Target: peak < 1.5 GB at 6, no growth at 50.
2. CPU amplification: an inspection with `--extra` (15) more 80 MP WebPs beside the compared
   photo (16 photos is the most a request may carry since service/limits.py; 31 extras, the
   issue's case, are refused with 413 before any is read), and a seal of a 16-bit RGBA PNG at
   the pixel cap (10000 x 8000, 640 MB decoded):
   the answer's status and time.
3. Spec sheets: `--specs` (3) seals with a 250 KB YAML spec at once, and the slowest
   /healthz answer meanwhile.

    python benchmarks/photo_downloads.py [--workers 2] [--json out.json]

Runs against whatever code PYTHONPATH puts first, so the same script measures before and after.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testkit.bad_inputs import one_colour_webp  # noqa: E402
from testkit.photos import photo_pair  # noqa: E402
from testkit.server import free_port, serving_process  # noqa: E402

WIDTH, HEIGHT = 10_000, 8_000  # 80 MP: the default SEALCHECK_MAX_PIXELS


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class RssSampler:
    """The server's resident memory every 10 ms in a thread; `peak()` since the last reset."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._peak = rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self._peak = max(self._peak, rss_mb(self.pid))

    @contextlib.contextmanager
    def phase(self) -> Iterator[dict]:
        self._peak = rss_mb(self.pid)
        out: dict = {"rss_before_mb": round(self._peak)}
        yield out
        time.sleep(0.05)
        out["peak_rss_mb"] = round(self._peak)
        out["rss_after_mb"] = round(rss_mb(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def png16_rgba_at(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG of zeros, compressed row by row (never 640 MB in memory here)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    deflate = zlib.compressobj(9)
    row = b"\x00" * (1 + 8 * width)
    idat = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6,
                                                              0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def big_spec() -> str:
    """~250 KB of YAML that parses (slowly) into a spec with a field it refuses."""
    return "tolerances:\n  delta_e00: 2.0\nnotes:\n" + "".join(
        f"  - item {i}: [a, b, c]\n" for i in range(10_000))


def get_all(base: str, key: str, path: str, n: int) -> tuple[list[int], list[bytes], float]:
    """`n` GETs of `path` at once: (statuses, bodies of the 200s, wall seconds)."""
    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                          timeout=300) as client:
            return client.get(path)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - start
    for answer in answers:
        if answer.status_code == 503 and "retry-after" not in answer.headers:
            raise SystemExit("a 503 without Retry-After")
        if answer.status_code not in (200, 503):
            raise SystemExit(f"unexpected {answer.status_code}: {answer.text[:200]}")
    return ([a.status_code for a in answers], [a.content for a in answers
                                               if a.status_code == 200], elapsed)


def extra_photos(client: httpx.Client, golden_id: str, unit: bytes, extra: bytes,
                 n: int) -> dict:
    """An inspection of `unit` with `n` copies of `extra` beside it (only `unit` is compared)."""
    start = time.perf_counter()
    answer = client.post(f"/v1/goldens/{golden_id}/inspections", files=[
        ("images", ("unit.jpg", unit, "image/jpeg")),
        *[("images", (f"extra{i}.webp", extra, "image/webp")) for i in range(n)]])
    return {"extra": n, "status": answer.status_code,
            "seconds": round(time.perf_counter() - start, 2)}


def deep_png(client: httpx.Client) -> dict:
    """A seal of a 16-bit RGBA PNG at the pixel cap (8 bytes per pixel once decoded)."""
    deep = png16_rgba_at(WIDTH, HEIGHT)
    start = time.perf_counter()
    answer = client.post("/v1/goldens", data={"name": "deep", "sku": "PHOTO-2"},
                         files={"images": ("deep.png", deep, "image/png")})
    return {"bytes": len(deep), "status": answer.status_code,
            "seconds": round(time.perf_counter() - start, 2),
            "detail": answer.json().get("detail", "")[:160] if answer.status_code >= 400
            else ""}


def big_specs(base: str, key: str, golden: bytes, n: int) -> dict:
    """`n` seals at once with a 250 KB YAML spec, /healthz asked every 20 ms meanwhile."""
    spec = big_spec()
    health: list[float] = []
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=base, timeout=60) as probe:
            while not done.is_set():
                start = time.perf_counter()
                probe.get("/healthz")
                health.append(time.perf_counter() - start)
                time.sleep(0.02)

    def seal_with_spec(_: int) -> int:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                          timeout=300) as client:
            return client.post("/v1/goldens", data={"name": "s", "sku": "S", "spec": spec},
                               files={"images": ("g.jpg", golden, "image/jpeg")}).status_code

    watcher = threading.Thread(target=watch)
    watcher.start()
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(seal_with_spec, range(n)))
    done.set()
    watcher.join()
    return {"n": n, "spec_bytes": len(spec), "statuses": statuses(codes),
            "seconds": round(time.perf_counter() - start, 2),
            "healthz_max_ms": round(1000 * max(health)), "healthz_answers": len(health)}


def statuses(codes: list[int]) -> dict[str, int]:
    return {str(code): codes.count(code) for code in sorted(set(codes))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrent", type=int, default=6)
    parser.add_argument("--flood", type=int, default=50)
    parser.add_argument("--extra", type=int, default=15)
    parser.add_argument("--specs", type=int, default=3)
    parser.add_argument("--phases", default="downloads,extra,deep,specs",
                        help="which to run (the old code cannot survive --flood 50)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    golden, unit, _ = photo_pair()
    big = [one_colour_webp(WIDTH, HEIGHT, colour) for colour in ((200, 30, 40), (20, 90, 200))]
    results: dict = {"photo": f"{WIDTH}x{HEIGHT} lossless WebP, {len(big[0])} bytes",
                     "workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="sealcheck-photos-") as tmp, serving_process(
            free_port(), Path(tmp), {"SEALCHECK_WORKERS": str(args.workers)}
    ) as (base, key, server):
        sampler = RssSampler(server.pid)
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                              timeout=600)
        sealed = client.post("/v1/goldens", data={"name": "photos", "sku": "PHOTO-1"}, files=[
            ("images", ("golden.jpg", golden, "image/jpeg")),
            *[("images", (f"big{i}.webp", data, "image/webp")) for i, data in enumerate(big)]])
        sealed.raise_for_status()
        golden_id = sealed.json()["id"]
        results["rss_idle_mb"] = round(rss_mb(server.pid))

        phases = set(args.phases.split(","))
        downloads = [("first_downloads", 1, args.concurrent),
                     ("cached_downloads", 1, args.concurrent), ("flood", 2, args.flood)]
        for name, position, n in downloads if "downloads" in phases else []:
            if n == 0:
                continue
            with sampler.phase() as phase:
                codes, bodies, elapsed = get_all(base, key, f"/v1/goldens/{golden_id}/images/"
                                                 f"{position}", n)
            phase.update(n=n, statuses=statuses(codes), seconds=round(elapsed, 2),
                         identical=len({*bodies}) <= 1)
            results[name] = phase
            print(name, phase, flush=True)

        if "extra" in phases:
            with sampler.phase() as phase:
                phase.update(extra_photos(client, golden_id, unit, big[0], args.extra))
            results["extra_photos"] = phase
            print("extra_photos", phase, flush=True)
        if "deep" in phases:
            with sampler.phase() as phase:
                phase.update(deep_png(client))
            results["png16_rgba_at_cap"] = phase
            print("png16_rgba_at_cap", phase, flush=True)
        if "specs" in phases:
            results["big_specs"] = big_specs(base, key, golden, args.specs)
            print("big_specs", results["big_specs"], flush=True)
        sampler.stop()
        client.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
