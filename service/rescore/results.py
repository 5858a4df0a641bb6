"""The RESULTS file: JSON Lines, one object per item, written so that a crash loses nothing.

Exactly once rests on three habits:

- Each result is appended as one whole line with a single ``write`` on an ``O_APPEND`` file,
  then ``fsync``: a line that is complete on disk is durable, and a ``kill -9`` can at worst
  leave the *last* line torn.
- On resume, a torn last line is cut off (truncated to the last newline) and the complete
  lines say which items are done; the job only scores the others.
- A lock (``flock`` on ``RESULTS.lock``) keeps two runs from appending to the same file; the
  kernel releases it when its holder dies, even by ``kill -9``, so a crash never leaves a
  stale lock behind.

When some results must go (their inputs or the scoring changed), the file is rewritten
atomically (temporary file, fsync, rename, fsync of the directory) before anything is appended.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from service.storage import fsync_dir, replaced_atomically

__all__ = ["LockedError", "ResultsFile", "slim"]

_SLIM_KEYS = ("id", "row", "status", "scoring_version", "input_hashes", "files", "error")


class LockedError(RuntimeError):
    """Another process holds the RESULTS file's lock."""


def slim(record: dict) -> dict:
    """What the driver keeps of a result: everything but the report, whose verdict it keeps."""
    kept = {key: record.get(key) for key in _SLIM_KEYS}
    report = record.get("report")
    kept["verdict"] = report.get("verdict") if isinstance(report, dict) else None
    return kept


def dumps(record: dict) -> str:
    """One result as one line (no newline inside: JSON escapes them)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class ResultsFile:
    """Append-only JSON Lines with a lock, torn-line recovery and atomic rewrites."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.summary_path = self.path.with_name(self.path.name + ".summary.json")
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self.unreadable = 0  # lines load() could not read (removed by the next rewrite)

    # -- lock ------------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the lock or raise :class:`LockedError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockedError(
                f"{self.path} is being written by another 'sealcheck rescore' (pid {holder}); "
                "wait for it to finish, or write to another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock; the file stays (no unlink race)
            self._lock_fd = None

    # -- reading and recovery --------------------------------------------------------------

    def load(self) -> tuple[list[dict], list[str]]:
        """Slim copies (see :func:`slim`) of the complete results on disk, after cutting off a
        torn last line. Returns (records, notes): notes say what recovery did, for the user.

        Slim, because RESULTS of a few hundred thousand items holds gigabytes of reports that
        the driver does not need to keep in memory.
        """
        notes: list[str] = []
        if not self.path.exists():
            return [], notes
        with open(self.path, "r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    keep = self._last_newline_end(handle, size)
                    # Only the last line can be torn (whole-line appends), so this loses at
                    # most the item that was being written when the process died.
                    handle.truncate(keep)
                    handle.flush()
                    os.fsync(handle.fileno())
                    notes.append(f"cut off a torn last line ({size - keep} bytes) left by an "
                                 "interrupted run; its item is scored again")
        records, bad = [], 0
        for record in self.iter_records():
            if record is None:
                bad += 1
            else:
                records.append(slim(record))
        self.unreadable = bad
        if bad:
            notes.append(f"dropped {bad} unreadable line(s); those items are scored again")
        return records, notes

    @staticmethod
    def _last_newline_end(handle, size: int) -> int:
        """Offset just after the last newline (0 if none), reading backwards in blocks."""
        position = size
        while position > 0:
            start = max(0, position - (1 << 16))
            handle.seek(start)
            block = handle.read(position - start)
            found = block.rfind(b"\n")
            if found >= 0:
                return start + found + 1
            position = start
        return 0

    def iter_records(self) -> Iterator[dict | None]:
        """Every line parsed, in file order (None for a line that is not a result)."""
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                yield record if isinstance(record, dict) and "id" in record else None

    def rewrite(self, keep_ids: set[str]) -> None:
        """Keep only the first line of each id in `keep_ids`, atomically."""
        written: set[str] = set()
        with replaced_atomically(self.path, "wb") as out, open(self.path, "rb") as source:
            for line in source:
                try:
                    record_id = json.loads(line).get("id")
                except (ValueError, AttributeError):
                    continue
                if record_id in keep_ids and record_id not in written:
                    out.write(line if line.endswith(b"\n") else line + b"\n")
                    written.add(record_id)

    # -- appending -------------------------------------------------------------------------

    def append(self, record: dict) -> None:
        """Append one result durably (returns after fsync)."""
        if self._fd is None:
            existed = self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if not existed:
                fsync_dir(self.path.parent)  # the new file's name must survive a crash too
        line = (dumps(record) + "\n").encode("utf-8")
        view = memoryview(line)
        while view:  # a regular file takes it in one write; loop in case it does not
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def write_summary(self, summary: dict) -> None:
        """The job's summary beside RESULTS (atomic), so RESULTS stays one object per item."""
        with replaced_atomically(self.summary_path, "w") as handle:
            json.dump(summary, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
