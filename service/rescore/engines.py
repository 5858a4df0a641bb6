"""Where items are scored: a local process pool, or Ray Data across machines.

Both engines take the tasks still to do and yield one result dict per task as soon as it is
done (completion order, not manifest order); the driver writes each result before asking for
the next, so a crash loses at most the items in flight.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool

from service.rescore import worker

__all__ = ["LocalEngine", "RayEngine"]

_MAX_ATTEMPTS = 2  # an item in flight when a worker process died twice is recorded as an error


def _died(task: dict) -> dict:
    return {
        "id": task["id"], "row": task["row"], "status": "error", "inputs": task["inputs"],
        "input_hashes": {"golden": None, "unit": None, "spec": task["spec_sha256"]},
        "scoring_version": None,
        "error": {"kind": "internal", "message": "a worker process died while scoring this "
                  f"item ({_MAX_ATTEMPTS} attempts; out of memory?); it is retried when the "
                  "job is resumed"},
        "files": {"golden": None, "unit": None},
    }


class LocalEngine:
    """A pool of `workers` processes, spawned once, each holding one :class:`worker.Scorer`."""

    name = "local"

    def __init__(self, workers: int, options: dict) -> None:
        self.workers = workers
        self.options = options
        self._started: concurrent.futures.ProcessPoolExecutor | None = None

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        # spawn, not fork: forking a process whose OpenCV/onnxruntime threads exist is unsafe.
        return concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.init_process, initargs=(os.getpid(), self.options))

    def start(self) -> None:
        """Spawn the workers now: their start-up (interpreter, imports, the model session,
        ~0.6 s each) then overlaps the driver's own (the model check, reading RESULTS,
        hashing inputs) instead of following it. :meth:`run` takes them over; call
        :meth:`close` if it never runs."""
        if self._started is None:
            self._started = self._new_pool()
            for _ in range(self.workers):  # each submit to a busy pool spawns one more process
                self._started.submit(worker.ready)

    def close(self) -> None:
        pool, self._started = self._started, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def run(self, tasks: list[dict]) -> Iterator[dict]:
        pending = collections.deque(tasks)
        attempts: collections.Counter[str] = collections.Counter()
        while pending:
            pool, self._started = self._started or self._new_pool(), None
            in_flight: dict[concurrent.futures.Future, dict] = {}
            finished = False
            try:
                broken = False
                while (pending and not broken) or in_flight:
                    # Two tasks per worker in flight: each worker has its next item queued
                    # while the driver writes results, and a crash loses little work.
                    while pending and not broken and len(in_flight) < 2 * self.workers:
                        task = pending.popleft()
                        try:
                            in_flight[pool.submit(worker.score_in_process, task)] = task
                        except BrokenProcessPool:
                            pending.appendleft(task)
                            broken = True
                    if not in_flight:
                        break
                    done, _ = concurrent.futures.wait(
                        in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in done:
                        task = in_flight.pop(future)
                        try:
                            result = future.result()
                        except BrokenProcessPool:
                            broken = True
                            attempts[task["id"]] += 1
                            if attempts[task["id"]] >= _MAX_ATTEMPTS:
                                yield _died(task)
                            else:
                                pending.appendleft(task)
                            continue
                        yield result
                finished = not broken
            finally:
                if not finished:
                    # Interrupted (Ctrl-C, an error in the driver) or broken: stop the workers
                    # now rather than letting them finish items nobody will write.
                    for process in list(getattr(pool, "_processes", {}).values()):
                        process.kill()
                pool.shutdown(wait=True, cancel_futures=True)


class RayEngine:
    """Ray Data: ``map_batches`` with a callable class, one :class:`worker.Scorer` per actor.

    With `address`, connects to that cluster (every node needs the same sealcheck installed and
    the photos at the same paths, e.g. a shared file system); without, starts a local instance
    with `workers` CPUs, unless the process is already connected to one.
    """

    name = "ray"

    def __init__(self, workers: int | None, options: dict, address: str | None = None) -> None:
        self.workers = workers
        self.options = options
        self.address = address

    def start(self) -> None:
        """Nothing ahead of :meth:`run`: Ray starts its actors when the dataset runs."""

    def close(self) -> None:
        pass

    def run(self, tasks: list[dict]) -> Iterator[dict]:
        if not tasks:
            return
        try:
            import ray
            import ray.data
        except ImportError as exc:
            raise RuntimeError("--engine ray needs Ray Data: pip install 'sealcheck[ray]'") \
                from exc
        from service.rescore.ray_scorer import RayScorer

        started = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False, logging_level="warning")
            else:
                ray.init(num_cpus=self.workers or None, include_dashboard=False,
                         log_to_driver=False,
                         logging_level="warning")
            started = True
        # Ray Data's per-run INFO lines would interleave with our progress lines.
        data_logger = logging.getLogger("ray.data")
        level = data_logger.level
        data_logger.setLevel(logging.WARNING)
        try:
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False  # ours is on stderr already
            context.execution_options.preserve_order = False  # stream in completion order
            # Small blocks: Ray streams output block by block, so a block's items are written
            # (and survive a crash) together; 2 items keep that granule small.
            # (At most 10000 blocks: beyond that the scheduler's per-block cost starts to
            # count, and a block of 20 items is still well under a minute of work.)
            dataset = ray.data.from_items(
                [{"task": json.dumps(task)} for task in tasks],
                override_num_blocks=max(1, min((len(tasks) + 1) // 2, 10_000)))
            # Without --workers on a cluster: one actor per CPU of the cluster.
            actors = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            scored = dataset.map_batches(
                RayScorer, fn_constructor_kwargs={"options": self.options}, batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1,
                batch_format="numpy")
            for batch in scored.iter_batches(batch_size=1, batch_format="numpy",
                                             prefetch_batches=0):
                for text in batch["result"]:
                    yield json.loads(str(text))
        finally:
            data_logger.setLevel(level)
            if started:
                ray.shutdown()
