"""Crash test: `kill -9` of the server during 50 concurrent uploads, restart, verify.

For each database (SQLite in WAL mode, and PostgreSQL), a real `sealcheck serve` gets a sealed
golden, then 50 clients upload a unit photo each at once (every upload's bytes differ, so each
is a file of its own; the queue is made large enough to hold them all, so they are in flight,
not refused with 503). At a random moment after the first acknowledgements the server is killed
with SIGKILL, mid-upload, mid-pipeline and mid-commit for different requests. It is restarted
and every inspection that got its 201 is checked:

- the record reads back (200) with the report it was acknowledged with, its photo's stored
  bytes hash to what was uploaded, and its overlay, defect map, aligned picture and re-encoded
  photo are served;
- no orphan rows (an inspection without its photo rows, photo rows without an inspection, rows
  that name a missing file), SQLite ``PRAGMA integrity_check`` = ok and ``foreign_key_check``
  empty; on PostgreSQL the foreign keys are checked by query and the indexes with amcheck when
  the extension is available;
- no temporary files left (the store sweeps ``tmp/*.part`` when it opens).

Unreferenced files (a photo written just before the kill, whose row never committed) are
counted and reported: the store writes every file before the row that names it, so a crash
can leave such a file, never the reverse (see service/storage.py). Then the garbage collector
(``sealcheck gc``, service/gc.py) runs with the server stopped, and must leave none.

Usage::

    python benchmarks/crash_test.py [--rounds 3] [--uploads 50] [--backend sqlite postgresql]

Exit status 0 when no acknowledged inspection is lost or damaged and the checks hold.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._reliability import Database, Server, database, photo_pairs  # noqa: E402
from testkit.server import free_port  # noqa: E402


def _upload(base: str, key: str, golden_id: str, unit: bytes, n: int) -> dict | None:
    """One upload; the acknowledged record, or None if the server died or refused."""
    try:
        response = httpx.post(f"{base}/v1/goldens/{golden_id}/inspections",
                              headers={"Authorization": f"Bearer {key}"},
                              data={"unit_label": f"unit {n}"},
                              files={"images": (f"unit{n}.jpg", unit, "image/jpeg")},
                              timeout=600)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 201 else None


def _orphans(db: Database) -> dict[str, int]:
    """Rows that break the invariants, and files no row names (counted separately)."""
    from service.db import referenced_blobs
    from service.storage import BlobStore

    engine = db.engine()
    try:
        with engine.connect() as connection:
            q = lambda sql: connection.execute(sa.text(sql)).scalar_one()  # noqa: E731
            found = {
                "inspections_without_photos": q(
                    "SELECT count(*) FROM inspections i WHERE NOT EXISTS (SELECT 1 FROM "
                    "inspection_images m WHERE m.inspection_seq = i.seq)"),
                "photos_without_inspection": q(
                    "SELECT count(*) FROM inspection_images m WHERE NOT EXISTS (SELECT 1 FROM "
                    "inspections i WHERE i.seq = m.inspection_seq)"),
                "goldens_without_photos": q(
                    "SELECT count(*) FROM goldens g WHERE NOT EXISTS (SELECT 1 FROM "
                    "golden_images m WHERE m.golden_seq = g.seq)"),
            }
            names = referenced_blobs(connection)
            if db.backend == "sqlite":
                found["integrity_check_not_ok"] = int(
                    connection.execute(sa.text("PRAGMA integrity_check")).scalar_one() != "ok")
                found["foreign_key_violations"] = len(connection.execute(
                    sa.text("PRAGMA foreign_key_check")).all())
            else:
                found["amcheck_failures"] = _amcheck(connection, db.schema)
    finally:
        engine.dispose()
    blobs = BlobStore(db.data_dir)
    stored = {p.name for p in (db.data_dir / "blobs").rglob("*") if p.is_file()}
    found["rows_naming_missing_files"] = sum(1 for n in names if not blobs.exists(n))
    found["temporary_files_left"] = sum(1 for _ in (db.data_dir / "tmp").glob("*"))
    found["unreferenced_files"] = len(stored - names)  # reported, allowed (see docstring)
    return found


def _collect(db: Database) -> int:
    """Run the garbage collector with no age limit; the unreferenced files left after it."""
    import datetime as dt

    from service.gc import collect_garbage
    from service.storage import BlobStore

    engine = db.engine()
    try:
        collect_garbage(engine, BlobStore(db.data_dir), dt.timedelta(0))
        return collect_garbage(engine, BlobStore(db.data_dir), dt.timedelta(0),
                               dry_run=True).removed
    finally:
        engine.dispose()


def _amcheck(connection, schema: str | None) -> int:
    """B-tree index checks of the run's schema; -1 when amcheck cannot be installed."""
    try:
        connection.execute(sa.text(f'CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA "{schema}"'))
        connection.commit()
    except sa.exc.DBAPIError:
        connection.rollback()
        return -1
    indexes = connection.execute(sa.text(
        "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN "
        "pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam "
        "WHERE n.nspname = :schema AND a.amname = 'btree'"), {"schema": schema}).all()
    failures = 0
    for (oid,) in indexes:
        try:
            connection.execute(sa.text(f'SELECT "{schema}".bt_index_check(:oid, true)'),
                               {"oid": oid})
        except sa.exc.DBAPIError:
            connection.rollback()
            failures += 1
    return failures


