"""Timing and concurrency around the stages: the only place a comparison measures time or
starts a thread.

The stages (:mod:`vision.calibrate`, :mod:`vision.register`, :mod:`vision.frame`,
:mod:`vision.measure`, :mod:`vision.judge`) take inputs and return results; the orchestrator
(:mod:`vision.compare`) runs each of them through a :class:`StageRunner`, which times it under
the stage's name (the report's ``timings_ms``) and, for a one-off comparison on idle cores,
runs the stages that do not depend on each other in a second thread. OpenCV, numpy and
onnxruntime release the GIL, so the two threads overlap.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["StageRunner"]

T = TypeVar("T")


class StageRunner:
    """Runs stages, adds up their wall time by name (ms, rounded to 0.01), and runs work
    beside the caller's thread when made with ``threads=2``.

    A context manager: leaving it waits for what was started beside (and closes the thread),
    so no work outlives the comparison; errors come out of ``result()``.
    """

    def __init__(self, threads: int = 1) -> None:
        if threads not in (1, 2):
            raise ValueError(f"threads must be 1 or 2, got {threads!r}")
        self.timings_ms: dict[str, float] = {}
        self._pool = None
        if threads == 2:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="sealcheck-beside")

    def __enter__(self) -> StageRunner:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def add(self, name: str, ms: float) -> None:
        """Count `ms` of wall time under `name` (stages timed elsewhere, e.g. a prepared unit)."""
        self.timings_ms[name] = round(self.timings_ms.get(name, 0.0) + ms, 2)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time the block under `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - start) * 1e3)

    def run(self, name: str, stage: Callable[..., T], *args, **kwargs) -> T:
        """`stage(*args, **kwargs)` here and now, timed as `name`."""
        with self.timed(name):
            return stage(*args, **kwargs)

    def beside(self, name: str, stage: Callable[..., T], *args, **kwargs
               ) -> concurrent.futures.Future[T]:
        """`stage(*args, **kwargs)` timed as `name`, in the second thread (``threads=2``) or
        here and at once (``threads=1``); its future."""
        if self._pool is not None:
            return self._pool.submit(self.run, name, stage, *args, **kwargs)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        future.set_result(self.run(name, stage, *args, **kwargs))
        return future
