"""The admission budget with its worker pool, and the cache of prepared goldens.

Everything expensive a client can ask for passes one bounded gate, :class:`PipelinePool`:
comparisons, sealing and inspections (from the first byte of their upload, which is held in
memory, to the stored record), parsing a spec sheet (a 250 KB YAML takes seconds of pure
Python, so it runs in a helper process: in a thread it would hold the GIL, and so the event
loop), and re-encoding a photo or thumbnail that is not on disk yet (an 80 MP photo is ~0.8 GB
while it is re-encoded). A request takes one place in the budget for all of its work;
when all ``workers + queue_size`` places are taken the service answers 503 with Retry-After
at once, before reading the upload, instead of piling up memory and requests. Health checks,
pages and stored files (sent from disk) never touch the gate and stay fast.

The work runs on a fixed pool of threads, one per CPU by default (``SEALCHECK_WORKERS``),
never on the event loop. Threads, not processes, because OpenCV and NumPy release the GIL in
their heavy loops, and because a prepared golden holds OpenCV keypoints that cannot be pickled
to another process. So at most ``workers`` expensive jobs hold their memory at once.

Prepared goldens (:func:`vision.prepare.prepare_golden`) are kept in a bounded in-process LRU
cache keyed by golden id. Sealing fills it; after a restart, or once a golden has been pushed
out, the first inspection against it recomputes it from the stored primary photo (one
prepare_golden, ~0.2 s at 12 MP) and puts it back. Each server process has its own cache.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import multiprocessing
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from service.errors import Busy
from service.metrics import Metrics

__all__ = ["Admission", "GoldenCache", "KeyedOnce", "PipelinePool"]

T = TypeVar("T")


class Admission:
    """One admitted request's place in the budget: its expensive steps run through it."""

    def __init__(self, pool: PipelinePool) -> None:
        self._pool = pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a worker thread, once one is free."""
        return await asyncio.wrap_future(self._pool._executor.submit(fn, *args))

    async def run_in_process(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in one of the pool's helper processes (one per worker): for pure-Python
        work (a YAML spec sheet) that would hold the GIL, and so the event loop, for seconds.
        `fn`, its arguments and its result must pickle; the processes start on first use, and
        again after one died (the calls that saw it die raise BrokenProcessPool)."""
        return await self._pool._in_process(fn, *args)


class PipelinePool:
    """The admission budget: a bounded thread pool for everything expensive; refuses work
    (Busy) when all its places are taken."""

    RETRY_AFTER = 5
    """Seconds a refused client waits: a rough time for one queue's worth of work to drain."""

    def __init__(self, workers: int, queue_size: int, metrics: Metrics) -> None:
        self.workers = workers
        self.capacity = workers + queue_size
        self._executor = concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="sealcheck-pipeline")
        self._jobs = 0  # touched only on the event loop's thread, so no lock
        self._metrics = metrics
        self._processes: concurrent.futures.ProcessPoolExecutor | None = None

    @property
    def jobs(self) -> int:
        return self._jobs

    def _publish(self) -> None:
        self._metrics.in_flight.set(self._jobs)
        self._metrics.queue_depth.set(max(0, self._jobs - self.workers))

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[Admission]:
        """Hold one place for the block (its upload and every job it runs), or raise Busy."""
        if self._jobs >= self.capacity:
            self._metrics.rejected.inc()
            raise Busy(f"the server is busy (all {self.capacity} places for comparisons, "
                       "uploads and photo encodings are taken); retry after a few seconds",
                       retry_after=self.RETRY_AFTER)
        self._jobs += 1
        self._publish()
        try:
            yield Admission(self)
        finally:
            self._jobs -= 1
            self._publish()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a worker thread, in a place of its own (Busy when there is none)."""
        async with self.admit() as admission:
            return await admission.run(fn, *args)

    async def _in_process(self, fn: Callable[..., T], *args: Any) -> T:
        if self._processes is None:
            # spawn: a fork of a threaded server could copy a lock held by another thread.
            self._processes = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"))
        processes = self._processes
        try:
            return await asyncio.wrap_future(processes.submit(fn, *args))
        except concurrent.futures.process.BrokenProcessPool:
            if self._processes is processes:
                self._processes = None
                processes.shutdown(wait=False, cancel_futures=True)
            raise

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=True, cancel_futures=True)


class KeyedOnce:
    """Runs a build at most once at a time per key, across threads: callers that miss together
    wait for the first one's result instead of building it again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def get_or_build(self, key: str, get: Callable[[], T | None], build: Callable[[], T]
                     ) -> tuple[T, bool]:
        """`get()` if it has the value, else `build()`'s, built once. Returns (value, hit)."""
        value = get()
        if value is not None:
            return value, True
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        try:
            with building:
                value = get()
                if value is not None:
                    return value, True
                return build(), False
        finally:
            with self._lock:
                if self._building.get(key) is building:
                    del self._building[key]


class GoldenCache:
    """A thread-safe LRU of prepared goldens keyed by golden id."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._once = KeyedOnce()

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
        def build_and_keep() -> Any:
            value = build()
            self.put(key, value)
            return value

        return self._once.get_or_build(key, lambda: self.get(key), build_and_keep)

    def __len__(self) -> int:
        return len(self._items)
