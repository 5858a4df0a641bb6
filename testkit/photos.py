"""Small synthetic photo pairs as JPEG bytes, for the service and reliability tests."""

from __future__ import annotations

import functools
import hashlib

import cv2
import numpy as np

TEST_CAMERA_SIZE = (1000, 750)  # small photos keep the suite fast


def jpeg(rgb, quality: int = 92) -> bytes:
    ok, buffer = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def photo_pair(defect: str | None = None) -> tuple[bytes, bytes, list[int]]:
    """JPEG bytes of (golden, unit) and the product ROI: identical content, or one defect."""
    from testkit.scenes import Camera, make_pair

    camera = Camera(width=TEST_CAMERA_SIZE[0], height=TEST_CAMERA_SIZE[1])
    defects = ((defect, 12.0),) if defect else ()
    pair = make_pair("astronaut", golden_camera=camera, defects=defects, seed=1)
    return jpeg(pair.golden), jpeg(pair.unit), [int(v) for v in pair.roi]


@functools.cache
def corpus_photos() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """A golden, a unit of the same product that passes, another product; small for speed."""
    from testkit.scenes import Camera, make_pair

    camera = Camera(width=640, height=480)
    pair = make_pair("astronaut", golden_camera=camera, seed=1)
    other = make_pair("coffee", golden_camera=camera, seed=1)
    return pair.golden, pair.unit, other.unit, [int(v) for v in pair.roi]