def _verify(server: Server, key: str, acknowledged: list[dict], uploads: list[bytes]
            ) -> list[str]:
    """Problems with the acknowledged inspections after the restart (empty when all is well)."""
    from service.storage import BlobStore

    blobs = BlobStore(server.db.data_dir)
    problems = []
    with httpx.Client(base_url=server.base, timeout=120,
                      headers={"Authorization": f"Bearer {key}"}) as http:
        for record in acknowledged:
            got = http.get(f"/v1/inspections/{record['id']}")
            if got.status_code != 200:
                problems.append(f"{record['id']}: {got.status_code} after the restart")
                continue
            if got.json()["report"] != record["report"]:
                problems.append(f"{record['id']}: the stored report differs from the answer")
            n = int(record["unit_label"].split()[1])
            stored = blobs.path(record["images"][0]["sha256"])
            if not stored.is_file() or hashlib.sha256(stored.read_bytes()).hexdigest() != \
                    hashlib.sha256(uploads[n]).hexdigest():
                problems.append(f"{record['id']}: the stored photo is not the uploaded one")
            paths = [record["overlay_url"], record["defect_map_url"],
                     f"/v1/inspections/{record['id']}/images/0"]
            if record["report"]["registration"]["ok"]:
                paths.append(f"/v1/inspections/{record['id']}/aligned.png")
            for path in paths:
                answer = http.get(path)
                if answer.status_code != 200 or len(answer.content) < 100:
                    problems.append(f"{record['id']}: {path} answers {answer.status_code}")
    return problems


def _round(server: Server, key: str, golden_id: str, unit: bytes, uploads_n: int,
           rng: random.Random) -> dict:
    # Unique bytes per upload (a JPEG ignores what follows its end marker).
    uploads = [unit + rng.randbytes(32) for _ in range(uploads_n)]
    acknowledged: list[dict] = []
    lock = threading.Lock()
    kill_after = rng.randint(1, max(1, uploads_n // 5))  # acknowledgements before the kill
    extra_delay = rng.uniform(0.0, 2.0)
    with concurrent.futures.ThreadPoolExecutor(uploads_n) as clients:
        def run(n: int) -> None:
            record = _upload(server.base, key, golden_id, uploads[n], n)
            if record is not None:
                with lock:
                    acknowledged.append(record)

        futures = [clients.submit(run, n) for n in range(uploads_n)]
        deadline = time.monotonic() + 600
        while len(acknowledged) < kill_after and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(extra_delay)
        in_flight = sum(1 for f in futures if not f.done())
        server.kill_9()
        for future in futures:
            future.result()
    with lock:
        acked = list(acknowledged)
    server.start()  # the same database and data directory
    problems = _verify(server, key, acked, uploads)
    return {"acknowledged": len(acked), "in_flight_at_kill": in_flight,
            "found": len(acked) - sum(1 for p in problems if "after the restart" in p),
            "problems": problems}


def run_backend(backend: str, rounds: int, uploads_n: int, size: tuple[int, int],
                seed: int) -> dict:
    rng = random.Random(seed)
    pair = photo_pairs(size)[0]
    with tempfile.TemporaryDirectory(prefix=f"sealcheck-crash-{backend}-") as tmp, \
            database(backend, Path(tmp)) as db:
        server = Server(db, free_port(), extra_env={"SEALCHECK_QUEUE_SIZE": str(uploads_n)})
        key = server.create_key("crash")
        server.start()
        try:
            sealed = httpx.post(f"{server.base}/v1/goldens", timeout=300,
                                headers={"Authorization": f"Bearer {key}"},
                                data={"name": "crash", "sku": "CRASH",
                                      "spec": json.dumps({"roi": pair["roi"]})},
                                files={"images": ("golden.jpg", pair["golden"], "image/jpeg")})
            assert sealed.status_code == 201, sealed.text
            results = []
            for number in range(rounds):
                result = _round(server, key, sealed.json()["id"], pair["unit"], uploads_n, rng)
                results.append(result)
                print(f"  {backend} round {number + 1}: {result['acknowledged']} acknowledged, "
                      f"{result['in_flight_at_kill']} in flight at the kill, {result['found']} "
                      f"found after the restart, {len(result['problems'])} problems",
                      flush=True)
            server.stop()
            orphans = _orphans(db)
            # What `sealcheck gc` makes of them, with the server stopped (so age 0 is safe).
            orphans["unreferenced_files_after_gc"] = _collect(db)
        finally:
            server.stop()
    return {"rounds": results, "checks": orphans,
            "acknowledged": sum(r["acknowledged"] for r in results),
            "found": sum(r["found"] for r in results),
            "problems": [p for r in results for p in r["problems"]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="kills per backend (default 3)")
    parser.add_argument("--uploads", type=int, default=50, help="concurrent uploads per round")
    parser.add_argument("--backend", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"])
    parser.add_argument("--size", default="1024x768", help="photo size WxH")
    parser.add_argument("--seed", type=int, default=int(time.time()),
                        help="seed of the kill moments (printed, to replay a run)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    print(f"crash test: {args.uploads} concurrent uploads, kill -9, restart; {args.rounds} "
          f"rounds per backend; seed {args.seed}", flush=True)
    figures = {backend: run_backend(backend, args.rounds, args.uploads, size, args.seed)
               for backend in args.backend}
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    ok = True
    for backend, result in figures.items():
        checks = {k: v for k, v in result["checks"].items() if k != "unreferenced_files"}
        bad = {k: v for k, v in checks.items() if v > 0}
        lost = result["acknowledged"] - result["found"]
        ok &= lost == 0 and not result["problems"] and not bad
        print(f"crash {backend}: {result['acknowledged']} acknowledged, {result['found']} "
              f"found, {lost} lost, {len(result['problems'])} damaged; checks "
              f"{'ok' if not bad else bad}; {result['checks']['unreferenced_files']} "
              f"unreferenced files from killed uploads, "
              f"{result['checks']['unreferenced_files_after_gc']} after `sealcheck gc`")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
