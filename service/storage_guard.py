"""Storage failures (disk full, read-only file system, database gone): a clear answer, no orphans,
and a readiness that says so until storage works again.

- :func:`storage_unavailable` tells a storage failure (``OSError`` ENOSPC, EROFS, ...; the
  database's ``OperationalError``) from a bug, as the service error the user sees: 507 when
  out of space, else 503, both with Retry-After (service.http_errors).
- :class:`Writes` is what a request that stores files uses: its background writes are
  tracked, and when the request fails they are waited for and the files it created removed,
  so a photo written before a failed commit does not stay behind.
- :class:`StorageHealth` remembers the last storage failure; ``/readyz`` answers not-ready
  until a probe shows that a file of the largest upload's size fits, a file can be written
  and the database commits again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from service.db import HealthProbe, utcnow
from service.errors import StorageUnavailable
from service.storage import BlobStore, NewFiles

__all__ = ["StorageHealth", "Writes", "guarded_writes", "storage_unavailable"]

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_REFUSED = {errno.EROFS, errno.EIO, errno.EACCES}
_NOTHING_STORED = "nothing was stored; send the request again later"


def storage_unavailable(exc: BaseException) -> StorageUnavailable | None:
    """The StorageUnavailable that `exc` amounts to, or None when it is no storage failure."""
    if isinstance(exc, OSError) and exc.errno in _FULL | _REFUSED:
        reason = exc.strerror or errno.errorcode.get(exc.errno, "error")
        if exc.errno in _FULL:
            return StorageUnavailable(f"the server's storage is full ({reason}); "
                                      f"{_NOTHING_STORED}, once space is freed", full=True)
        return StorageUnavailable(f"the server cannot write its files ({reason}); "
                                  f"{_NOTHING_STORED}", full=False)
    if isinstance(exc, OperationalError):
        text = str(exc.orig).splitlines()[0][:160] if exc.orig is not None else str(exc)
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if "disk is full" in text or sqlstate == "53100":  # SQLite SQLITE_FULL; PG disk_full
            return StorageUnavailable(f"the database's storage is full ({text}); "
                                      f"{_NOTHING_STORED}, once space is freed", full=True)
        return StorageUnavailable(f"the database is unavailable ({text}); {_NOTHING_STORED}",
                                  full=False)
    return None


class StorageHealth:
    """The last storage failure seen, cleared only when a probe shows storage works again."""

    def __init__(self) -> None:
        self._problem: str | None = None
        self._lock = threading.Lock()

    def failed(self, error: StorageUnavailable) -> None:
        with self._lock:
            self._problem = error.message

    @property
    def problem(self) -> str | None:
        return self._problem

    def check(self, engine: sa.Engine, blobs: BlobStore, room_bytes: int) -> str | None:
        """None when storage works, else what is wrong (one line), for /readyz.

        Always: the database answers, a file can be created in the data directory. After a
        failure, also: `room_bytes` free (room for the largest upload) and a committed write.
        """
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; say which
            return f"database: {exc.__class__.__name__}"
        if not blobs.root.is_dir():
            return f"data directory {blobs.root} is missing"
        try:
            _probe_file(blobs.root)
        except OSError as exc:
            return f"data directory {blobs.root} is not writable ({exc.strerror})"
        problem = self._problem
        if problem is None:
            return None
        free = shutil.disk_usage(blobs.root).free
        if free < room_bytes:
            return (f"{problem}; the data directory has {free} bytes free, less than one upload "
                    f"({room_bytes} bytes)")
        try:
            _probe_commit(engine)
        except Exception as exc:
            return f"{problem}; the database still cannot commit ({exc.__class__.__name__})"
        with self._lock:
            if self._problem == problem:
                self._problem = None
        return None


def _probe_file(root: Path) -> None:
    # Under tmp/ as a .part file: BlobStore.open sweeps one that a crash left.
    probe = root / "tmp" / f"readyz-{os.getpid()}-{threading.get_ident()}.part"
    try:
        with open(probe, "wb") as out:
            out.write(b"\0" * 4096)
            out.flush()
            os.fsync(out.fileno())
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _probe_commit(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        updated = connection.execute(sa.update(HealthProbe).where(HealthProbe.id == 1)
                                     .values(written_at=utcnow())).rowcount
        if not updated:
            connection.execute(sa.insert(HealthProbe).values(id=1, written_at=utcnow()))


class Writes:
    """The background writes and new files of one request (see :func:`guarded_writes`)."""

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self.files = NewFiles()
        self._executor = executor
        self._pending: list[concurrent.futures.Future] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        future = self._executor.submit(fn, *args)
        self._pending.append(future)
        return future

    def settle(self) -> None:
        """Wait for every write submitted (a failed request must not leave one running)."""
        concurrent.futures.wait(self._pending)


@contextlib.contextmanager
def guarded_writes(executor: concurrent.futures.Executor, health: StorageHealth
                   ) -> Iterator[Writes]:
    """Run a request's writes; if it fails, wait for them and remove the files it created.

    A storage failure is raised as StorageUnavailable (and remembered by `health`); anything
    else is raised as it came.
    """
    writes = Writes(executor)
    try:
        yield writes
    except BaseException as exc:
        writes.settle()
        writes.files.remove()
        error = storage_unavailable(exc)
        if error is None:
            raise
        health.failed(error)
        raise error from exc
