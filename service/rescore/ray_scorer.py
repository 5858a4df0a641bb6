"""The callable class Ray Data's ``map_batches`` runs in each actor (Ray is imported by the
caller; this module itself needs only the worker, so that actors on other machines import it
cheaply)."""

from __future__ import annotations

import json

from service.rescore.worker import Scorer

__all__ = ["RayScorer"]


class RayScorer:
    """One :class:`Scorer` (and so one ONNX session and one golden cache) per actor."""

    def __init__(self, options: dict) -> None:
        from service.runtime import tune_allocator

        tune_allocator()  # big photo arrays reuse freed memory (see service/runtime.py)
        # Actors get one CPU each (num_cpus=1): one thread per library (Scorer), as in the
        # local pool.
        self.scorer = Scorer(**options)

    def __call__(self, batch: dict) -> dict:
        return {"result": [json.dumps(self.scorer.score(json.loads(str(task))))
                           for task in batch["task"]]}
