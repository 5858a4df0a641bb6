"""`sealcheck rescore --from-db`: re-score stored inspections, each new report a new version.

The inspection's own report stays as it was (version 1, ``inspections.report``); each
re-scoring adds an :class:`service.db.InspectionReport` row with the next version, the scoring
version, verdict, score and report, so the audit trail shows which scoring gave which verdict
when. The database is the journal here: a row is committed per item, an inspection that
already has a report of the current scoring version is skipped, and a unique constraint on
(inspection, scoring version) keeps a second run (resumed, or started twice) from adding a
duplicate.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from service.db import (
    Golden,
    GoldenImage,
    Inspection,
    InspectionImage,
    InspectionReport,
    make_sessionmaker,
)
from service.rescore.job import (
    JobError,
    RescoreOptions,
    canonical_spec_sha256,
    make_engine,
    run_tasks,
    scoring_version_here,
    summarise,
)
from service.rescore.results import slim
from service.storage import BlobStore

__all__ = ["rescore_stored", "store_report_version"]


def store_report_version(sessions, inspection_seq: int, scoring_version: str,
                         report: dict) -> int | None:
    """Add `report` as the inspection's next version; None when this scoring is stored already.

    Two runs may pick the same next version at once: the unique constraint refuses the
    second, which then looks again (and finds either its scoring stored or a free number).
    """
    for _attempt in range(5):
        with sessions() as session:
            if session.scalar(sa.select(InspectionReport.seq).where(
                    InspectionReport.inspection_seq == inspection_seq,
                    InspectionReport.scoring_version == scoring_version)) is not None:
                return None
            # Version 1 is the inspection's own report.
            version = (session.scalar(sa.select(sa.func.max(InspectionReport.version)).where(
                InspectionReport.inspection_seq == inspection_seq)) or 1) + 1
            session.add(InspectionReport(
                inspection_seq=inspection_seq, version=version, scoring_version=scoring_version,
                verdict=report["verdict"], score=report["score"], report=report))
            try:
                session.commit()
                return version
            except IntegrityError:
                session.rollback()
    raise RuntimeError(f"could not store a report version of inspection {inspection_seq} "
                       "after 5 attempts (other runs kept taking the next number)")


def rescore_stored(engine: Engine, blobs: BlobStore, options: RescoreOptions, *,
                   golden_id: str | None = None, since: dt.datetime | None = None,
                   stream: TextIO | None = None) -> dict:
    """Re-score the stored inspections (of one golden, since a time) not yet re-scored with
    the current scoring version; return the summary of this run."""
    from service.rescore.progress import make_progress

    stream = stream or sys.stderr
    started = time.monotonic()
    version = scoring_version_here()
    sessions = make_sessionmaker(engine)
    golden_photo = aliased(GoldenImage)
    unit_photo = aliased(InspectionImage)
    query = (
        sa.select(Inspection.seq, Inspection.id, Golden.id, Golden.spec, golden_photo.sha256,
                  unit_photo.sha256)
        .join(Golden, Golden.seq == Inspection.golden_seq)
        .join(golden_photo, (golden_photo.golden_seq == Golden.seq)
              & (golden_photo.position == 0))
        .join(unit_photo, (unit_photo.inspection_seq == Inspection.seq)
              & (unit_photo.position == 0))
        .order_by(Inspection.seq))
    with sessions() as session:
        if golden_id is not None:
            if session.scalar(sa.select(Golden.seq).where(Golden.id == golden_id)) is None:
                raise JobError(f"--golden {golden_id}: no stored golden has this id")
            query = query.where(Golden.id == golden_id)
        if since is not None:
            query = query.where(Inspection.created_at >= since)
        rows = session.execute(query).all()
        done = set(session.scalars(
            sa.select(InspectionReport.inspection_seq)
            .where(InspectionReport.scoring_version == version)))
    seq_of, tasks = {}, []
    for seq, inspection_id, stored_golden_id, spec, golden_sha, unit_sha in rows:
        if seq in done:
            continue
        seq_of[inspection_id] = seq
        tasks.append({
            "id": inspection_id, "row": seq,
            "inputs": {"golden": stored_golden_id, "unit": f"inspection {inspection_id}",
                       "spec": None},
            "golden": {"path": str(blobs.path(golden_sha)), "sha256": golden_sha,
                       "stored": True},
            "unit": {"path": str(blobs.path(unit_sha)), "sha256": unit_sha, "stored": True},
            "spec": spec, "spec_sha256": canonical_spec_sha256(spec),
        })
    print(f"rescore: {len(rows)} stored inspection(s) selected, {len(rows) - len(tasks)} "
          f"already re-scored with '{version}'", file=stream, flush=True)

    new, stored_count = [], 0
    with make_progress(len(rows), len(rows) - len(tasks), interval=options.progress_interval,
                       stream=stream) as progress:
        if tasks:
            for result in run_tasks(tasks, make_engine(options), version):
                if result["status"] == "ok":
                    stored_version = store_report_version(sessions, seq_of[result["id"]],
                                                          version, result["report"])
                    stored_count += stored_version is not None
                new.append(slim(result))
                progress.advance(error=result["status"] != "ok")
    summary = summarise(new, version)
    elapsed = time.monotonic() - started
    summary["this_run"] = {
        "engine": options.engine, "workers": options.workers, "selected": len(rows),
        "skipped": len(rows) - len(tasks), "scored": len(new),
        "stored_versions": stored_count, "seconds": round(elapsed, 2),
    }
    for error in summary["errors"][:10]:
        print(f"rescore: inspection {error['id']}: {error['message']}", file=stream)
    if len(summary["errors"]) > 10:
        print(f"rescore: ... and {len(summary['errors']) - 10} more error(s)", file=stream)
    c = summary["counts"]
    retried = " (not stored; retried by the next run)" if c["error"] else ""
    print(f"rescore: {len(new)} inspection(s) re-scored, {stored_count} new report "
          f"version(s) stored: {c['pass']} pass, {c['fail']} fail, {c['inconclusive']} "
          f"inconclusive, {c['error']} error(s){retried}", file=stream, flush=True)
    return summary
