"""Batch re-scoring of archived inspections (`sealcheck rescore`).

- :mod:`.manifest`: the CSV / JSON Lines manifest of golden/unit pairs.
- :mod:`.job`: the driver: resolves items, skips those done, writes RESULTS exactly once.
- :mod:`.results`: the RESULTS file (whole-line appends with fsync, torn-line recovery, lock).
- :mod:`.worker`: scoring one item in a worker (golden cache, one ONNX session per worker).
- :mod:`.engines`: the local process pool and Ray Data (:mod:`.ray_scorer` runs in actors).
- :mod:`.stored`: ``--from-db``: stored inspections re-scored into report versions.
- :mod:`.progress`: a rich bar on a terminal, plain lines otherwise.

Nothing heavy is imported here, so the CLI's usage errors stay instant.
"""
