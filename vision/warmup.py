"""Pay the pipeline's one-time library set-up ahead of the first comparison.

OpenCV builds its 8-bit RGB -> CIELAB tables on the first such conversion: ~95 ms on the
2-core development machine, paid inside the first comparison a process makes (the colour-card
detector's first call). A process that compares once (``sealcheck compare``) can call
:func:`warm_up` in a background thread at start: it runs in C without the GIL, so it overlaps
with the imports and the photo decoding that the main thread does meanwhile. Long-lived
processes pay it once either way. Only cv2 and numpy are imported here, so the thread starts
working at once.
"""

from __future__ import annotations

import cv2
import numpy as np


def warm_up() -> None:
    """Build OpenCV's RGB -> CIELAB tables (a 1-pixel conversion does it)."""
    cv2.cvtColor(np.zeros((1, 1, 3), np.uint8), cv2.COLOR_RGB2Lab)
