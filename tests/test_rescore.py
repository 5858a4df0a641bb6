"""`sealcheck rescore MANIFEST --out RESULTS`: manifests, results, resume, errors, progress.

Photos are small (320 x 240) so that a job of a dozen items takes seconds. The kill -9 figure
is in test_rescore_kill.py, Ray in test_rescore_ray.py, --from-db in test_rescore_db.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from service.rescore.job import RescoreOptions, rescore_manifest, scoring_version_here
from service.rescore.progress import Progress, RichProgress
from service.rescore.worker import Scorer
from testkit.batch import ROWS, write_manifest

ERROR_PREFIX = "sealcheck: error: "


@pytest.fixture
def job(rescore_photos, tmp_path) -> Path:
    """A copy of the photos and a manifest of ROWS in a directory of its own."""
    directory = tmp_path / "job"
    shutil.copytree(rescore_photos, directory)
    return write_manifest(directory, ROWS)


def _run(manifest: Path, out: Path, workers: int = 1, **options) -> tuple[dict, str]:
    stream = io.StringIO()
    summary = rescore_manifest(manifest, out, RescoreOptions(workers=workers, **options),
                               stream=stream)
    return summary, stream.getvalue()


def _records(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the last line is torn"
    return [json.loads(line) for line in data.splitlines()]




def _usage_error(code: int, err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in: {lines[0]}"
    return lines[0]


# --------------------------------------------------------------------------------------------
# Bad usage and bad manifests: exit 2, one line that says what to fix


def test_missing_manifest_columns_are_named(cli, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("golden,photo\ng.jpg,u.jpg\n")
    _usage_error(*cli("rescore", manifest, "--out", tmp_path / "r.jsonl")[::2], "unit",
                 "missing column")
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"golden": "g.jpg", "unit": "u.jpg"}\n{"golden": "g.jpg"}\n')
    _usage_error(*cli("rescore", jsonl, "--out", tmp_path / "r.jsonl")[::2], "unit",
                 "item(s) 2")
    assert not (tmp_path / "r.jsonl").exists()


def test_duplicate_ids_name_their_rows(cli, tmp_path):
    manifest = write_manifest(tmp_path, [("a", "g.jpg", "u1.jpg"), ("b", "g.jpg", "u2.jpg"),
                                    ("a", "g.jpg", "u3.jpg")])
    _usage_error(*cli("rescore", manifest, "--out", tmp_path / "r.jsonl")[::2],
                 "duplicate id", "'a' (rows 1, 3)")


@pytest.mark.parametrize("args, says", [
    (["m.csv"], "--out RESULTS"),
    (["--out", "r.jsonl"], "MANIFEST"),
    (["m.csv", "--out", "r.jsonl", "--workers", "0"], "--workers must be at least 1"),
    (["m.csv", "--out", "r.jsonl", "--ray-address", "auto"], "--ray-address needs --engine ray"),
    (["m.csv", "--out", "r.jsonl", "--since", "2026-01-01"], "with --from-db"),
    (["m.csv", "--from-db"], "give no MANIFEST"),
    (["--from-db", "--since", "yesterday"], "ISO 8601"),
    (["m.csv", "--out", "r.jsonl", "--engine", "spark"], "invalid choice"),
])
def test_usage_errors(cli, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    _usage_error(*cli("rescore", *args)[::2], says)


def test_missing_manifest_and_directory_out(cli, tmp_path, job):
    _usage_error(*cli("rescore", tmp_path / "nope.csv", "--out", tmp_path / "r.jsonl")[::2],
                 "no such manifest file")
    _usage_error(*cli("rescore", job, "--out", tmp_path)[::2], "is a directory")


# --------------------------------------------------------------------------------------------
# A job: one object per item, errors recorded, summary beside it


def test_job_writes_one_result_per_item_and_records_bad_items(job):
    out = job.parent / "results.jsonl"
    summary, log = _run(job, out, workers=2)
    records = _records(out)
    by_id = {r["id"]: r for r in records}
    assert sorted(by_id) == sorted(r[0] for r in ROWS) and len(records) == len(ROWS)

    version = scoring_version_here()
    assert all(r["scoring_version"] == version for r in records)
    assert "defect-unet" in version and "report " in version

    # Verdicts: identical content passes, a 40 mm hole fails; reports are complete.
    assert by_id["same-1"]["status"] == "ok" and by_id["same-1"]["report"]["verdict"] == "pass"
    assert by_id["hole-1"]["report"]["verdict"] == "fail"
    assert by_id["same-2"]["report"]["spec"]["tolerances"]["delta_e00"] == 3.0
    assert {"registration", "color", "defects", "timings_ms"} <= set(by_id["same-1"]["report"])

    # Input hashes are the files' SHA-256 (and the spec sheet's).
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in job.parent.iterdir()
           if p.is_file()}
    assert by_id["hole-1"]["input_hashes"] == {"golden": sha["same_golden.jpg"],
                                               "unit": sha["hole_unit.jpg"], "spec": None}
    assert by_id["same-2"]["input_hashes"]["spec"] == sha["spec.yaml"]

    # Bad items are errors with a reason; the job went on.
    assert by_id["missing"]["error"] == {"kind": "input",
                                         "message": f"{job.parent / 'no_such.jpg'}: no such file"}
    assert by_id["missing"]["input_hashes"]["golden"] == sha["same_golden.jpg"]
    assert by_id["corrupt"]["status"] == "error" and "corrupt.jpg" in \
        by_id["corrupt"]["error"]["message"]
    assert "delta_e" in by_id["bad-spec"]["error"]["message"]

    assert summary["counts"] == {"pass": 2, "fail": 2, "inconclusive": 0, "error": 3}
    written = json.loads((job.parent / "results.jsonl.summary.json").read_text())
    assert written["counts"] == summary["counts"]
    assert {e["id"] for e in written["errors"]} == {"missing", "corrupt", "bad-spec"}
    assert "7 items in" in log and "2 pass, 2 fail, 0 inconclusive, 3 error(s)" in log


def test_resume_skips_what_is_done_and_rescores_what_changed(job):
    out = job.parent / "results.jsonl"
    _run(job, out)
    first = out.read_bytes()

    summary, _ = _run(job, out)  # nothing changed: nothing scored, the file untouched
    assert summary["this_run"] == {**summary["this_run"], "scored": 0, "skipped": len(ROWS)}
    assert out.read_bytes() == first

    # Touching a photo without changing it: hashed again, found equal, still skipped.
    os.utime(job.parent / "hole_unit.jpg")
    assert _run(job, out)[0]["this_run"]["scored"] == 0

    # A changed spec sheet and a photo that now exists: exactly those items are re-scored,
    # and each id is still in RESULTS once.
    (job.parent / "spec.yaml").write_text("tolerances:\n  delta_e00: 4.0\n")
    shutil.copy(job.parent / "same_unit.jpg", job.parent / "no_such.jpg")
    summary, log = _run(job, out)
    assert summary["this_run"]["scored"] == 2, log
    records = _records(out)
    assert sorted(r["id"] for r in records) == sorted(r[0] for r in ROWS)
    by_id = {r["id"]: r for r in records}
    assert by_id["same-2"]["report"]["spec"]["tolerances"]["delta_e00"] == 4.0
    assert by_id["missing"]["status"] == "ok"
    assert "2 earlier result(s) are re-scored" in log


def test_torn_last_line_is_cut_off_and_its_item_scored_again(job):
    out = job.parent / "results.jsonl"
    _run(job, out)
    lines = out.read_bytes().splitlines(keepends=True)
    # What a kill -9 in the middle of an append leaves: the last line cut short.
    out.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    summary, log = _run(job, out)
    assert "torn last line" in log
    assert summary["this_run"]["scored"] == 1
    records = _records(out)
    assert len(records) == len({r["id"] for r in records}) == len(ROWS)


def test_a_second_run_on_the_same_results_is_refused(cli, job):
    out = job.parent / "results.jsonl"
    lock = os.open(str(out) + ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.write(lock, b"4242\n")
        code, _, err = cli("rescore", job, "--out", out)
        _usage_error(code, err, "another 'sealcheck rescore'", "pid 4242")
    finally:
        os.close(lock)
    assert not out.exists()


def test_results_of_another_job_are_refused(cli, job):
    out = job.parent / "results.jsonl"
    out.write_text(json.dumps({"id": "someone-else", "status": "ok"}) + "\n")
    _usage_error(*cli("rescore", job, "--out", out)[::2], "another job", "someone-else")
    assert out.read_text().count("\n") == 1


def test_parquet_copy(job):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow comes with sealcheck[ray]")
    out = job.parent / "results.jsonl"
    _run(job, out, parquet=job.parent / "results.parquet")
    table = pq.read_table(job.parent / "results.parquet").to_pylist()
    assert sorted(row["id"] for row in table) == sorted(r[0] for r in ROWS)
    hole = next(row for row in table if row["id"] == "hole-1")
    assert hole["verdict"] == "fail" and json.loads(hole["report"])["verdict"] == "fail"
    assert next(row for row in table if row["id"] == "missing")["error"].endswith("no such file")


# --------------------------------------------------------------------------------------------
# Workers: the golden is prepared once per worker


def _task(directory: Path, unit: str, task_id: str) -> dict:
    return {"id": task_id, "row": 1, "inputs": {}, "spec": None, "spec_sha256": None,
            "golden": {"path": str(directory / "same_golden.jpg")},
            "unit": {"path": str(directory / unit)}}


def test_golden_is_prepared_once_per_worker(rescore_photos):
    scorer = Scorer()
    results = [scorer.score(_task(rescore_photos, unit, str(i)))
               for i, unit in enumerate(["same_unit.jpg", "hole_unit.jpg", "same_unit.jpg"])]
    assert [r["status"] for r in results] == ["ok"] * 3
    assert scorer.goldens_prepared == 1
    # A copy of the golden under another name has the same bytes: still one preparation.
    shutil.copy(rescore_photos / "same_golden.jpg", rescore_photos / "copy_golden.jpg")
    task = _task(rescore_photos, "same_unit.jpg", "x")
    task["golden"]["path"] = str(rescore_photos / "copy_golden.jpg")
    assert scorer.score(task)["status"] == "ok" and scorer.goldens_prepared == 1


def test_local_pool_prepares_each_golden_once_per_process(rescore_photos):
    from service.rescore.engines import LocalEngine

    engine = LocalEngine(2, {})
    tasks = [_task(rescore_photos, "same_unit.jpg", str(i)) for i in range(6)]
    results = list(engine.run(tasks))
    assert sorted(r["id"] for r in results) == [str(i) for i in range(6)]
    prepared = {}
    for result in results:
        pid = result["_worker"]["pid"]
        prepared[pid] = max(prepared.get(pid, 0), result["_worker"]["goldens_prepared"])
    assert all(count == 1 for count in prepared.values()), prepared


def test_a_lone_worker_uses_one_core(rescore_photos):
    """`--workers N` means N cores: the engine that make_engine builds for one worker runs
    OpenCV on one thread."""
    from service.rescore.job import make_engine

    engine = make_engine(RescoreOptions(workers=1))
    results = list(engine.run([_task(rescore_photos, "same_unit.jpg", "0")]))
    assert results[0]["status"] == "ok"
    assert results[0]["_worker"]["opencv_threads"] == 1


# --------------------------------------------------------------------------------------------
# Progress


def test_progress_plain_lines_off_a_terminal():
    stream = io.StringIO()
    with Progress(10, 4, stream=stream, interval=0.0) as progress:
        for i in range(6):
            progress.advance(error=i == 0)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("rescore: 5/10 items (50%), ") and "items/s, ETA " in lines[0]
    assert lines[-1].startswith("rescore: 10/10 items (100%)") and "1 error(s)" in lines[-1]


def test_progress_bar_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with RichProgress(3, 0, stream=stream) as progress:
        for _ in range(3):
            progress.advance(error=False)
    text = stream.getvalue()
    assert "3/3" in text and "items/s" in text and "ETA" in text


def test_an_unreadable_line_is_removed_and_its_item_scored_again(job):
    out = job.parent / "results.jsonl"
    _run(job, out)
    lines = out.read_text().splitlines()
    lines[2] = "{not json"
    out.write_text("\n".join(lines) + "\n")
    summary, log = _run(job, out)
    assert "dropped 1 unreadable line(s)" in log and summary["this_run"]["scored"] == 1
    records = _records(out)
    assert sorted(r["id"] for r in records) == sorted(r[0] for r in ROWS)
