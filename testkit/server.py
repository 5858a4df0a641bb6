"""A real ``sealcheck serve`` in a subprocess, as benchmarks and server tests drive it."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

SEALCHECK = str(Path(sys.executable).with_name("sealcheck"))
POSTGRES_URL = os.environ.get("SEALCHECK_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_time_ms(response: httpx.Response) -> float:
    match = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    if not match:
        raise RuntimeError(f"no Server-Timing header in the answer ({response.status_code})")
    return float(match.group(1))


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (a graceful shutdown, as a service manager stops it), SIGKILL if it has not
    ended within `timeout` s."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in 120 s")


@contextlib.contextmanager
def serving(port: int, data_dir: Path, settings: dict[str, str] | None = None
            ) -> Iterator[tuple[str, str]]:
    """`sealcheck serve` on 127.0.0.1:`port`, SQLite and photos in `data_dir`, ready to answer;
    yields (base URL, API key of tenant "bench") and stops the server afterwards. `settings`:
    more ``SEALCHECK_*`` environment variables for the server."""
    with serving_process(port, data_dir, settings) as (base, key, _):
        yield base, key


@contextlib.contextmanager
def serving_process(port: int, data_dir: Path, settings: dict[str, str] | None = None
                    ) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """:func:`serving`, also yielding the server's process (its pid for /proc readings)."""
    env = dict(os.environ, SEALCHECK_DATA_DIR=str(data_dir), **(settings or {}))
    env.pop("SEALCHECK_DATABASE_URL", None)
    key = subprocess.run([SEALCHECK, "keys", "create", "--tenant", "bench"], env=env,
                         check=True, capture_output=True, text=True).stdout.strip()
    base = f"http://127.0.0.1:{port}"
    with open(data_dir / "server.log", "wb") as log:
        server = subprocess.Popen([SEALCHECK, "serve", "--port", str(port)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(base, server)
            yield base, key, server
        finally:
            stop(server)


def seal_golden(client: httpx.Client, golden: bytes) -> tuple[str, float]:
    """Seal a golden from one JPEG: (its id, server ms)."""
    sealed = client.post("/v1/goldens", data={"name": "bench", "sku": "BENCH-1"},
                         files={"images": ("golden.jpg", golden, "image/jpeg")})
    sealed.raise_for_status()
    return sealed.json()["id"], server_time_ms(sealed)


def inspect_unit(client: httpx.Client, golden_id: str, unit: bytes) -> httpx.Response:
    """POST one unit JPEG as an inspection against a sealed golden."""
    return client.post(f"/v1/goldens/{golden_id}/inspections",
                       files={"images": ("unit.jpg", unit, "image/jpeg")})
