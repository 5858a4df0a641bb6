"""Scoring one item, in a worker: read, hash, decode, prepare the golden (cached), compare.

A worker is a process of the local pool or a Ray actor; each holds one :class:`Scorer` for its
whole life, so the per-worker set-up (imports, OpenCV's thread pool, the ONNX session) is paid
once, and a golden used by many units is prepared once per worker (an LRU keyed by the SHA-256
of the golden file's bytes, so two paths to the same photo share one entry).

This module's top level imports nothing heavy: a spawned pool process imports it before its
initializer has set the thread counts.
"""

from __future__ import annotations

import collections
import hashlib
import os
import signal
import sys
from typing import Any

__all__ = ["Scorer", "configure_threads", "scoring_version"]

GOLDEN_CACHE_SIZE = 8  # prepared goldens per worker (~60 MB each at 12 MP)


class InputError(Exception):
    """A bad item (missing file, corrupt photo, bad spec): recorded, and the job goes on."""


def configure_threads() -> None:
    """One thread per library in each worker: a worker is one core.

    N workers each running OpenCV's and onnxruntime's own thread pools would oversubscribe the
    machine (threads waiting for each other at every parallel loop); one process per core with
    one thread each is the efficient arrangement for a batch of independent items. Every
    :class:`Scorer` does it, whatever the number of workers, so `--workers 1` uses one core
    (the defect model's session gets its one thread from the Scorer).
    """
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"  # read by NumPy's BLAS when it is first imported
    import cv2

    cv2.setNumThreads(1)


def package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("sealcheck")
    except metadata.PackageNotFoundError:
        return "unknown"


def scoring_version(model_version: str) -> str:
    """What identifies a scoring: sealcheck's version, the report schema, the defect model.

    Results carry it, and a resumed job skips an item only when it matches: a new model or
    report schema re-scores everything, since the defect model finds regions in every report.
    """
    from vision.report import SCHEMA_VERSION

    return f"sealcheck {package_version()}; report {SCHEMA_VERSION}; {model_version}"


def _read(path: str, expected_sha256: str | None) -> tuple[bytes, str, dict]:
    """The file's bytes, their SHA-256 and its fingerprint (size, mtime) as read."""
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            data = handle.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a photo") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror})") from None
    sha256 = hashlib.sha256(data).hexdigest()
    if expected_sha256 and sha256 != expected_sha256:
        raise InputError(f"{path}: the stored photo is damaged: its SHA-256 {sha256[:12]}... "
                         f"does not match its name {expected_sha256[:12]}...; restore it from "
                         "a backup")
    return data, sha256, {"path": path, "size": status.st_size, "mtime_ns": status.st_mtime_ns}


