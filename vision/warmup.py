"""Pay the pipeline's one-time costs ahead of the first comparison.

Two libraries set themselves up on first use, inside the first comparison a process makes:

- OpenCV builds its 8-bit RGB -> CIELAB tables on the first such conversion (the colour-card
  detector's first call pays it): ~95 ms on the 2-core development machine;
- onnxruntime loads and optimises the defect model when its session is created: ~50 ms.

A process that compares once (``sealcheck compare``) can call :func:`warm_up` in a background
thread at start: both run in C without the GIL, so they overlap with the imports and the photo
decoding that the main thread does meanwhile. Long-lived processes pay the costs once either
way. Only cv2 and numpy are imported here, so the thread starts working at once.
"""

from __future__ import annotations

import cv2
import numpy as np


def warm_up(*, model: bool = True) -> None:
    """Build OpenCV's Lab tables and, with `model`, create the defect model's session.

    Errors are left to the comparison itself, which reports them properly (a missing model
    file, say): a warm-up that fails has only not saved time.
    """
    cv2.cvtColor(np.zeros((1, 1, 3), np.uint8), cv2.COLOR_RGB2Lab)
    if model:
        try:
            from vision import defect_model

            defect_model.model_version()
        except Exception:  # noqa: BLE001, S110 - see the docstring: the real call reports it
            pass
