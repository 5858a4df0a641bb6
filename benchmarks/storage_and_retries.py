"""Issue 25's storage and retry figures, against a real `sealcheck serve` on SQLite and PostgreSQL.

1. Disk full. The data directory is a small tmpfs (SQLite's database file is on it too; the
   PostgreSQL server's own disk is not). A golden, a lot and a few inspections are acknowledged,
   then the disk is filled and inspections, seals and lots are sent: each answer's status is
   counted, ``/readyz`` read, every acknowledged inspection read back (report and photo bytes),
   the files no row names counted before and after ``sealcheck gc``. Then the disk is freed and
   the time until ``/readyz`` is 200 again and one more inspection is acknowledged is measured.
2. Retries. An inspection in a lot is POSTed with one Idempotency-Key, and the client hangs up
   before the answer (a 50 ms read timeout); it is sent twice more, and another inspection is
   sent 4 times at once with a key of its own. Counted: inspections made, the lot's count,
   distinct bodies among the answers received and the first answer as the server stored it.

Usage::

    python benchmarks/storage_and_retries.py [--backend sqlite postgresql]

Needs root (or CAP_SYS_ADMIN) to mount the tmpfs; elsewhere part 1 says so and is skipped.
Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import hashlib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._reliability import Server, database  # noqa: E402
from testkit.photos import photo_pair  # noqa: E402
from testkit.server import SEALCHECK, free_port  # noqa: E402
from testkit.small_fs import fill  # noqa: E402

MB = 1024 * 1024


def _unreferenced(server: Server) -> int:
    from service.db import referenced_blobs
    from service.storage import BlobStore

    engine = server.db.engine()
    try:
        with engine.connect() as connection:
            names = referenced_blobs(connection)
    finally:
        engine.dispose()
    return sum(1 for sha, _ in BlobStore(server.db.data_dir).files() if sha not in names)


def _stored_answer(server: Server, idempotency_key: str) -> bytes:
    import sqlalchemy as sa

    from service.db import IdempotentRequest

    engine = server.db.engine()
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.select(IdempotentRequest.body).where(
                IdempotentRequest.key == idempotency_key)).encode()
    finally:
        engine.dispose()


def _inspect(http: httpx.Client, golden_id: str, unit: bytes, **data) -> httpx.Response:
    return http.post(f"/v1/goldens/{golden_id}/inspections", data=data,
                     files={"images": ("unit.jpg", unit, "image/jpeg")})


def _disk_full(backend: str, root: Path) -> bool:
    mount = root / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"[{backend}] disk full: skipped, cannot mount a tmpfs ({done.stderr.strip()})")
        return True
    golden, unit, _ = photo_pair("stain")
    unique = (unit + uuid.uuid4().bytes for _ in iter(int, 1))  # a JPEG ignores what follows
    try:
        with database(backend, mount) as db:
            server = Server(db, free_port(), {"SEALCHECK_MAX_UPLOAD_BYTES": str(2 * MB)})
            key = server.create_key("full")
            server.start()
            try:
                with httpx.Client(base_url=server.base, timeout=120,
                                  headers={"Authorization": f"Bearer {key}"}) as http:
                    golden_id = http.post("/v1/goldens", data={"name": "g", "sku": "F-1"},
                                          files={"images": ("g.jpg", golden, "image/jpeg")}
                                          ).json()["id"]
                    acknowledged = {}
                    for _ in range(5):
                        photo = next(unique)
                        record = _inspect(http, golden_id, photo).json()
                        acknowledged[record["id"]] = (record["report"], photo)
                    filled = fill(mount / "filler")
                    statuses: dict[str, collections.Counter] = collections.defaultdict(
                        collections.Counter)
                    for n in range(10):
                        statuses["inspection"][_inspect(http, golden_id, next(unique))
                                               .status_code] += 1
                        statuses["golden"][http.post(
                            "/v1/goldens", data={"name": "g", "sku": f"F-{n + 2}"},
                            files={"images": ("g.jpg", next(unique), "image/jpeg")}
                        ).status_code] += 1
                        statuses["lot"][http.post("/v1/lots", json={
                            "golden_id": golden_id, "lot_size": 50}).status_code] += 1
                    ready = http.get("/readyz")
                    intact = sum(
                        1 for id_, (report, photo) in acknowledged.items()
                        if http.get(f"/v1/inspections/{id_}").json()["report"] == report
                        and hashlib.sha256(photo).hexdigest() in {
                            i["sha256"] for i in http.get(f"/v1/inspections/{id_}").json()[
                                "images"]})
                    orphans_before_gc = _unreferenced(server)
                    (mount / "filler").unlink()
                    start = time.monotonic()
                    while http.get("/readyz").status_code != 200:
                        time.sleep(0.1)
                    recovered_s = time.monotonic() - start
                    after = _inspect(http, golden_id, next(unique)).status_code
            finally:
                server.stop()
            gc = subprocess.run([SEALCHECK, "gc"], env=server.env(), capture_output=True,
                                text=True, timeout=120)
            orphans_after_gc = _unreferenced(server)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    print(f"[{backend}] disk full ({filled} bytes of filler on a 24 MB tmpfs):")
    for what, counter in statuses.items():
        print(f"  {what} POSTs: " + ", ".join(f"{n} x {s}" for s, n in sorted(counter.items())))
    print(f"  /readyz: {ready.status_code} {ready.json().get('detail', '')}")
    print(f"  acknowledged before, intact after: {intact} / {len(acknowledged)}")
    print(f"  unreferenced files: {orphans_before_gc} before gc, {orphans_after_gc} after "
          f"`sealcheck gc` ({gc.stdout.strip().splitlines()[0] if gc.stdout else gc.stderr})")
    print(f"  freed: /readyz 200 after {recovered_s:.2f} s; the next inspection {after}")
    stores_on_disk = ("inspection", "golden") + (("lot",) if backend == "sqlite" else ())
    return (all(set(statuses[w]) <= {503, 507} for w in stores_on_disk)
            and ready.status_code == 503 and intact == len(acknowledged)
            and orphans_before_gc == orphans_after_gc == 0 and after == 201)


def _retries(backend: str, root: Path) -> bool:
    golden, unit, _ = photo_pair("stain")
    with database(backend, root / "retries") as db:
        server = Server(db, free_port())
        key = server.create_key("retries")
        server.start()
        headers = {"Authorization": f"Bearer {key}"}
        try:
            with httpx.Client(base_url=server.base, timeout=120, headers=headers) as http:
                golden_id = http.post("/v1/goldens", data={"name": "g", "sku": "R-1"},
                                      files={"images": ("g.jpg", golden, "image/jpeg")}
                                      ).json()["id"]
                results = {}
                for case, first_timeout, tries in (("dropped, then 2 retries", 0.05, 2),
                                                   ("4 at once", None, 4)):
                    lot = http.post("/v1/lots", json={"golden_id": golden_id,
                                                      "lot_size": 500}).json()["id"]
                    key_headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}

                    def send(timeout: float, lot: str = lot, key_headers=key_headers):
                        with httpx.Client(base_url=server.base, timeout=timeout,
                                          headers=key_headers) as client:
                            return _inspect(client, golden_id, unit, lot_id=lot)

                    if first_timeout is not None:
                        try:
                            send(first_timeout)
                        except httpx.ReadTimeout:
                            pass
                        answers = [send(120) for _ in range(tries)]
                    else:
                        with concurrent.futures.ThreadPoolExecutor(tries) as pool:
                            answers = list(pool.map(send, [120] * tries))
                    made = http.get("/v1/inspections", params={"lot_id": lot}).json()["items"]
                    counted = http.get(f"/v1/lots/{lot}").json()["inspected"]
                    # The first answer as the server gave it (and keeps it for the retries).
                    first = _stored_answer(server, key_headers["Idempotency-Key"])
                    results[case] = (len(made), counted, [a.status_code for a in answers],
                                     len({a.content for a in answers} | {first}))
        finally:
            server.stop()
    print(f"[{backend}] an inspection POSTed with one Idempotency-Key:")
    for case, (made, counted, statuses, distinct) in results.items():
        print(f"  {case}: {made} inspection(s), lot count {counted}, answers received "
              f"{statuses}; {distinct} distinct body among them and the first answer sent")
    return all(made == counted == distinct == 1 and set(statuses) == {201}
               for made, counted, statuses, distinct in results.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    ok = True
    for backend in args.backend:
        with tempfile.TemporaryDirectory(prefix="sealcheck-storage-") as root:
            ok &= _disk_full(backend, Path(root))
            ok &= _retries(backend, Path(root))
    print("all checks hold" if ok else "CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
