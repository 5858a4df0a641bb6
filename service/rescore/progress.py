"""Progress on stderr: a rich bar on a terminal, plain periodic lines otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "make_progress"]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Plain lines every `interval` seconds: done/total, items/s of this run, ETA, errors."""

    def __init__(self, total: int, already_done: int, *, stream: TextIO | None = None,
                 interval: float = 10.0) -> None:
        self.total = total
        self.done = already_done
        self.errors = 0
        self.stream = stream or sys.stderr
        self.interval = interval
        self._start = time.monotonic()
        self._scored = 0  # this run only: skipped items must not inflate the rate
        self._last = self._start

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rate(self) -> float:
        elapsed = time.monotonic() - self._start
        return self._scored / elapsed if elapsed > 0 else 0.0

    def advance(self, error: bool) -> None:
        self.done += 1
        self._scored += 1
        self.errors += int(error)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._line()

    def _line(self) -> None:
        rate = self.rate()
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 else "?"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        print(f"rescore: {self.done}/{self.total} items ({percent:.0f}%), {rate:.2f} items/s, "
              f"ETA {eta}, {self.errors} error(s) this run", file=self.stream, flush=True)

    def close(self) -> None:
        if self._scored:
            self._line()


class RichProgress(Progress):
    """The same figures as a rich progress bar (items/s and ETA) on an interactive terminal."""

    def __init__(self, total: int, already_done: int, *, stream: TextIO | None = None) -> None:
        super().__init__(total, already_done, stream=stream)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn("rescore"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.2f} items/s"), TextColumn("{task.fields[errors]} err"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(file=self.stream), transient=False)
        self._bar.start()
        self._task = self._bar.add_task("rescore", total=total, completed=already_done,
                                        rate=0.0, errors=0)

    def advance(self, error: bool) -> None:
        self.done += 1
        self._scored += 1
        self.errors += int(error)
        self._bar.update(self._task, advance=1, rate=self.rate(), errors=self.errors)

    def close(self) -> None:
        self._bar.stop()


def make_progress(total: int, already_done: int, *, interval: float = 10.0,
                  stream: TextIO | None = None) -> Progress:
    """A rich bar when `stream` (stderr by default) is a terminal, else plain lines."""
    stream = stream or sys.stderr
    if stream.isatty():
        return RichProgress(total, already_done, stream=stream)
    return Progress(total, already_done, stream=stream, interval=interval)
