"""Remove stored files that no row names: what uploads killed before their commit leave.

The store writes files before the row that names them (service.storage), so a crash between
the two leaves a file nothing refers to. It is harmless, but it is space, and an upload that
was refused by the crash should not stay on disk. Only files older than a limit go: a file is
written, or touched when an upload reuses it, just before its row commits, and another process
(a second server, a batch job) may be between the two at any moment. Files derived from a
stored file (its thumbnail, its re-encoding for download) go with it, whatever their age: they
are made only from a file that is stored, and made again from it when needed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import sqlalchemy as sa

from service.db import referenced_blobs
from service.storage import BlobStore

__all__ = ["GarbageCollection", "collect_garbage"]


@dataclasses.dataclass(frozen=True)
class GarbageCollection:
    removed: int  # files no row names, older than the limit (or that would be, with dry_run)
    removed_bytes: int  # theirs and their derived files'
    removed_derived: int  # thumbnails and re-encodings of removed (or missing) files
    recent: int  # unreferenced but younger than the limit: left for a later run
    kept: int  # named by a row


def collect_garbage(engine: sa.Engine, blobs: BlobStore, older_than: dt.timedelta, *,
                    dry_run: bool = False) -> GarbageCollection:
    """Delete the files no row names that are older than `older_than`; count what is kept.

    The file list is taken *before* the names are read: a file written after the names were
    read is not in the list, and one written before is either named by then or old enough.
    """
    if older_than < dt.timedelta(0):
        raise ValueError(f"older_than must not be negative, got {older_than}")
    files = list(blobs.files())
    with engine.connect() as connection:
        names = referenced_blobs(connection)
    cutoff = time.time() - older_than.total_seconds()
    removed = removed_bytes = recent = kept = 0
    gone: set[str] = set()
    for sha256, path in files:
        if sha256 in names:
            kept += 1
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed meanwhile (another collector)
            continue
        if stat.st_mtime > cutoff:
            recent += 1
            continue
        if not dry_run:
            path.unlink(missing_ok=True)
        gone.add(sha256)
        removed += 1
        removed_bytes += stat.st_size
    removed_derived = 0
    for source, path in blobs.derived_files():
        # Derived after their source was written, so a missing source is gone for good (a
        # collector killed between the two unlinks, or one before derived files were collected).
        if source in gone or (source not in names and not blobs.exists(source)):
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if not dry_run:
                path.unlink(missing_ok=True)
            removed_derived += 1
            removed_bytes += size
    return GarbageCollection(removed, removed_bytes, removed_derived, recent, kept)