class Scorer:
    """Scores tasks (dicts built by :mod:`service.rescore.job`) into result dicts."""

    def __init__(self, *, max_pixels: int | None = None, defect_model_path: str | None = None,
                 golden_cache_size: int = GOLDEN_CACHE_SIZE) -> None:
        """`max_pixels`: the cap on a photo's pixels (None: vision.decode's default);
        `defect_model_path`: the model file the driver uses (None: the packaged one)."""
        configure_threads()
        from vision import defect_model
        from vision.decode import DEFAULT_MAX_PIXELS

        defect_model.configure(path=defect_model_path, threads=1)  # a worker is one core

        # One ONNX session per worker, created here once (compare() runs the model on every
        # pair). Loading it before the first item checks, on every worker (every machine, with
        # Ray), that the model file is there and is the one the driver expects, and its
        # version goes into scoring_version.
        self.model_version = defect_model.model_version()
        self.scoring_version = scoring_version(self.model_version)
        self.max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
        self._goldens: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._cache_size = golden_cache_size
        self.goldens_prepared = 0  # for tests and the benchmark: cache misses

    def _prepared(self, data: bytes, sha256: str, name: str, stored: bool):
        prepared = self._goldens.get(sha256)
        if prepared is not None:
            self._goldens.move_to_end(sha256)
            return prepared
        from vision.load import load_for_report
        from vision.prepare import prepare_golden

        # A stored golden was accepted at sealing: a pixel cap lowered since must not refuse it.
        # Decoded at the reduced size a report needs (1/2 of a 12 MP JPEG, through its DCT).
        rgb, size = load_for_report(data, name=name,
                                    max_pixels=10**12 if stored else self.max_pixels)
        prepared = prepare_golden(rgb, photo_size=size)
        self.goldens_prepared += 1
        self._goldens[sha256] = prepared
        while len(self._goldens) > self._cache_size:
            self._goldens.popitem(last=False)
        return prepared

    def score(self, task: dict) -> dict:
        """One result; never raises for a bad item (the error is the result)."""
        result: dict = {
            "id": task["id"], "row": task["row"], "status": "ok",
            "inputs": task["inputs"],
            "input_hashes": {"golden": None, "unit": None, "spec": task["spec_sha256"]},
            "scoring_version": self.scoring_version,
        }
        files: dict = {"golden": None, "unit": None}
        try:
            report = self._compare(task, result["input_hashes"], files)
            result["report"] = report
        except InputError as exc:
            result.update(status="error", error={"kind": "input", "message": str(exc)})
        except Exception as exc:  # a bug or a resource problem: recorded, retried on resume
            result.update(status="error", error={
                "kind": "internal", "message": f"{exc.__class__.__name__}: {exc}"})
        result["files"] = files
        return result

    def _compare(self, task: dict, hashes: dict, files: dict) -> dict:
        from vision.compare import compare
        from vision.decode import ImageDecodeError
        from vision.load import load_for_report
        from vision.spec import SpecError, stored_spec

        golden, unit = task["golden"], task["unit"]
        data: dict[str, bytes] = {}
        problems = []
        # Both files are read (and hashed) before any error is raised, so the result records
        # every input that exists and a resume can tell whether anything changed.
        for side, where in (("golden", golden), ("unit", unit)):
            try:
                data[side], hashes[side], files[side] = _read(where["path"],
                                                              where.get("sha256"))
            except InputError as exc:
                problems.append(str(exc))
        if problems:
            raise InputError("; ".join(problems))
        golden_data, unit_data = data["golden"], data["unit"]
        try:
            # A dict: a manifest's spec as parsed (parse_spec), or a stored golden's, which
            # may come from before the spec's numbers were bounded.
            spec = stored_spec(task["spec"]) if task["spec"] is not None else None
            prepared = self._prepared(golden_data, hashes["golden"], golden["path"],
                                      golden.get("stored", False))
            unit_rgb, unit_size = load_for_report(
                unit_data, name=unit["path"],
                max_pixels=10**12 if unit.get("stored") else self.max_pixels)
        except (ImageDecodeError, SpecError) as exc:
            raise InputError(str(exc)) from None
        if spec is not None and spec.roi is not None:
            x, y, _, _ = spec.roi
            gw, gh = prepared.size
            if x >= gw or y >= gh:
                raise InputError(f"{task['inputs'].get('spec') or 'spec'}: roi starts at "
                                 f"({x}, {y}), outside the golden photo ({gw}x{gh}); give it "
                                 "in golden pixels")
        comparison = compare(prepared, unit_rgb, spec, render_images=False,
                             unit_photo_size=unit_size)
        return comparison.report.model_dump(mode="json")


# --------------------------------------------------------------------------------------------
# The local engine's pool processes: one Scorer each, made by the pool's initializer.

_scorer: Scorer | None = None


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the driver dies (kill -9 included), so that an
    interrupted job never leaves workers burning the CPUs its resume needs."""
    if sys.platform != "linux":
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


def init_process(parent_pid: int, options: dict) -> None:
    """Pool initializer: one Scorer per process."""
    global _scorer
    _die_with_parent()
    if os.getppid() != parent_pid:  # the driver died before prctl took effect
        os._exit(1)
    # Ctrl-C goes to the whole process group: the driver handles it and stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from service.runtime import tune_allocator

    tune_allocator()  # big photo arrays reuse freed memory (see service/runtime.py)
    _scorer = Scorer(**options)


def ready() -> int:
    """Nothing: submitted once per worker to spawn a pool before its first task."""
    return os.getpid()


def score_in_process(task: dict) -> dict:
    assert _scorer is not None, "init_process did not run"
    result = _scorer.score(task)
    import cv2

    result["_worker"] = {"pid": os.getpid(), "goldens_prepared": _scorer.goldens_prepared,
                         "opencv_threads": cv2.getNumThreads()}
    return result


def worker_scoring_version(_: object = None) -> str:
    """The scoring version this worker's installation gives (checked against the driver's)."""
    assert _scorer is not None, "init_process did not run"
    return _scorer.scoring_version
