"""The pipeline's worker pool and the cache of prepared goldens.

The pipeline is CPU-bound, so it never runs on the event loop: jobs go to a fixed pool of
threads, one per CPU by default (``SEALCHECK_WORKERS``). Threads, not processes, because
OpenCV and NumPy release the GIL in their heavy loops, and because a prepared golden holds
OpenCV keypoints that cannot be pickled to another process. At most ``queue_size`` jobs may
wait for a worker; beyond that the service answers 503 with Retry-After instead of piling up
requests, and health checks, which never touch the pool, stay fast.

Prepared goldens (:func:`vision.prepare.prepare_golden`) are kept in a bounded in-process LRU
cache keyed by golden id. Sealing fills it; after a restart, or once a golden has been pushed
out, the first inspection against it recomputes it from the stored primary photo (one
prepare_golden, ~0.2 s at 12 MP) and puts it back. Each server process has its own cache.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from service.errors import Busy
from service.metrics import Metrics

__all__ = ["GoldenCache", "PipelinePool"]

T = TypeVar("T")


class PipelinePool:
    """A bounded thread pool for pipeline jobs; refuses work (Busy) when the queue is full."""

    def __init__(self, workers: int, queue_size: int, metrics: Metrics) -> None:
        self.workers = workers
        self.capacity = workers + queue_size
        self._executor = concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="sealcheck-pipeline")
        self._jobs = 0  # touched only on the event loop's thread, so no lock
        self._metrics = metrics

    @property
    def jobs(self) -> int:
        return self._jobs

    def _publish(self) -> None:
        self._metrics.in_flight.set(self._jobs)
        self._metrics.queue_depth.set(max(0, self._jobs - self.workers))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._jobs >= self.capacity:
            self._metrics.rejected.inc()
            # A rough time for one queue's worth of work to drain: clients back off that long.
            raise Busy(f"the server is busy ({self._jobs} inspections running or queued); "
                       "retry after a few seconds", retry_after=5)
        self._jobs += 1
        self._publish()
        try:
            return await asyncio.wrap_future(self._executor.submit(fn, *args))
        finally:
            self._jobs -= 1
            self._publish()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class GoldenCache:
    """A thread-safe LRU of prepared goldens keyed by golden id."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def get(self, key: str) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_build(self, key: str, build: Callable[[], Any]) -> tuple[Any, bool]:
        """The cached value, or `build()`'s, built once even when many requests miss at once
        (after a restart every inspection of a busy golden misses together). Returns
        (value, hit)."""
        value = self.get(key)
        if value is not None:
            return value, True
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            value = self.get(key)
            if value is not None:
                return value, True
            value = build()
            self.put(key, value)
        with self._lock:
            self._building.pop(key, None)
        return value, False

    def __len__(self) -> int:
        return len(self._items)
