"""The driver of `sealcheck rescore MANIFEST --out RESULTS`: what to do, what is done, writing.

The driver resolves every item (paths, spec sheets, stored goldens) itself, so that workers
need no database and a bad item becomes an error result instead of stopping the job. It is the
only writer of RESULTS (:class:`service.rescore.results.ResultsFile`), appending each result as
the engine hands it over.

An item already in RESULTS is skipped when its result was made by the same scoring
(``scoring_version``) from the same inputs (SHA-256 of the golden and unit files and of the spec
sheet). Re-reading hundreds of thousands of photos to check that would cost as much as a
fraction of the job, so a file whose path, size and modification time equal those recorded in
the result is taken to hold the recorded bytes (as rsync and make do); any other is hashed.
Results of internal errors (a worker died, a bug) are retried; those of bad inputs are not,
unless the input changed.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from service.rescore import worker
from service.rescore.manifest import ManifestItem, read_manifest, resolve
from service.rescore.results import LockedError, ResultsFile, slim
from vision.decode import DEFAULT_MAX_PIXELS

__all__ = ["JobError", "RescoreOptions", "canonical_spec_sha256", "make_engine",
           "rescore_manifest", "run_tasks", "scoring_version_here", "summarise"]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
_SIDES = ("golden", "unit")


class JobError(ValueError):
    """The job cannot start (bad manifest, RESULTS locked or of another job); one line."""


@dataclasses.dataclass(frozen=True)
class RescoreOptions:
    workers: int | None = 1  # None: with Ray, one actor per CPU of the cluster
    engine: str = "local"  # "local" or "ray"
    ray_address: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    defect_model: Path | None = None  # the model file (None: the packaged one), for every worker
    parquet: Path | None = None  # also write the results as Parquet at the end
    progress_interval: float = 10.0  # seconds between plain progress lines


def scoring_version_here() -> str:
    """The driver's scoring version (workers compute theirs and must agree)."""
    from vision import defect_model

    return worker.scoring_version(defect_model.model_version())


def canonical_spec_sha256(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def make_engine(options: RescoreOptions):
    from service.rescore.engines import LocalEngine, RayEngine

    workers = options.workers
    # A worker is one core (worker.Scorer sets one thread per library, also when there is one
    # worker): `--workers N` then means "use N cores" (a job sharing the machine with --workers 1
    # leaves the other cores alone), and throughput scales with N; the default, one worker
    # per CPU, is the fastest arrangement for independent items either way.
    scorer_options = {"max_pixels": options.max_pixels,
                      "defect_model_path": (str(options.defect_model)
                                            if options.defect_model is not None else None)}
    if options.engine == "ray":
        return RayEngine(workers, scorer_options, options.ray_address)
    return LocalEngine(workers or 1, scorer_options)


# --------------------------------------------------------------------------------------------
# Items -> tasks


def _input_error(task: dict, message: str, version: str) -> dict:
    return {"id": task["id"], "row": task["row"], "status": "error", "inputs": task["inputs"],
            "input_hashes": {"golden": None, "unit": None, "spec": task["spec_sha256"]},
            "scoring_version": version, "error": {"kind": "input", "message": message},
            "files": {"golden": None, "unit": None}}


class _Hasher:
    """SHA-256 of files by path, each file read at most once per run."""

    def __init__(self) -> None:
        self._cache: dict[str, str | None] = {}

    def __call__(self, path: str) -> str | None:
        if path not in self._cache:
            try:
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
                self._cache[path] = digest.hexdigest()
            except OSError:
                self._cache[path] = None
        return self._cache[path]


def _stored_goldens(ids: set[str], database: tuple) -> dict[str, dict]:
    """Stored goldens by id: their primary photo's path and SHA-256, and their spec."""
    import sqlalchemy as sa

    from service.db import Golden, GoldenImage

    engine, blobs = database
    found: dict[str, dict] = {}
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(Golden.id, Golden.spec, GoldenImage.sha256)
            .join(GoldenImage, GoldenImage.golden_seq == Golden.seq)
            .where(Golden.id.in_(sorted(ids)), GoldenImage.position == 0))
        for golden_id, spec, sha256 in rows:
            found[golden_id] = {"path": str(blobs.path(sha256)), "sha256": sha256, "spec": spec}
    return found


