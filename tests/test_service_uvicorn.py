"""The service as it runs in production: `sealcheck serve` (uvicorn) in a subprocess.

The README's session (`sealcheck keys create`, seal, inspect, fetch the overlay) on a real
server, killed with SIGKILL while inspections are uploading: after a restart, every inspection
that got its 201 is still there with its photos, and no row names a missing file.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import time

import httpx
import pytest

from testkit.photos import photo_pair, sha256
from testkit.server import SEALCHECK, free_port, stop
from testkit.service import (
    BACKENDS,
    auth,
    dangling_files,
    server_env,
    settings_for,
    start_server,
)


def _create_key(settings, tenant: str) -> str:
    done = subprocess.run([SEALCHECK, "keys", "create", "--tenant", tenant],
                          env=server_env(settings), capture_output=True, text=True,
                          cwd=settings.data_dir, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sck_"), done.stdout  # the key alone
    return lines[0]


def _seal(base: str, key: str) -> str:
    golden, _, roi = photo_pair()
    response = httpx.post(f"{base}/v1/goldens", headers=auth(key), timeout=60,
                          data={"name": "mug", "sku": "MUG-1", "spec": f'{{"roi": {roi}}}'},
                          files={"images": ("golden.jpg", golden, "image/jpeg")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_settings_pixel_floor_matches_the_decoder():
    from service import settings
    from vision.decode import MIN_SIDE

    assert settings._MIN_PIXELS == MIN_SIDE * MIN_SIDE


def _inspect(base: str, key: str, golden_id: str, unit: bytes, n: int) -> str | None:
    """One upload; the inspection id if it got its 201, None if the server died or refused."""
    try:
        response = httpx.post(f"{base}/v1/goldens/{golden_id}/inspections", headers=auth(key),
                              data={"unit_label": f"unit {n}"},
                              files={"images": (f"unit{n}.jpg", unit, "image/jpeg")},
                              timeout=60)
    except httpx.HTTPError:
        return None
    return response.json()["id"] if response.status_code == 201 else None


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_during_uploads_loses_no_acknowledged_inspection(backend, tmp_path, request):
    settings = settings_for(backend, tmp_path, request)
    key = _create_key(settings, "crash-test")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(settings, port, tmp_path / "server.log")
    # Different bytes per upload, so every unit photo is a file of its own.
    units = [photo_pair()[1] + bytes([n]) * 16 for n in range(12)]
    acknowledged: list[str] = []
    try:
        golden_id = _seal(base, key)
        with concurrent.futures.ThreadPoolExecutor(4) as clients:
            futures = [clients.submit(_inspect, base, key, golden_id, unit, n)
                       for n, unit in enumerate(units)]
            deadline = time.monotonic() + 120
            health_ms = []
            while time.monotonic() < deadline:
                done = [f.result() for f in futures if f.done()]
                start = time.perf_counter()
                assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
                health_ms.append((time.perf_counter() - start) * 1000)
                if sum(1 for r in done if r) >= 2:
                    break
                time.sleep(0.05)
            os.kill(server.pid, signal.SIGKILL)  # while the other uploads are in flight
            server.wait()
            results = [f.result() for f in futures]
        acknowledged = [r for r in results if r]
        assert 2 <= len(acknowledged) < len(units), "the kill must land during the uploads"
        assert max(health_ms) < 1000, health_ms  # health checks stay fast under load
    finally:
        stop(server)

    assert dangling_files(settings) == []
    server = start_server(settings, port, tmp_path / "server.log")
    try:
        for inspection_id in acknowledged:
            record = httpx.get(f"{base}/v1/inspections/{inspection_id}", headers=auth(key))
            assert record.status_code == 200, record.text
            n = int(record.json()["unit_label"].split()[1])
            photo = httpx.get(f"{base}/v1/inspections/{inspection_id}/images/0",
                              headers=auth(key))
            # Served re-encoded; the stored original is named by the upload's hash.
            assert photo.status_code == 200 and photo.content.startswith(b"\xff\xd8")
            assert record.json()["images"][0]["sha256"] == sha256(units[n])
            for picture in ("overlay_url", "defect_map_url"):
                png = httpx.get(base + record.json()[picture], headers=auth(key))
                assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        # The prepared golden is gone with the old process: rebuilt from the stored photo.
        again = _inspect(base, key, golden_id, units[0], 0)
        assert again is not None
        verdict = httpx.get(f"{base}/v1/inspections/{again}", headers=auth(key)).json()
        assert verdict["verdict"] == "pass", verdict["report"]["reasons"]
        # The rest of the README's session: docs and metrics answer.
        assert "swagger" in httpx.get(f"{base}/docs").text.lower()
        assert "sealcheck_http_requests_total" in httpx.get(f"{base}/metrics").text
        if backend == "sqlite":  # the default database: SQLite in WAL mode, in the data dir
            assert (tmp_path / "sealcheck.db-wal").exists()
    finally:
        stop(server)
