"""Content-addressed files: photos and rendered PNGs, named by the SHA-256 of their bytes.

A file is written atomically: a temporary file in the same file system, fsync, rename onto its
final name, fsync of the directory. So a name that exists always holds the complete bytes, even
after a crash, and the service writes every file *before* the database row that names it is
committed: a row never points at a missing file. The converse is allowed: a crash between the
file and the commit leaves an unreferenced file (harmless; same name if the upload is retried),
which ``sealcheck gc`` (service/gc.py) removes once it is old enough. A request that fails
after writing its files removes the ones it created itself (:class:`NewFiles`), so a full disk
or a lost database leaves none behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["BlobStore", "NewFiles", "fsync_dir", "replaced_atomically"]


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replaced_atomically(path: Path, mode: str = "wb", *, temp_dir: Path | None = None,
                        prefix: str | None = None, suffix: str = ".tmp") -> Iterator[IO]:
    """A file that replaces (or creates) `path` whole or not at all.

    Written under a temporary name in `temp_dir` (default: beside `path`; it must be on the
    same file system), fsynced, renamed onto `path`, and the rename fsynced; the temporary
    file is removed if writing fails. `prefix` defaults to ``.<name>.``.
    """
    prefix = f".{path.name}." if prefix is None else prefix
    fd, temporary = tempfile.mkstemp(dir=temp_dir or path.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    # The rename is durable only once the directory entry is on disk.
    fsync_dir(path.parent)


class NewFiles:
    """The files one request created, to be removed when its row is never committed.

    Each is kept with its modification time: a file that another upload has touched since
    (:meth:`BlobStore.put` touches a file it reuses) may be about to be named by that upload's
    row, so it stays, for ``sealcheck gc`` to judge later. The writes run on several threads.
    """

    def __init__(self) -> None:
        self._files: list[tuple[Path, int]] = []
        self._lock = threading.Lock()

    def add(self, path: Path) -> None:
        mtime_ns = path.stat().st_mtime_ns
        with self._lock:
            self._files.append((path, mtime_ns))

    def remove(self) -> int:
        """Delete the files no one else has touched since; return how many went."""
        removed = 0
        with self._lock:
            files, self._files = self._files, []
        for path, mtime_ns in files:
            with contextlib.suppress(OSError):
                if path.stat().st_mtime_ns == mtime_ns:
                    path.unlink()
                    removed += 1
        return removed


class BlobStore:
    """Files under ``root/blobs/ab/cd/<sha256>``; temporary files under ``root/tmp``.

    Derived files (thumbnails, re-encoded photos) live apart, under
    ``root/derived/ab/cd/<source sha256>.<kind>``: named by the file they are made from, so
    they are made once and found again without a row; the garbage collector removes them with
    their source.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"
        self._derived = self.root / "derived"

    def open(self) -> None:
        """Create the directories; remove temporary files a crash left behind."""
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.glob("*.part"):
            leftover.unlink(missing_ok=True)

    def path(self, sha256: str) -> Path:
        return self._blobs / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes, sha256: str | None = None, *,
            new_files: NewFiles | None = None) -> str:
        """Store `data` durably and return its SHA-256 (hex); a no-op when already stored.

        A file created here (not one that was already stored) is added to `new_files`.
        """
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        final = self.path(sha256)
        if final.is_file():
            # Touched: the file is about to be named by a new row, so the garbage collector
            # (service.gc), which only removes files older than its limit, must leave it.
            os.utime(final)
            return sha256
        final.parent.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(final, temp_dir=self._tmp, prefix="tmp", suffix=".part") as out:
            out.write(data)
        if new_files is not None:
            new_files.add(final)
        return sha256

    def derived_path(self, source_sha256: str, kind: str) -> Path:
        """Where the `kind` derivative of a stored file is (or will be) kept."""
        return self._derived / source_sha256[:2] / source_sha256[2:4] / f"{source_sha256}.{kind}"

    def put_derived(self, source_sha256: str, kind: str, data: bytes, *,
                    new_files: NewFiles | None = None) -> Path:
        """Store a derivative of a stored file, atomically; return its path."""
        final = self.derived_path(source_sha256, kind)
        final.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        with replaced_atomically(final, temp_dir=self._tmp, prefix="tmp", suffix=".part") as out:
            out.write(data)
        if new_files is not None:
            new_files.add(final)
        return final

    def derived_files(self):
        """Every derived file as (source sha256, path), in no particular order."""
        for path in self._derived.glob("??/??/*"):
            if path.is_file() and not path.name.startswith("."):
                yield path.name.split(".", 1)[0], path

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def files(self):
        """Every stored file as (sha256, path), in no particular order."""
        for path in self._blobs.glob("??/??/*"):
            if path.is_file():
                yield path.name, path

    def count(self) -> int:
        """Number of stored files (tests check that a rejected request stored none)."""
        return sum(1 for p in self._blobs.rglob("*") if p.is_file())