@dataclasses.dataclass
class _Plan:
    tasks: list[dict]  # to score (or to record as an input error without scoring)
    known_errors: dict[str, str]  # id -> message of errors found while resolving


def _plan(items: list[ManifestItem], base: Path, open_database: Callable[[], object] | None
          ) -> _Plan:
    from vision.spec import SpecError, parse_spec

    specs: dict[str, tuple[dict | None, str | None, str | None]] = {}

    def spec_of(value: str) -> tuple[dict | None, str | None, str | None]:
        if value not in specs:
            path = resolve(base, value)
            try:
                data = path.read_bytes()
            except OSError as exc:
                specs[value] = (None, None, f"{path}: cannot read the spec sheet "
                                f"({exc.strerror or exc})")
            else:
                sha256 = hashlib.sha256(data).hexdigest()
                try:
                    specs[value] = (parse_spec(data).model_dump(mode="json"), sha256, None)
                except SpecError as exc:
                    specs[value] = (None, sha256, f"{path}: {exc}")
        return specs[value]

    # Stored goldens: a value that is no file but looks like a golden id.
    wanted = {item.golden for item in items
              if _UUID.match(item.golden) and not resolve(base, item.golden).exists()}
    stored: dict[str, dict] = {}
    if wanted:
        if open_database is None:
            raise JobError("the manifest names stored goldens by id, but no database is "
                           "configured")
        stored = _stored_goldens(wanted, open_database())

    tasks, known_errors = [], {}
    for item in items:
        inputs = {"golden": item.golden, "unit": item.unit, "spec": item.spec}
        task = {"id": item.id, "row": item.row, "inputs": inputs, "spec": None,
                "spec_sha256": None, "unit": {"path": str(resolve(base, item.unit))}}
        problem = None
        if item.golden in wanted:
            golden = stored.get(item.golden)
            if golden is None:
                problem = (f"golden {item.golden}: no such file, and no stored golden has this "
                           "id")
                task["golden"] = {"path": str(resolve(base, item.golden))}
            else:
                task["golden"] = {"path": golden["path"], "sha256": golden["sha256"],
                                  "stored": True}
                if item.spec is None:  # the spec it was sealed with
                    task["spec"] = golden["spec"]
                    task["spec_sha256"] = canonical_spec_sha256(golden["spec"])
        else:
            task["golden"] = {"path": str(resolve(base, item.golden))}
        if item.spec is not None:
            task["spec"], task["spec_sha256"], spec_problem = spec_of(item.spec)
            problem = problem or spec_problem
        if problem:
            known_errors[item.id] = problem
        tasks.append(task)
    return _Plan(tasks, known_errors)


# --------------------------------------------------------------------------------------------
# What is done already


def _current_hash(side: dict, recorded_hash: str | None, recorded_file: dict | None,
                  hasher: _Hasher) -> str | None:
    if side.get("stored"):
        return side["sha256"]
    path = side["path"]
    try:
        status = os.stat(path)
    except OSError:
        return None
    if (recorded_file and recorded_hash and recorded_file.get("path") == path
            and recorded_file.get("size") == status.st_size
            and recorded_file.get("mtime_ns") == status.st_mtime_ns):
        return recorded_hash
    return hasher(path)


def _is_done(record: dict, task: dict, version: str, hasher: _Hasher) -> bool:
    if record.get("scoring_version") != version:
        return False
    if record.get("status") == "error" and (record.get("error") or {}).get("kind") != "input":
        return False  # a worker died or a bug: worth another try
    hashes = record.get("input_hashes") or {}
    if hashes.get("spec") != task["spec_sha256"]:
        return False
    files = record.get("files") or {}
    return all(_current_hash(task[side], hashes.get(side), files.get(side), hasher)
               == hashes.get(side) for side in _SIDES)


# --------------------------------------------------------------------------------------------
# Running


