"""A small real file system for the storage-failure tests: a tmpfs mounted for the test.

Root in a container (as CI and the development machine run) may mount a tmpfs; elsewhere the
tests that need one skip and say why. A tmpfs is a real file system of its own: it fills up
(ENOSPC) and can be remounted read-only (EROFS), as a full or failing disk does.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "mounted_tmpfs", "remounted"]


@contextlib.contextmanager
def mounted_tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount's syntax: 8m) mounted on `directory`; skips if it cannot be."""
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(directory)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("this machine cannot mount a small file system to fill (mount -t tmpfs: "
                    f"{done.stderr.strip() or done.returncode}); it needs root or CAP_SYS_ADMIN")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def remounted(directory: Path, options: str) -> None:
    """Remount the tmpfs at `directory` with `options` (ro, rw)."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(directory)], check=True)


def fill(path: Path) -> int:
    """Write `path` until the file system is full; return how many bytes fitted."""
    written = 0
    chunk = b"\xff" * 65536
    with open(path, "wb", buffering=0) as out:
        while True:
            try:
                written += out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                # Smaller and smaller writes take the last free blocks too.
                chunk = chunk[:len(chunk) // 2]
        with contextlib.suppress(OSError):
            os.fsync(out.fileno())
    return written
