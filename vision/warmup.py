"""Pay the pipeline's one-time library set-up ahead of the first comparison.

Two costs are paid once per process, inside its first comparison unless paid ahead:

- OpenCV builds its 8-bit RGB -> CIELAB tables on the first such conversion (~95 ms on the
  2-core development machine; the colour-card detector's first call);
- the defect model's onnxruntime session (:mod:`vision.defect_model`): importing onnxruntime
  and loading the graph, ~90 ms.

A process that compares once (``sealcheck compare``) can call :func:`warm_up` in a background
thread at start: both run mostly in C without the GIL, so they overlap with the imports and
the photo decoding that the main thread does meanwhile. Long-lived processes pay them once
either way. Only cv2 and numpy are imported at the top, so the thread starts working at once.
"""

from __future__ import annotations

import cv2
import numpy as np


def warm_up(*, defect_model: bool = True) -> None:
    """Build OpenCV's RGB -> CIELAB tables (a 1-pixel conversion does it), then load the
    defect model's session unless `defect_model` is False."""
    cv2.cvtColor(np.zeros((1, 1, 3), np.uint8), cv2.COLOR_RGB2Lab)
    if defect_model:
        from vision import defect_model as model

        try:
            model.model_version()  # creates the process's session
        except (ImportError, OSError, ValueError):
            pass  # the comparison meets the same error and reports it the caller's way