def _golden_order(tasks: list[dict]) -> list[dict]:
    """Items of one golden next to each other (stable), so each worker's golden cache hits."""
    first_seen: dict[str, int] = {}
    for task in tasks:
        first_seen.setdefault(task["golden"]["path"], len(first_seen))
    return sorted(tasks, key=lambda t: first_seen[t["golden"]["path"]])


def _checked(result: dict, version: str) -> dict:
    """Drop engine bookkeeping; refuse a result scored by a different installation."""
    result.pop("_worker", None)
    theirs = result.get("scoring_version")
    if theirs is not None and theirs != version:
        result = {**result, "status": "error", "scoring_version": version,
                  "error": {"kind": "internal", "message": f"a worker scored with '{theirs}' "
                            f"but this job is '{version}': install the same sealcheck and "
                            "defect model on every machine"}}
        result.pop("report", None)
    return result


def summarise(records: Iterable[dict], version: str) -> dict:
    counts: collections.Counter[str] = collections.Counter()
    errors = []
    for record in records:
        if record.get("status") == "ok":
            counts[record.get("verdict") or record["report"]["verdict"]] += 1
        else:
            counts["error"] += 1
            error = record.get("error") or {}
            errors.append({"id": record["id"], "row": record.get("row"),
                           "kind": error.get("kind"), "message": error.get("message")})
    return {
        "scoring_version": version,
        "items": sum(counts.values()),
        "counts": {name: counts.get(name, 0) for name in ("pass", "fail", "inconclusive",
                                                          "error")},
        "errors": errors,
    }


def summary_line(summary: dict, where: str) -> str:
    c = summary["counts"]
    return (f"rescore: {summary['items']} items in {where}: {c['pass']} pass, {c['fail']} fail, "
            f"{c['inconclusive']} inconclusive, {c['error']} error(s)")


def run_tasks(tasks: list[dict], engine, version: str) -> Iterator[dict]:
    """Score `tasks` on `engine`, yielding checked results as they finish."""
    for result in engine.run(_golden_order(tasks)):
        yield _checked(result, version)


def rescore_manifest(manifest: str | os.PathLike[str], out: str | os.PathLike[str],
                     options: RescoreOptions, *,
                     open_database: Callable[[], object] | None = None,
                     stream: TextIO | None = None) -> dict:
    """Score every item of `manifest` not yet in `out`; return the job's summary.

    `open_database` gives (SQLAlchemy engine, :class:`service.storage.BlobStore`) of the
    service's database and photos; it is called only when the manifest names stored goldens.
    """
    stream = stream or sys.stderr
    started = time.monotonic()
    manifest = Path(manifest)
    items = read_manifest(manifest)
    base = manifest.resolve().parent
    engine = make_engine(options)
    engine.start()  # the workers start up while this process checks the model and plans
    try:
        return _rescore_manifest(manifest, out, options, items, base, engine, started,
                                 open_database, stream)
    finally:
        engine.close()


