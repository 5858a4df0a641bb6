"""`sealcheck gc`: remove stored files that no row names (what killed uploads leave)."""

from __future__ import annotations

import argparse

from service.cli.common import UsageError, load_settings, migrated_engine

__all__ = ["add_parser", "run"]


def add_parser(commands) -> None:
    """The ``gc`` command's arguments."""
    parser = commands.add_parser(
        "gc", help="remove stored files that no record names, and expired Idempotency-Keys",
        description="Remove files in the data directory that no row names: what uploads "
        "killed before their commit leave behind. Only files older than --older-than go, "
        "because a running server or batch job writes each file just before the row that "
        "names it. Also forget Idempotency-Keys older than 24 h (a retry after that creates "
        "anew). Uses the same SEALCHECK_* settings as 'sealcheck serve'.",
    )
    parser.add_argument("--older-than", default="1h", metavar="AGE",
                        help="only files at least this old: a number with s, m, h or d "
                        "(default 1h)")
    parser.add_argument("--dry-run", action="store_true", help="count, remove nothing")


def _duration(text: str):  # -> datetime.timedelta
    import datetime as dt

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:].lower()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if unit not in units or not value >= 0 or value == float("inf"):
        raise UsageError(f"--older-than {text!r}: write a number and a unit, e.g. 30m, 1h "
                         "or 2d")
    return dt.timedelta(seconds=value * units[unit])


def run(args: argparse.Namespace) -> int:
    from service.gc import collect_garbage
    from service.idempotency import expire_keys
    from service.storage import BlobStore

    older_than = _duration(args.older_than)
    settings = load_settings()
    engine = migrated_engine(settings)
    try:
        result = collect_garbage(engine, BlobStore(settings.data_dir), older_than,
                                 dry_run=args.dry_run)
        expired = 0 if args.dry_run else expire_keys(engine)
    finally:
        engine.dispose()
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {result.removed} unreferenced file(s), {result.removed_bytes} bytes; "
          f"left {result.recent} younger than {args.older_than}; {result.kept} in use; "
          f"{result.removed_derived} derived file(s) (thumbnails, re-encoded photos) with them")
    if not args.dry_run:
        print(f"expired {expired} Idempotency-Key(s) older than 24 h")
    return 0
