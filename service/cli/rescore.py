"""`sealcheck rescore`: re-score archived pairs (a manifest) or the stored inspections, in bulk."""

from __future__ import annotations

import argparse
from pathlib import Path

from service.cli import common

__all__ = ["add_parser", "run"]


def add_parser(commands) -> None:
    """The ``rescore`` command's arguments."""
    parser = commands.add_parser(
        "rescore", help="re-score archived golden/unit pairs in bulk (resumable)",
        description="Score every golden/unit pair of MANIFEST (CSV or JSON Lines with the "
        "columns golden, unit and optionally spec, id; relative paths are read from the "
        "manifest's directory; golden may be the id of a stored golden) and append one JSON "
        "object per item to RESULTS. Re-running the same command after an interruption "
        "finishes the job: items already scored with the same inputs and the same scoring "
        "version are skipped, and none is written twice. A bad item is recorded as an error "
        "and the job goes on. The summary goes to RESULTS.summary.json and stderr. With "
        "--from-db, the stored inspections are re-scored instead and each new report is stored "
        "as a new version beside the old one (SEALCHECK_* settings as for 'sealcheck serve'). "
        "Exit code 0 when every item has a result (errors included), 2 for bad usage or "
        "input.",
    )
    parser.add_argument("manifest", metavar="MANIFEST", nargs="?",
                        help="CSV or JSON Lines file of the pairs to score")
    parser.add_argument("--out", metavar="RESULTS", help="JSON Lines results file (created, "
                        "or resumed when it exists)")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (local; "
                        "one core each) or actors (ray); default: the CPUs this process may "
                        "use (with --ray-address: the cluster's CPUs)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: a process pool on this machine (default); ray: Ray Data")
    parser.add_argument("--ray-address", metavar="ADDR", help="with --engine ray: the cluster "
                        "to connect to (e.g. ray://head:10001 or auto); none starts a local "
                        "Ray instance")
    parser.add_argument("--parquet", metavar="FILE", help="also write the results as Parquet "
                        "(needs pyarrow, part of sealcheck[ray])")
    parser.add_argument("--from-db", action="store_true", help="re-score the stored "
                        "inspections instead of a manifest")
    parser.add_argument("--golden", metavar="ID", help="with --from-db: only the inspections "
                        "of this stored golden")
    parser.add_argument("--since", metavar="DATE", help="with --from-db: only inspections made "
                        "at or after DATE (ISO 8601, e.g. 2026-01-31 or 2026-01-31T08:00Z; "
                        "UTC unless it says otherwise)")


def run(args: argparse.Namespace) -> int:
    # The driver checks the model (scoring version) and hands its settings to the workers.
    settings = common.comparison_settings()
    with common.defect_model_configured(settings):
        return _rescore(args, settings)


def _since(value: str):  # -> datetime.datetime, timezone-aware
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise common.UsageError(f"--since {value!r}: not a date; write it in ISO 8601, e.g. "
                                "2026-01-31 or 2026-01-31T08:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _rescore_options(args: argparse.Namespace, settings):  # -> rescore.job.RescoreOptions
    import importlib.util

    from service.rescore.job import RescoreOptions
    from service.settings import default_workers

    if args.workers is not None and args.workers < 1:
        raise common.UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.ray_address and args.engine != "ray":
        raise common.UsageError("--ray-address needs --engine ray")
    if args.engine == "ray" and importlib.util.find_spec("ray") is None:
        raise common.UsageError("--engine ray needs Ray Data, which is not installed: pip install "
                         "'sealcheck[ray]'")
    # On a Ray cluster the default is the cluster's CPUs, known only once connected.
    workers = args.workers or (None if args.ray_address else default_workers())
    return RescoreOptions(
        workers=workers, engine=args.engine,
        ray_address=args.ray_address, max_pixels=settings.max_pixels,
        defect_model=settings.defect_model,
        parquet=Path(args.parquet) if args.parquet else None)


def _rescore(args: argparse.Namespace, model_settings) -> int:
    from service.rescore.job import JobError
    from service.rescore.manifest import ManifestError

    if args.from_db:
        if args.manifest or args.out or args.parquet:
            raise common.UsageError("--from-db re-scores the stored inspections into the database: "
                             "give no MANIFEST, --out or --parquet")
        since = _since(args.since) if args.since else None
        options = _rescore_options(args, model_settings)
        from service.rescore.stored import rescore_stored
        from service.storage import BlobStore

        settings = common.load_settings()
        engine = common.migrated_engine(settings)
        try:
            rescore_stored(engine, BlobStore(settings.data_dir), options,
                           golden_id=args.golden, since=since)
        except JobError as exc:
            raise common.UsageError(str(exc)) from None
        finally:
            engine.dispose()
        return 0
    if args.golden or args.since:
        raise common.UsageError("--golden and --since select stored inspections: use them with "
                         "--from-db")
    if not args.manifest or not args.out:
        raise common.UsageError("give a MANIFEST and --out RESULTS, e.g. 'sealcheck rescore "
                         "pairs.csv --out results.jsonl' (or --from-db)")
    if Path(args.out).is_dir():
        raise common.UsageError(f"--out {args.out}: is a directory; name the results file, e.g. "
                         f"{Path(args.out) / 'results.jsonl'}")
    options = _rescore_options(args, model_settings)
    from service.rescore.job import rescore_manifest

    engines = []

    def open_database():
        from service.storage import BlobStore

        settings = common.load_settings()
        engines.append(common.migrated_engine(settings))
        return engines[-1], BlobStore(settings.data_dir)

    try:
        rescore_manifest(args.manifest, args.out, options, open_database=open_database)
    except (JobError, ManifestError) as exc:
        raise common.UsageError(str(exc)) from None
    except OSError as exc:
        raise common.UsageError(f"{exc.filename or args.out}: {exc.strerror}") from None
    finally:
        for engine in engines:
            engine.dispose()
    return 0