def _rescore_manifest(manifest: Path, out, options: RescoreOptions, items, base: Path, engine,
                      started: float, open_database, stream: TextIO) -> dict:
    from service.rescore.progress import make_progress

    version = scoring_version_here()
    plan = _plan(items, base, open_database)

    results = ResultsFile(out)
    try:
        results.lock()
    except LockedError as exc:
        raise JobError(str(exc)) from None
    try:
        records, notes = results.load()
        tasks_by_id = {task["id"]: task for task in plan.tasks}
        foreign = [r["id"] for r in records if r["id"] not in tasks_by_id]
        if foreign:
            raise JobError(
                f"{out} holds {len(foreign)} result(s) whose id is not in {manifest} (e.g. "
                f"'{foreign[0]}'): it is another job's; write to another --out, or delete it "
                "to start over")
        hasher = _Hasher()
        kept: dict[str, dict] = {}
        for record in records:
            if record["id"] in kept:  # cannot happen with one writer; never keep two
                continue
            if _is_done(record, tasks_by_id[record["id"]], version, hasher):
                kept[record["id"]] = record
        dropped = len(records) - len(kept)
        if dropped or results.unreadable:
            # Re-scored items must not appear twice: their old lines go first, atomically.
            results.rewrite(set(kept))
        if dropped:
            notes.append(f"{dropped} earlier result(s) are re-scored (inputs, scoring version "
                         "or an internal error changed)")
        for note in notes:
            print(f"rescore: {note}", file=stream, flush=True)

        todo = [task for task in plan.tasks if task["id"] not in kept]
        new: list[dict] = []
        with make_progress(len(plan.tasks), len(kept), interval=options.progress_interval,
                           stream=stream) as progress:
            for task in [t for t in todo if t["id"] in plan.known_errors]:
                record = _input_error(task, plan.known_errors[task["id"]], version)
                _fill_hashes(record, task, hasher)
                results.append(record)
                new.append(slim(record))
                progress.advance(error=True)
            to_score = [t for t in todo if t["id"] not in plan.known_errors]
            if to_score:
                written = set(kept)
                for result in run_tasks(to_score, engine, version):
                    if result["id"] in written:  # a retried item whose first result arrived
                        continue
                    results.append(result)
                    written.add(result["id"])
                    new.append(slim(result))
                    progress.advance(error=result["status"] != "ok")
        summary = summarise([*kept.values(), *new], version)
        elapsed = time.monotonic() - started
        scored = len(new)
        summary["results"] = str(out)
        summary["this_run"] = {
            "engine": options.engine, "workers": options.workers, "skipped": len(kept),
            "scored": scored, "seconds": round(elapsed, 2),
            "items_per_s": round(scored / elapsed, 3) if elapsed > 0 else None,
        }
        results.write_summary(summary)
        if options.parquet is not None:
            write_parquet(results, options.parquet)
        for error in summary["errors"][:10]:
            print(f"rescore: item {error['id']} (row {error['row']}): {error['message']}",
                  file=stream)
        if len(summary["errors"]) > 10:
            print(f"rescore: ... and {len(summary['errors']) - 10} more error(s) in "
                  f"{results.summary_path}", file=stream)
        print(summary_line(summary, str(out)) + f" (summary: {results.summary_path})",
              file=stream, flush=True)
        return summary
    finally:
        results.close()


def _fill_hashes(record: dict, task: dict, hasher: _Hasher) -> None:
    """Input hashes of an item refused before scoring, so a resume recognises it as done."""
    for side in _SIDES:
        if task[side].get("stored"):
            record["input_hashes"][side] = task[side]["sha256"]
            continue
        path = task[side]["path"]
        try:
            status = os.stat(path)
        except OSError:
            continue
        record["input_hashes"][side] = hasher(path)
        record["files"][side] = {"path": path, "size": status.st_size,
                                 "mtime_ns": status.st_mtime_ns}


def write_parquet(results: ResultsFile, path: str | os.PathLike[str]) -> None:
    """RESULTS as a Parquet table, one row per item in file order (the report as a JSON
    string), written in batches so that memory stays flat however long the job."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise JobError("--parquet needs pyarrow: pip install 'sealcheck[ray]' (or pyarrow)") \
            from None
    schema = pa.schema([
        ("id", pa.string()), ("row", pa.int64()), ("status", pa.string()),
        ("verdict", pa.string()), ("score", pa.float64()), ("golden_sha256", pa.string()),
        ("unit_sha256", pa.string()), ("spec_sha256", pa.string()),
        ("scoring_version", pa.string()), ("report", pa.string()), ("error", pa.string()),
    ])

    def row(r: dict) -> dict:
        ok = r.get("status") == "ok"
        hashes = r.get("input_hashes") or {}
        return {"id": r["id"], "row": r.get("row"), "status": r.get("status"),
                "verdict": r["report"]["verdict"] if ok else None,
                "score": r["report"]["score"] if ok else None,
                "golden_sha256": hashes.get("golden"), "unit_sha256": hashes.get("unit"),
                "spec_sha256": hashes.get("spec"), "scoring_version": r.get("scoring_version"),
                "report": json.dumps(r["report"]) if ok else None,
                "error": (r.get("error") or {}).get("message")}

    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with pq.ParquetWriter(temporary, schema) as writer:
        batch: list[dict] = []
        for record in results.iter_records():
            if record is not None:
                batch.append(row(record))
            if len(batch) >= 1000:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    os.replace(temporary, path)
